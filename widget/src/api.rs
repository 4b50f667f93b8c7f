//! The four calls to the classchat server, over the browser's `fetch`.
//!
//! Plain `web_sys` fetch plus the body's `ReadableStream` reader keeps the wasm small;
//! the bytes go through [`SseDecoder`] and [`ChatEvent::parse`]. The token travels in
//! the `Authorization` header (a cross-site embed cannot rely on cookies).

use classchat_shared::{
    ChatEvent, ChatRequest, ErrorCode, LimitsLeft, SessionRequest, SessionResponse,
};
use js_sys::{Reflect, Uint8Array};
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Headers, ReadableStreamDefaultReader, RequestInit, Response};

use crate::error::WidgetError;
use crate::sse::SseDecoder;

fn is_abort(e: &JsValue) -> bool {
    Reflect::get(e, &JsValue::from_str("name"))
        .ok()
        .and_then(|n| n.as_string())
        .is_some_and(|n| n == "AbortError")
}

fn fetch_error(e: &JsValue) -> WidgetError {
    if is_abort(e) {
        WidgetError::Aborted
    } else {
        WidgetError::Network
    }
}

/// Sends one request; a non-2xx answer becomes the [`WidgetError`] its body describes.
async fn send(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
    signal: Option<&AbortSignal>,
) -> Result<Response, WidgetError> {
    let init = RequestInit::new();
    init.set_method(method);
    let headers = Headers::new().map_err(|_| WidgetError::Network)?;
    if let Some(body) = body {
        let _ = headers.set("Content-Type", "application/json");
        init.set_body(&JsValue::from_str(body));
    }
    if let Some(token) = token {
        let _ = headers.set("Authorization", &format!("Bearer {token}"));
    }
    init.set_headers(&headers);
    init.set_signal(signal);
    let window = web_sys::window().ok_or(WidgetError::Network)?;
    let resp = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(|e| fetch_error(&e))?;
    let resp: Response = resp.unchecked_into();
    if resp.ok() {
        return Ok(resp);
    }
    let retry_after = resp
        .headers()
        .get("Retry-After")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse().ok());
    let text = text(&resp).await.unwrap_or_default();
    Err(WidgetError::from_response(resp.status(), &text, retry_after).arrived_at(now_ms()))
}

fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

async fn text(resp: &Response) -> Result<String, WidgetError> {
    let promise = resp.text().map_err(|_| WidgetError::Network)?;
    let value = JsFuture::from(promise).await.map_err(|e| fetch_error(&e))?;
    Ok(value.as_string().unwrap_or_default())
}

async fn json<T: DeserializeOwned>(resp: &Response) -> Result<T, WidgetError> {
    serde_json::from_str(&text(resp).await?).map_err(|_| WidgetError::Api {
        code: ErrorCode::Internal,
        retry_after: None,
    })
}

/// `POST /api/v1/session`: trade an access code for a token.
pub(crate) async fn create_session(
    server: &str,
    req: &SessionRequest,
) -> Result<SessionResponse, WidgetError> {
    let body = serde_json::to_string(req).unwrap_or_default();
    let url = format!("{server}/api/v1/session");
    json(&send("POST", &url, None, Some(&body), None).await?).await
}

/// `POST /api/v1/session/refresh`: a fresh token for the same session.
pub(crate) async fn refresh_session(
    server: &str,
    token: &str,
) -> Result<SessionResponse, WidgetError> {
    let url = format!("{server}/api/v1/session/refresh");
    json(&send("POST", &url, Some(token), None, None).await?).await
}

/// `DELETE /api/v1/session`: sign out (the caller ignores failures).
pub(crate) async fn delete_session(server: &str, token: &str) -> Result<(), WidgetError> {
    let url = format!("{server}/api/v1/session");
    send("DELETE", &url, Some(token), None, None)
        .await
        .map(drop)
}

/// `POST /api/v1/chat` with `stream: true`: calls `on_delta` for each piece of the reply,
/// `on_bytes` for every piece of the body (heartbeats included), and returns what is left
/// of the limits, with when it arrived, when the `done` event arrives. A stream that ends without it is
/// [`WidgetError::CutOff`]; an `error` event is that error; aborting `signal` is
/// [`WidgetError::Aborted`].
pub(crate) async fn stream_chat(
    server: &str,
    token: &str,
    req: &ChatRequest,
    signal: Option<&AbortSignal>,
    mut on_delta: impl FnMut(&str),
    mut on_bytes: impl FnMut(),
    mut on_help: impl FnMut(String),
) -> Result<Option<(u64, LimitsLeft)>, WidgetError> {
    let body = serde_json::to_string(req).unwrap_or_default();
    let url = format!("{server}/api/v1/chat");
    let resp = send("POST", &url, Some(token), Some(&body), signal).await?;
    let stream = resp.body().ok_or(WidgetError::CutOff)?;
    let reader: ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut decoder = SseDecoder::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| {
            if is_abort(&e) {
                WidgetError::Aborted
            } else {
                WidgetError::CutOff
            }
        })?;
        let done = Reflect::get(&chunk, &JsValue::from_str("done"))
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(true);
        if done {
            return Err(WidgetError::CutOff);
        }
        let Ok(value) = Reflect::get(&chunk, &JsValue::from_str("value")) else {
            continue;
        };
        let bytes = Uint8Array::new(&value).to_vec();
        on_bytes();
        for frame in decoder.push(&bytes) {
            match ChatEvent::parse(&frame.event, &frame.data) {
                Ok(ChatEvent::Delta { text }) => on_delta(&text),
                Ok(ChatEvent::Help { text }) => on_help(text),
                Ok(ChatEvent::Done { limits, .. }) => {
                    let _ = reader.cancel();
                    return Ok(limits.map(|l| (now_ms(), l)));
                }
                // Also an upstream refusal: the server starts the stream before Open WebUI
                // answers (a model may take a minute to load), so it arrives as this event.
                Ok(ChatEvent::Error {
                    code,
                    retry_after,
                    limit,
                    ..
                }) => {
                    return Err(
                        WidgetError::from_parts(code, retry_after, limit).arrived_at(now_ms())
                    );
                }
                // Events this build does not know (a newer server) are skipped.
                Err(_) => {}
            }
        }
    }
}
