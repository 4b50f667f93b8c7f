//! The server's own pages, rendered with Leptos on the server (no client-side code but
//! the widget itself): `/` shows the embed snippets and a live widget.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leptos::prelude::*;

use crate::config::DEMO_ACCESS_CODE;
use crate::state::AppState;

/// The one stylesheet of the server's pages (landing and dashboard), inlined.
pub(crate) const SITE_CSS: &str = include_str!("../../style/site.css");
/// The snippets' copy buttons: an external file, so the page needs no inline script.
const COPY_JS: &str = include_str!("../assets/copy.js");

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(landing))
        .route("/copy.js", get(copy_js))
}

async fn copy_js() -> impl IntoResponse {
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/javascript; charset=utf-8",
            ),
            (axum::http::header::CACHE_CONTROL, "public, max-age=300"),
        ],
        COPY_JS,
    )
}

/// What the landing page shows; given to the Leptos render as context.
#[derive(Debug, Clone)]
struct PageInfo {
    public_url: String,
    demo_code: Option<&'static str>,
    demo_replies: bool,
    widget_built: bool,
    class_count: usize,
    /// The iframe snippet's accessible name (see [`frame_name`]).
    frame_name: String,
}

async fn landing(State(state): State<AppState>, req: Request<Body>) -> Response {
    let info = PageInfo {
        public_url: state.public_url.to_string(),
        demo_code: state.settings.demo.then_some(DEMO_ACCESS_CODE),
        demo_replies: state.upstream.is_demo(),
        widget_built: crate::assets::widget_built(),
        class_count: state.classes.current().iter().count(),
        frame_name: frame_name(state.classes.current().iter().map(|c| c.title.as_str())),
    };
    let handler = leptos_axum::render_app_to_stream_with_context(
        move || provide_context(info.clone()),
        move || view! { <Landing/> },
    );
    handler(req).await.into_response()
}

// The snippets carry no `data-title`/`data-lang` (`title`/`lang` in the link): either would
// override the class's own title (which the widget shows once a student signs in) and the
// student's browser language, so a teacher who renames the class or teaches in Traditional
// Chinese would paste a snippet that hides both. The accent is not a class setting: it
// stays, as an example of an option to edit.

/// The embed snippet a teacher pastes into a page.
pub fn embed_snippet(public_url: &str) -> String {
    format!(
        "<script src=\"{public_url}/widget.js\" async\n        data-accent=\"#2563eb\" data-position=\"right\"></script>"
    )
}

/// The shareable link: the widget as a page of its own.
pub fn link_snippet(public_url: &str) -> String {
    format!("{public_url}/embed?accent=%232563eb")
}

/// The iframe snippet, for pages that strip `<script>` (Canvas, Moodle, Google Sites).
/// `frame_name` is the frame's accessible name (what a screen reader says for the frame),
/// not a title shown in the widget. `&amp;`: it is HTML.
pub fn iframe_snippet(public_url: &str, frame_name: &str) -> String {
    format!(
        "<iframe src=\"{public_url}/embed?accent=%232563eb\"\n        title=\"{}\" width=\"400\" height=\"600\" loading=\"lazy\"\n        allow=\"clipboard-write\" style=\"border:0;max-width:100%\"></iframe>",
        crate::embed::escape_html(frame_name)
    )
}

/// The name for the iframe: the classes' title when they all share one, else a generic one.
fn frame_name<'a>(titles: impl IntoIterator<Item = &'a str>) -> String {
    let mut titles = titles.into_iter();
    let first = titles.next();
    match first {
        Some(t) if titles.all(|o| o == t) && !t.trim().is_empty() => t.to_owned(),
        _ => "Class chat".to_owned(),
    }
}

#[component]
fn Landing() -> impl IntoView {
    let info = expect_context::<PageInfo>();
    let snippet = embed_snippet(&info.public_url);
    let iframe = iframe_snippet(&info.public_url, &info.frame_name);
    let link = link_snippet(&info.public_url);
    let demo = info.demo_code.is_some() || info.demo_replies;
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <title>"classchat"</title>
                <style>{SITE_CSS}</style>
            </head>
            <body>
                <main>
                    <h1>"classchat"</h1>
                    <p class="lead">
                        "An AI assistant for your class on any web page: one script tag, one access code."
                    </p>
                    {demo.then(|| view! {
                        <section class="demo" data-testid="demo-banner">
                            <h2>"Demo mode"</h2>
                            {info.demo_code.map(|code| view! {
                                <p>"Try the chat bubble in the corner with the access code "
                                   <code data-testid="demo-code">{code}</code>"."</p>
                            })}
                            {info.demo_replies.then(|| view! {
                                <p>"No Open WebUI is configured: replies come from the built-in demo responder. "
                                   "Set OPEN_WEBUI_URL, OPEN_WEBUI_API_KEY and OPEN_WEBUI_MODEL to connect your own."</p>
                            })}
                        </section>
                    })}
                    {(!info.widget_built).then(|| view! {
                        <p class="warning">"This binary was built without the widget: run ./scripts/build."</p>
                    })}
                    <h2>"Add the assistant to a page"</h2>
                    <p>"A chat bubble in the corner: paste this before </body> on any page that keeps scripts (your own site, WordPress with a Custom HTML block, a Moodle HTML block where scripts are allowed):"</p>
                    <pre id="snippet-script" data-testid="embed-snippet"><code>{snippet}</code></pre>
                    <button type="button" class="copy" data-copy="snippet-script">"Copy"</button>
                    <p>"The chat in the page itself, for platforms that strip scripts but allow iframes (Canvas, Moodle for most roles, Google Sites' Embed):"</p>
                    <pre id="snippet-iframe" data-testid="iframe-snippet"><code>{iframe}</code></pre>
                    <button type="button" class="copy" data-copy="snippet-iframe">"Copy"</button>
                    <p>"A link to share (an announcement, an email, a QR code): the chat as a page of its own:"</p>
                    <pre id="snippet-link" data-testid="link-snippet"><code>{link}</code></pre>
                    <button type="button" class="copy" data-copy="snippet-link">"Copy"</button>
                    <p>
                        "Options: "<code>"data-accent"</code>" (a hex colour such as #2563eb), "
                        <code>"data-position"</code>" (right or left), "<code>"data-theme"</code>" (light, dark or auto), "
                        <code>"data-title"</code>" (replaces the class's own title; leave it out to show the class's) and "
                        <code>"data-lang"</code>" (en or zh-TW; leave it out to follow each student's browser). "
                        "The iframe and the link take the same options as query parameters: "
                        <code>"title"</code>", "<code>"accent"</code>", "<code>"position"</code>", "<code>"lang"</code>", "<code>"theme"</code>"."
                    </p>
                    <p class="meta">{format!("Serving {} class(es). Health: ", info.class_count)}<a href="/healthz">"/healthz"</a></p>
                </main>
                <script src="/copy.js" defer></script>
                <script src="/widget.js" async></script>
            </body>
        </html>
    }
}
