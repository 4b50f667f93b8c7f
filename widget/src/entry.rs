//! The one function the loader calls.

use leptos::prelude::*;
use wasm_bindgen::prelude::*;

use crate::components::{App, config_from_js};

/// The widget's stylesheet, put inside the shadow root so it cannot leak out.
const CSS: &str = include_str!("../../style/widget.css");

/// Mounts the widget into `root` (the loader's panel, inside its shadow root).
///
/// `config`: `{server, title, accent, lang, position, close}` from the script tag.
#[wasm_bindgen]
pub fn mount(root: web_sys::HtmlElement, config: JsValue) {
    let config = config_from_js(&config);
    if let Some(doc) = root.owner_document()
        && let Ok(style) = doc.create_element("style")
    {
        style.set_text_content(Some(CSS));
        let _ = root.append_child(&style);
    }
    let parent = root.clone();
    leptos::mount::mount_to(parent, move || view! { <App config=config root=root/> }).forget();
}
