//! `GET /embed`: the widget as a page of its own, for places a script tag cannot go (LMS
//! pages that strip `<script>`, site builders that embed only iframes, a shared link) and
//! for the loader's fallback on host pages whose CSP forbids compiling WebAssembly.
//!
//! The page runs under classchat's own strict policy: no inline script or style (the
//! module `/widget/embed.js` mounts the widget; styles are constructed stylesheets), and
//! `frame-ancestors` from ALLOWED_ORIGINS. Options come from the query string with the
//! loader's `data-*` names; a bad value is a 400 page naming the parameter (a teacher
//! testing the link sees it at once), unknown parameters are ignored (platforms append
//! their own).

use std::fmt::Write as _;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::config::Settings;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/embed", get(embed_page))
}

/// Longest `title` accepted (the widget header has room for about this much).
const MAX_TITLE_CHARS: usize = 100;

/// The options `/embed` takes, checked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EmbedOptions {
    pub title: String,
    pub accent: String,
    pub lang: String,
    /// `right` or `left` (kept for parity with the loader; the page fills its frame).
    pub position: &'static str,
    /// `light` or `dark`; empty (`auto`, the default) follows `prefers-color-scheme`.
    pub theme: &'static str,
    /// Opened by the loader's fallback: close and Escape tell the parent page.
    pub framed: bool,
}

/// Why a query was refused: which parameter, and what it must look like. Never the value.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {expected}")]
pub struct BadOption {
    pub param: &'static str,
    pub expected: &'static str,
}

fn bad(param: &'static str, expected: &'static str) -> BadOption {
    BadOption { param, expected }
}

