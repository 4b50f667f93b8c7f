//! Renders the [`crate::markdown`] tree as elements and text nodes (never `inner_html`).

use leptos::html::Div;
use leptos::prelude::*;
use leptos::tachys::view::any_view::AnyViewState;
use leptos::tachys::view::{Mountable, Render};

use crate::markdown::{Align, Block, Inline, parse, parse_streaming};

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
        Block::Code { lang, text } => {
            let lang = (!lang.is_empty()).then(|| lang.clone());
            view! { <pre class="cc-code" data-lang=lang><code>{text.clone()}</code></pre> }
                .into_any()
        }
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
    }
}
