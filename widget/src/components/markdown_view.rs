//! Renders the [`crate::markdown`] tree as elements and text nodes (never `inner_html`).

use std::sync::Arc;
use std::time::Duration;

use leptos::html::Div;
use leptos::prelude::*;
use leptos::tachys::html::element::ElementType;
use leptos::tachys::html::node_ref::NodeRefContainer;
use leptos::tachys::view::any_view::AnyViewState;
use leptos::tachys::view::{Mountable, Render};
use wasm_bindgen::JsCast;
use web_sys::{Element, MouseEvent};

use crate::i18n::{Lang, Text};
use crate::markdown::{Align, Block, Inline, parse, parse_streaming};
use crate::math;

/// An assistant reply, formatted.
pub(crate) fn markdown(src: &str) -> AnyView {
    blocks(&parse(src))
}

/// A reply while it streams. `tail_from(n)` is the reply from byte `n` on (tracked).
///
/// Re-rendering the whole reply on every delta made a delta's cost grow with the reply
/// (a 20 KB reply arrives in 2,000 deltas). Here the blocks later text cannot change are
/// appended to the page once and kept; a delta parses and renders only the open tail.
pub(crate) fn streaming_markdown(
    tail_from: impl Fn(usize) -> Option<String> + Send + Sync + 'static,
) -> impl IntoView {
    // Byte offset where the open tail starts; the final blocks before it are mounted into
    // `kept` as they become final (append-only: no list diffing, which also costs size).
    let kept_bytes = StoredValue::new(0usize);
    let kept = NodeRef::<Div>::new();
    let mounted = StoredValue::new_local(Vec::<AnyViewState>::new());
    let tail = move || {
        let from = kept_bytes.get_value();
        let text = tail_from(from).unwrap_or_default();
        let mut parsed = parse_streaming(&text);
        if parsed.done > 0
            && let Some(parent) = kept.get_untracked()
        {
            let open = parsed.blocks.split_off(parsed.done);
            let done = std::mem::replace(&mut parsed.blocks, open);
            kept_bytes.set_value(from + parsed.done_bytes);
            let mut state = blocks(&done).build();
            state.mount(&parent, None);
            mounted.update_value(|m| m.push(state));
        }
        blocks(&parsed.blocks)
    };
    view! {
        <div class="cc-kept" node_ref=kept></div>
        {tail}
    }
}

fn blocks(bs: &[Block]) -> AnyView {
    bs.iter().map(block).collect::<Vec<_>>().into_any()
}

fn inlines(is: &[Inline]) -> Vec<AnyView> {
    is.iter().map(inline).collect()
}

fn block(b: &Block) -> AnyView {
    match b {
        // Headings inside a small chat bubble start at h3.
        Block::Heading(1, c) => view! { <h3>{inlines(c)}</h3> }.into_any(),
        Block::Heading(2, c) => view! { <h4>{inlines(c)}</h4> }.into_any(),
        Block::Heading(_, c) => view! { <h5>{inlines(c)}</h5> }.into_any(),
        Block::Paragraph(c) => view! { <p>{inlines(c)}</p> }.into_any(),
        Block::Code { lang, text } => code_block(lang, text),
        // A paragraph of one display formula: no view type of its own (size).
        Block::Math(tex) => block(&Block::Paragraph(vec![Inline::Math {
            tex: tex.clone(),
            display: true,
        }])),
        Block::List {
            ordered,
            start,
            items,
        } => {
            let items: Vec<AnyView> = items.iter().map(|i| list_item(i)).collect();
            if *ordered {
                let start = (*start != 1).then(|| start.to_string());
                view! { <ol start=start>{items}</ol> }.into_any()
            } else {
                view! { <ul>{items}</ul> }.into_any()
            }
        }
        Block::Quote(inner) => view! { <blockquote>{blocks(inner)}</blockquote> }.into_any(),
        Block::Table { align, head, rows } => {
            // Classes, not `style=`: a host page's `style-src` without 'unsafe-inline'
            // (and /embed's own policy) refuses style attributes.
            let align_class = |i: usize| match align.get(i) {
                Some(Align::Center) => Some("cc-c"),
                Some(Align::Right) => Some("cc-r"),
                _ => None,
            };
            let head: Vec<AnyView> = head
                .iter()
                .enumerate()
                .map(|(i, c)| view! { <th class=align_class(i)>{inlines(c)}</th> }.into_any())
                .collect();
            let rows: Vec<AnyView> = rows
                .iter()
                .map(|r| {
                    let cells: Vec<AnyView> = r
                        .iter()
                        .enumerate()
                        .map(|(i, c)| {
                            view! { <td class=align_class(i)>{inlines(c)}</td> }.into_any()
                        })
                        .collect();
                    view! { <tr>{cells}</tr> }.into_any()
                })
                .collect();
            view! {
                <div class="cc-table">
                    <table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>
                </div>
            }
            .into_any()
        }
        Block::Rule => view! { <hr/> }.into_any(),
    }
}

