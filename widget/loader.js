/* classchat loader (served as /widget.js). One classic <script> tag puts a chat bubble
   on the page; the WebAssembly widget is fetched only when the bubble is first opened.
   <script src="https://SERVER/widget.js" async data-title="..." data-accent="#047857"
           data-position="right|left" data-lang="en|zh-TW" data-theme="auto|light|dark"
           data-server="..." data-open="true">
   Where the page's Content-Security-Policy forbids compiling WebAssembly (or importing the
   glue), the panel holds an iframe of SERVER/embed instead, driven through postMessage.
   widget/make-loader.sh fills in the hashed asset names and style/bubble.css. */
(function () {
  "use strict";
  var script = document.currentScript || document.querySelector("script[src$='/widget.js']");
  if (!script) return;
  var d = script.dataset;
  // The server's base URL: data-server, else the folder this script came from.
  var base = new URL(d.server || ".", script.src);
  if (!/\/$/.test(base.pathname)) base.pathname += "/";
  var server = base.href.replace(/\/+$/, "");
  var glueUrl = new URL("widget/__CLASSCHAT_GLUE__", base).href;
  var wasmUrl = new URL("widget/__CLASSCHAT_WASM__", base).href;

  var lang = d.lang || navigator.language || "";
  var zh = /^zh/i.test(lang);
  var L = zh
    ? { chat: "聊天", open: "開啟聊天", loading: "載入中…", failed: "無法載入聊天。", retry: "重試" }
    : { chat: "Chat", open: "Open chat", loading: "Loading…", failed: "Could not load the chat.", retry: "Retry" };
  var pos = d.position === "left" ? "left" : "right";
  // A hex colour, as /embed accepts: the fallback passes it on.
  var accent = /^#([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i.test(d.accent || "") ? d.accent : "";
  // Empty (auto): the widget follows prefers-color-scheme.
  var theme = /^(light|dark)$/.test(d.theme) ? d.theme : "";
  var svg = function (cls, path) {
    return '<svg class="' + cls + '" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="' + path +
      '" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/></svg>';
  };

  // A custom element, not a div: host pages may hide or restyle every div.
  var host = document.createElement("classchat-widget");
  host.dataset.theme = theme;
  var root = host.attachShadow({ mode: "open" });
  var css = "__CLASSCHAT_CSS__" + (accent ? ":host{--cc-accent:" + accent + " !important}" : "");
  var panel = document.createElement("div");
  panel.id = "cc-panel";
  panel.className = "cc-panel cc-" + pos;
  panel.hidden = true;
  panel.setAttribute("data-testid", "cc-panel");
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-modal", "true");
  // Named by the widget's header title once it is mounted, until then by this label.
  panel.setAttribute("aria-labelledby", "cc-title");
  panel.setAttribute("aria-label", d.title || L.chat);
  var bubble = document.createElement("button");
  bubble.type = "button";
  bubble.className = "cc-bubble cc-" + pos;
  bubble.setAttribute("data-testid", "cc-bubble");
  bubble.setAttribute("aria-label", L.open);
  bubble.setAttribute("aria-expanded", "false");
  bubble.setAttribute("aria-controls", "cc-panel");
  bubble.setAttribute("aria-haspopup", "dialog");
  bubble.innerHTML = svg("cc-o", "M21 12a8 8 0 0 1-11.6 7.1L4 20l1.1-4.6A8 8 0 1 1 21 12z") + svg("cc-x", "M6 6l12 12M18 6L6 18");
  // A constructed stylesheet: a style-src policy blocks <style> but not this.
  try {
    if (!("adoptedStyleSheets" in root)) throw 0;
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    root.adoptedStyleSheets = [sheet];
  } catch (e) {
    var style = document.createElement("style");
    style.textContent = css;
    root.appendChild(style);
  }
  root.appendChild(panel);
  root.appendChild(bubble);

  var state = 0; // 0: not loaded, 1: loading, 2: mounted
  var frame; // the /embed iframe, in fallback mode
  var framed; // ... once it has loaded (before, it focuses itself and has nothing to stop)
  var origin = base.origin;

  // Tells the framed widget to focus its field ("open") or stop a reply ("hide").
  function tell(type) {
    if (framed) frame.contentWindow.postMessage({ classchat: 1, type: type }, origin);
  }

  function focusInside() {
    if (frame) return tell("open");
    var field = panel.querySelector("textarea,input");
    if (field) field.focus();
  }

  function show() {
    panel.hidden = false;
    bubble.setAttribute("aria-expanded", "true");
    if (state === 0) load();
    else if (state === 2) focusInside();
  }

  function hide() {
    if (panel.hidden) return;
    panel.hidden = true;
    bubble.setAttribute("aria-expanded", "false");
    if (frame) tell("hide");
    else panel.dispatchEvent(new Event("cc-hide"));
    bubble.focus();
  }

  function status(html, role) {
    panel.innerHTML = '<div class="cc-status" role="' + role + '">' + html + "</div>";
  }

  // Can this page compile WebAssembly? Compiling the smallest module is the one probe (a
  // page that forbids it reports one CSP violation, here).
  function wasmAllowed() {
    try {
      return !!new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
    } catch (e) {
      return false;
    }
  }

  // Fallback: the widget in an iframe of SERVER/embed, with the same options.
  function embed() {
    frame = document.createElement("iframe");
    frame.title = d.title || L.chat;
    frame.allow = "clipboard-write";
    frame.onload = function () {
      framed = 1;
    };
    frame.src = server + "/embed?" + new URLSearchParams({
      title: d.title || "", accent: accent, lang: d.lang || "", position: pos, theme: theme, frame: 1
    });
    panel.textContent = "";
    panel.appendChild(frame);
    state = 2;
    panel.className += " cc-ready";
  }

  addEventListener("message", function (e) {
    var m = e.data;
    if (frame && e.source === frame.contentWindow && e.origin === origin && m && m.classchat === 1 && m.type === "close") hide();
  });

  function load() {
    state = 1;
    status(L.loading, "status");
    if (!wasmAllowed()) return embed();
    import(glueUrl)
      .then(function (m) {
        return m.default({ module_or_path: wasmUrl }).then(function () {
          panel.textContent = "";
          m.mount(panel, {
            server: server,
            title: d.title || "",
            accent: accent,
            lang: d.lang || "",
            position: pos,
            close: hide
          });
          state = 2;
          panel.className += " cc-ready";
        });
      }, embed)
      .catch(function (e) {
        state = 0;
        if (window.console) console.error("classchat: could not load the widget", e);
        status("<p>" + L.failed + '</p><button type="button">' + L.retry + "</button>", "alert");
        var retry = panel.querySelector("button");
        retry.onclick = load;
        retry.focus();
      });
  }

  bubble.addEventListener("click", function () {
    if (panel.hidden) show();
    else hide();
  });
  panel.addEventListener("keydown", function (e) {
    // Once mounted, the widget handles Escape itself.
    if (e.key === "Escape" && state !== 2) hide();
  });

  function attach() {
    document.body.appendChild(host);
    if (d.open === "true") show();
  }
  if (document.body) attach();
  else document.addEventListener("DOMContentLoaded", attach);
})();
