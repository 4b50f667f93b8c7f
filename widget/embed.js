/* classchat /embed page script (served as /widget/embed.js, a module): the widget, open,
   filling the page. With data-frame="1" it is the loader's fallback frame: its close button
   and Escape tell the host page's loader, which owns the bubble.
   widget/make-loader.sh fills in the hashed asset names and style/embed.css. */
import init, { mount } from "./__CLASSCHAT_GLUE__";

const d = document.body.dataset;
const framed = d.frame === "1" && window.parent !== window;
// The page that framed us: its origin must be one ALLOWED_ORIGINS lists (data-parents;
// "*" when unset). frame-ancestors already enforces that; this picks whom to talk to.
const anc = location.ancestorOrigins;
let host = anc && anc.length ? anc[0] : document.referrer ? new URL(document.referrer).origin : "";
const parents = (d.parents || "").split(" ");
if (!parents.includes("*") && !parents.includes(host)) host = "";

let accent = d.accent || "";
if (!(window.CSS && CSS.supports("color", accent))) accent = "";
const el = document.createElement("classchat-widget");
// light or dark (checked by the server); empty: follow prefers-color-scheme.
el.dataset.theme = d.theme || "";
const root = el.attachShadow({ mode: "open" });
const sheet = new CSSStyleSheet();
sheet.replaceSync("__CLASSCHAT_CSS__" + (accent ? ":host{--cc-accent:" + accent + "}" : ""));
root.adoptedStyleSheets = [sheet];
const panel = document.createElement("div");
panel.className = "cc-panel cc-ready" + (framed ? "" : " cc-solo");
panel.setAttribute("data-testid", "cc-panel");
root.appendChild(panel);
document.body.appendChild(el);

const focusField = () => {
  const field = panel.querySelector("textarea,input");
  if (field) field.focus();
};

await init({ module_or_path: new URL("./__CLASSCHAT_WASM__", import.meta.url) });
mount(panel, {
  server: location.origin,
  title: d.title || "",
  accent: accent,
  lang: d.lang || "",
  position: d.position || "right",
  close: framed ? () => window.parent.postMessage({ classchat: 1, type: "close" }, host || "*") : undefined,
});
focusField();

if (framed) {
  addEventListener("message", (e) => {
    const m = e.data;
    if (!host || e.source !== window.parent || e.origin !== host || !m || m.classchat !== 1) return;
    if (m.type === "open") focusField();
    else if (m.type === "hide") panel.dispatchEvent(new Event("cc-hide"));
  });
}