/// A CSS hex colour (`#rgb`, `#rgba`, `#rrggbb`, `#rrggbbaa`), the one form the loader
/// accepts too: anything else would be passed on by the loader's fallback and refused here,
/// or accepted here for a word no browser knows (`notacolor`).
pub fn valid_accent(v: &str) -> bool {
    v.strip_prefix('#').is_some_and(|hex| {
        matches!(hex.len(), 3 | 4 | 6 | 8) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// A BCP 47-shaped tag (`en`, `zh-TW`, `zh-Hant-TW`); the widget picks its language from it.
fn valid_lang(v: &str) -> bool {
    let mut parts = v.split('-');
    let first = parts.next().unwrap_or("");
    v.len() <= 35
        && (2..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Reads the query string. Empty values mean the default; a parameter given twice is refused
/// (which one would win is not obvious to whoever wrote the link).
pub fn parse_options(query: &str) -> Result<EmbedOptions, BadOption> {
    let mut o = EmbedOptions {
        position: "right",
        ..EmbedOptions::default()
    };
    let mut seen: Vec<&'static str> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let key: &'static str = match &*k {
            "title" => "title",
            "accent" => "accent",
            "lang" => "lang",
            "position" => "position",
            "theme" => "theme",
            "frame" => "frame",
            _ => continue,
        };
        if seen.contains(&key) {
            return Err(bad(key, "given only once"));
        }
        seen.push(key);
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        match key {
            "title" => {
                if v.chars().count() > MAX_TITLE_CHARS || v.chars().any(char::is_control) {
                    return Err(bad(
                        "title",
                        "at most 100 characters, with no control characters",
                    ));
                }
                o.title = v.to_owned();
            }
            "accent" => {
                if !valid_accent(v) {
                    return Err(bad("accent", "a hex colour such as #2563eb"));
                }
                o.accent = v.to_owned();
            }
            "lang" => {
                if !valid_lang(v) {
                    return Err(bad("lang", "a language tag such as en or zh-TW"));
                }
                o.lang = v.to_owned();
            }
            "position" => {
                o.position = match v {
                    "right" => "right",
                    "left" => "left",
                    _ => return Err(bad("position", "right or left")),
                };
            }
            "theme" => {
                o.theme = match v {
                    "light" => "light",
                    "dark" => "dark",
                    "auto" => "",
                    _ => return Err(bad("theme", "light, dark or auto")),
                };
            }
            _ => {
                o.framed = match v {
                    "1" => true,
                    "0" => false,
                    _ => return Err(bad("frame", "1 or 0")),
                };
            }
        }
    }
    Ok(o)
}

/// Escapes text for an HTML attribute value or element content.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Who may frame `/embed`: the ALLOWED_ORIGINS list (and classchat itself), or anyone when
/// it is unset, as for the script tag.
pub fn frame_ancestors(settings: &Settings) -> String {
    match &settings.allowed_origins {
        None => "*".into(),
        Some(list) => {
            let mut out = String::from("'self'");
            // Config checked these are origins; a character that could end the directive
            // is dropped anyway rather than trusted.
            for o in list.iter().filter(|o| {
                o.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b":/.-[]".contains(&b))
            }) {
                out.push(' ');
                out.push_str(o);
            }
            out
        }
    }
}

/// The page's policy: script only from classchat (plus compiling the widget's wasm), no
/// inline script or style, requests only back to classchat.
pub fn content_security_policy(settings: &Settings) -> String {
    format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
         connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
         frame-ancestors {}",
        frame_ancestors(settings)
    )
}

fn html(settings: &Settings, status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The page names the current hashed widget files: revalidate, never serve a stale one.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&content_security_policy(settings)) {
        h.insert("content-security-policy", v);
    }
    r
}

/// The hashed glue and wasm names, for preloading them next to `embed.js`.
fn widget_files() -> Option<(&'static str, &'static str)> {
    let glue = crate::assets::names()
        .find(|p| p.ends_with(".js") && !matches!(*p, "widget.js" | "embed.js"))?;
    let wasm = crate::assets::names().find(|p| p.ends_with("_bg.wasm"))?;
    Some((glue, wasm))
}

async fn embed_page(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let settings = &state.settings;
    let opts = match parse_options(query.as_deref().unwrap_or("")) {
        Ok(o) => o,
        Err(e) => {
            let body = format!(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>classchat: bad embed link</title></head>\
                 <body><h1>This classchat link has a bad option</h1><p>{}</p></body></html>\n",
                escape_html(&format!(
                    "The {} parameter must be {}.",
                    e.param, e.expected
                ))
            );
            return html(settings, StatusCode::BAD_REQUEST, body);
        }
    };
    let Some((glue, wasm)) = widget_files() else {
        return html(
            settings,
            StatusCode::SERVICE_UNAVAILABLE,
            "<!doctype html><title>classchat</title><p>This server was built without the widget: run ./scripts/build.</p>\n".into(),
        );
    };
    let title = if opts.title.is_empty() {
        "classchat"
    } else {
        &opts.title
    };
    let parents = match &settings.allowed_origins {
        None => "*".to_owned(),
        Some(list) => list.join(" "),
    };
    let mut body = String::with_capacity(1024);
    let _ = write!(
        body,
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title>\
         <link rel=\"modulepreload\" href=\"/widget/{glue}\">\
         <link rel=\"preload\" href=\"/widget/{wasm}\" as=\"fetch\" type=\"application/wasm\" crossorigin>\
         </head>\n<body data-title=\"{data_title}\" data-accent=\"{accent}\" data-lang=\"{lang}\" \
         data-position=\"{position}\" data-theme=\"{theme}\" data-frame=\"{frame}\" data-parents=\"{parents}\">\
         <script type=\"module\" src=\"/widget/embed.js\"></script></body></html>\n",
        lang = escape_html(if opts.lang.is_empty() {
            "en"
        } else {
            &opts.lang
        }),
        title = escape_html(title),
        data_title = escape_html(&opts.title),
        accent = escape_html(&opts.accent),
        position = opts.position,
        theme = opts.theme,
        frame = if opts.framed { "1" } else { "0" },
        parents = escape_html(&parents),
    );
    html(settings, StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_and_unknown_ones_ignored() {
        let o = parse_options(
            "title=Bio%20101&accent=%232563eb&lang=zh-TW&position=left&theme=dark&frame=1&utm_source=x",
        )
        .unwrap();
        assert_eq!(o.theme, "dark");
        assert_eq!(o.title, "Bio 101");
        assert_eq!(o.accent, "#2563eb");
        assert_eq!(o.lang, "zh-TW");
        assert_eq!(o.position, "left");
        assert!(o.framed);
        let d = parse_options("title=&accent=&lang=&theme=").unwrap();
        assert_eq!(
            (d.position, d.framed, d.title.as_str(), d.theme),
            ("right", false, "", "")
        );
        assert_eq!(parse_options("theme=light").unwrap().theme, "light");
        assert_eq!(parse_options("theme=auto").unwrap().theme, "");
        for (q, param) in [
            ("accent=red;x:y", "accent"),
            ("accent=%23abcd1", "accent"),
            ("accent=url(x)", "accent"),
            ("position=top", "position"),
            ("theme=Dark", "theme"),
            ("theme=sepia", "theme"),
            ("lang=en_US", "lang"),
            ("frame=yes", "frame"),
            ("title=a%0Ab", "title"),
            ("title=a&title=b", "title"),
        ] {
            assert_eq!(parse_options(q).unwrap_err().param, param, "{q}");
        }
        assert!(parse_options(&format!("title={}", "x".repeat(101))).is_err());
        for ok in ["%23abc", "%23ABCD", "%232563eb", "%232563eb80"] {
            assert!(parse_options(&format!("accent={ok}")).is_ok(), "{ok}");
        }
        for bad in [
            "notacolor",
            "teal",
            "rgb(37,%2099,%20235)",
            "2563eb",
            "%23ggg",
        ] {
            let e = parse_options(&format!("accent={bad}")).unwrap_err();
            assert_eq!(e.param, "accent", "{bad}");
        }
        let twice = parse_options("lang=en&lang=en").unwrap_err();
        assert_eq!(
            format!("The {} parameter must be {}.", twice.param, twice.expected),
            "The lang parameter must be given only once."
        );
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