fn list_item(content: &[Block]) -> AnyView {
    // A tight item (one paragraph) without the paragraph's margins.
    match content {
        [Block::Paragraph(c)] => view! { <li>{inlines(c)}</li> }.into_any(),
        _ => view! { <li>{blocks(content)}</li> }.into_any(),
    }
}

fn inline(i: &Inline) -> AnyView {
    match i {
        Inline::Text(s) => s.clone().into_any(),
        Inline::Code(s) => view! { <code>{s.clone()}</code> }.into_any(),
        Inline::Strong(c) => view! { <strong>{inlines(c)}</strong> }.into_any(),
        Inline::Em(c) => view! { <em>{inlines(c)}</em> }.into_any(),
        Inline::Del(c) => view! { <del>{inlines(c)}</del> }.into_any(),
        // `href` was checked to be http, https or mailto by the parser.
        Inline::Link { href, children } => view! {
            <a href=href.clone() target="_blank" rel="noopener noreferrer">{inlines(children)}</a>
        }
        .into_any(),
        Inline::Break => view! { <br/> }.into_any(),
        Inline::Math { tex, display } => match math::to_mathml(tex, *display) {
            Some(m) => {
                view! { <span node_ref=MathInto(Arc::new(m), tex.clone())></span> }.into_any()
            }
            // Outside the supported subset: the source, never half a formula.
            None => inline(&Inline::Code(tex.clone())),
        },
    }
}

/// A fenced code block: a header with its language and a copy button, and the code,
/// which scrolls sideways (and takes focus, so the keyboard can scroll it too).
fn code_block(lang: &str, text: &str) -> AnyView {
    let t: &'static Text = Lang::current().text();
    let copy = text.to_owned();
    let on_click = move |ev: MouseEvent| copy_to_clipboard(&copy, &ev, t);
    view! {
        <div class="cc-codeblock">
            <span>{lang.to_owned()}</span>
            <button class="cc-copy" aria-live="polite" on:click=on_click>{t.copy_code}</button>
            <pre class="cc-code" tabindex="0" aria-label=t.code><code>{text.to_owned()}</code></pre>
        </div>
    }
    .into_any()
}

/// Writes `text` with `navigator.clipboard.writeText` and has the clicked button say so
/// for two seconds. An insecure page has no `navigator.clipboard`: the button then does
/// nothing rather than throw.
fn copy_to_clipboard(text: &str, ev: &MouseEvent, t: &'static Text) {
    let (Some(target), Some(window)) = (ev.current_target(), web_sys::window()) else {
        return;
    };
    let button: web_sys::Node = target.unchecked_into();
    let navigator = window.navigator();
    if js_sys::Reflect::has(&navigator, &"clipboard".into()) != Ok(true) {
        return;
    }
    let done = navigator.clipboard().write_text(text);
    leptos::task::spawn_local(async move {
        if wasm_bindgen_futures::JsFuture::from(done).await.is_ok() {
            button.set_text_content(Some(t.copied));
            set_timeout(
                move || button.set_text_content(Some(t.copy_code)),
                Duration::from_secs(2),
            );
        }
    });
}

const MATHML: &str = "http://www.w3.org/1998/Math/MathML";

/// Fills the element it is the `node_ref` of with a formula, built as MathML DOM nodes
/// (never parsed markup), with its LaTeX source as `alttext`. Loading happens when the
/// element is built and again when the streaming tail is rebuilt, so it replaces what
/// was there.
#[derive(Clone)]
struct MathInto(Arc<Vec<math::Tok>>, String);

impl<E: ElementType> NodeRefContainer<E> for MathInto {
    fn load(self, el: &Element) {
        el.set_text_content(None);
        let Some(doc) = el.owner_document() else {
            return;
        };
        // The open elements; the host element at the bottom.
        let mut stack = vec![el.clone()];
        for t in self.0.iter() {
            let (tag, attr, text) = match t {
                math::Tok::Close(_) => {
                    stack.pop();
                    continue;
                }
                math::Tok::Open(tag, attr) => (tag, attr, None),
                math::Tok::Leaf(tag, attr, text) => (tag, attr, Some(text)),
            };
            let Ok(node) = doc.create_element_ns(Some(MATHML), tag) else {
                return;
            };
            if let Some((k, v)) = attr {
                let _ = node.set_attribute(k, v);
            }
            if *tag == "math" {
                let _ = node.set_attribute("alttext", &self.1);
            }
            if let Some(parent) = stack.last() {
                let _ = parent.append_child(&node);
            }
            match text {
                Some(text) => node.set_text_content(Some(text)),
                None => stack.push(node),
            }
        }
    }
}
