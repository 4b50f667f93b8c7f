//! The widget's files, embedded at build time: `/widget.js` (the loader) and
//! `/widget/<hashed name>` (glue JS, wasm), each served precompressed.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

/// One embedded file with its precompressed variants.
#[derive(Debug)]
pub(crate) struct Asset {
    pub path: &'static str,
    pub raw: &'static [u8],
    pub gzip: Option<&'static [u8]>,
    pub brotli: Option<&'static [u8]>,
    pub etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/widget.js", get(loader))
        .route("/widget/{*path}", get(widget_file))
}

/// Whether this binary carries a built widget.
pub fn widget_built() -> bool {
    find("widget.js").is_some()
}

/// The embedded files' paths (under `/widget/`, but `widget.js`).
pub(crate) fn names() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|a| a.path)
}

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

fn mime(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// Does the client accept this encoding (present, and not `;q=0`)?
fn accepts(headers: &HeaderMap, encoding: &str) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q_zero = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            name.eq_ignore_ascii_case(encoding) && !q_zero
        })
}

fn serve(asset: &'static Asset, headers: &HeaderMap, cache_control: &'static str) -> Response {
    let mut resp_headers = HeaderMap::new();
    resp_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    resp_headers.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    resp_headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    resp_headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag))
    {
        return (StatusCode::NOT_MODIFIED, resp_headers).into_response();
    }
    resp_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(mime(asset.path)),
    );
    let body = match (asset.brotli, asset.gzip) {
        (Some(br), _) if accepts(headers, "br") => {
            resp_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
            br
        }
        (_, Some(gz)) if accepts(headers, "gzip") => {
            resp_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            gz
        }
        _ => asset.raw,
    };
    (StatusCode::OK, resp_headers, body).into_response()
}

async fn loader(headers: HeaderMap) -> Response {
    match find("widget.js") {
        // Not content-hashed: cached briefly, revalidated by ETag, so a new version of the
        // server reaches host pages within minutes.
        Some(a) => serve(a, &headers, "public, max-age=300, must-revalidate"),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            "console.error(\"classchat: this server was built without the widget; build it with ./scripts/build\");\n",
        )
            .into_response(),
    }
}

async fn widget_file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match find(&path).filter(|a| a.path != "widget.js") {
        Some(a) if a.path.ends_with(".html") => serve(a, &headers, "no-cache"),
        // The /embed page's module keeps its name across versions, like the loader.
        Some(a) if a.path == "embed.js" => {
            serve(a, &headers, "public, max-age=300, must-revalidate")
        }
        // Trunk names every other file by its content hash: it never changes.
        Some(a) => serve(a, &headers, "public, max-age=31536000, immutable"),
        None => crate::error::AppError::NotFound.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_is_read_with_q_values() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate, br;q=0"),
        );
        assert!(accepts(&h, "gzip"));
        assert!(!accepts(&h, "br"));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br;q=0.9"),
        );
        assert!(accepts(&h, "br"));
    }
}
