//! The one function the loader (and the `/embed` page) calls.

use leptos::prelude::*;
use wasm_bindgen::prelude::*;

use crate::components::{App, config_from_js};

/// The widget's stylesheet, put inside the shadow root so it cannot leak out.
///
/// Its colours (explained here: comments in the file ship in the wasm) are custom
/// properties on `:host`, a light set and a dark set, chosen for WCAG 2.2 AA: text at
/// least 4.5:1 against its background, control borders (`--cc-border`) and focus rings
/// (`--cc-focus`) at least 3:1; `--cc-line` is for decorative rules that need no contrast.
/// `--cc-surface` is behind the messages, `--cc-code-bg` behind inline code and table
/// headers, `--cc-pre-*` code blocks, `--cc-err-*` errors, `--cc-warn-*` the held-up reply
/// and login notices. The dark set applies when the user prefers dark and the host's
/// `data-theme` (the script tag's, or `/embed?theme=`) is not `light`, or when it is
/// `dark`. Custom properties pass through the host's `all: initial`.
///
/// `--cc-on-accent` is white or black, whichever contrasts more with the accent
/// (`data-accent`): CIE lightness 49.44 (relative luminance 0.179) is where the two
/// contrast equally, so text on any accent gets at least 4.58:1. Computed by the browser
/// (relative colour syntax) for any CSS colour the teacher gives, at no cost in code;
/// browsers without relative colours (before 2024) get white, right for the default accent.
///
/// Compiled in without comments or indentation (see `widget/build.rs`).
const CSS: &str = include_str!(concat!(env!("OUT_DIR"), "/widget.css"));

/// Mounts the widget into `root` (the loader's panel, inside its shadow root).
///
/// `config`: `{server, title, accent, lang, position, close}` from the script tag.
#[wasm_bindgen]
pub fn mount(root: web_sys::HtmlElement, config: JsValue) {
    let config = config_from_js(&config, root.clone());
    // Reply views (code blocks' copy buttons) read the language without the app's context.
    config.lang.set_current();
    if !adopt_css(&root)
        && let Some(doc) = root.owner_document()
        && let Ok(style) = doc.create_element("style")
    {
        style.set_text_content(Some(CSS));
        let _ = root.append_child(&style);
    }
    let parent = root.clone();
    leptos::mount::mount_to(parent, move || view! { <App config=config root=root/> }).forget();
}

/// Adds [`CSS`] to the adopted stylesheets of `root`'s shadow root (or document). A page
/// whose `style-src` lacks `'unsafe-inline'` blocks a `<style>` element but not a
/// constructed stylesheet. False where the browser has no constructable stylesheets.
/// Dynamic lookups rather than web-sys bindings: an old browser must get `false`, not a throw.
fn adopt_css(root: &web_sys::HtmlElement) -> bool {
    let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &JsValue::from_str(k)).ok();
    let scope: JsValue = root.get_root_node().into();
    let Some(adopted) = get(&scope, "adoptedStyleSheets").filter(js_sys::Array::is_array) else {
        return false;
    };
    let Some(ctor) =
        get(&js_sys::global(), "CSSStyleSheet").and_then(|c| c.dyn_into::<js_sys::Function>().ok())
    else {
        return false;
    };
    let Ok(sheet) = js_sys::Reflect::construct(&ctor, &js_sys::Array::new()) else {
        return false;
    };
    let Some(replace) =
        get(&sheet, "replaceSync").and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    else {
        return false;
    };
    if replace.call1(&sheet, &JsValue::from_str(CSS)).is_err() {
        return false;
    }
    // A new array (appending in place is not supported everywhere): the loader's sheet stays.
    let sheets = js_sys::Array::from(&adopted);
    sheets.push(&sheet);
    js_sys::Reflect::set(&scope, &JsValue::from_str("adoptedStyleSheets"), &sheets).unwrap_or(false)
}
