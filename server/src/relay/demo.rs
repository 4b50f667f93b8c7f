//! The built-in demo responder: answers like Open WebUI would, without one.
//!
//! It produces the same bytes an Open WebUI would (OpenAI chunks over SSE, or a
//! `chat.completion`), so everything after the upstream response is the real code path.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use super::upstream::{ByteStream, UpstreamFailure};

const PAUSE: Duration = Duration::from_millis(25);

/// The demo reply to the student's last message.
pub fn reply_text(last_user_message: &str) -> String {
    let preview: String = last_user_message.chars().take(80).collect();
    format!(
        "**This is the classchat demo.** No Open WebUI is configured, so this reply comes from \
         the built-in demo responder.\n\nYou wrote: \u{201c}{preview}\u{201d}\n\nTo connect a real \
         assistant, set these and restart:\n\n- `OPEN_WEBUI_URL`\n- `OPEN_WEBUI_API_KEY`\n- \
         `OPEN_WEBUI_MODEL`\n- `CF_ACCESS_CLIENT_ID` and `CF_ACCESS_CLIENT_SECRET` if Open WebUI \
         is behind Cloudflare Access"
    )
}

fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for ch in text.chars() {
        cur.push(ch);
        if ch == ' ' || ch == '\n' {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn usage(prompt: &str, reply: &str) -> serde_json::Value {
    let p = prompt.split_whitespace().count() as u32;
    let c = reply.split_whitespace().count() as u32;
    serde_json::json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c})
}

/// An SSE body in Open WebUI's format, one word per chunk.
pub fn stream(prompt: &str) -> ByteStream {
    let text = reply_text(prompt);
    let mut frames = vec![
        serde_json::json!({"object":"chat.completion.chunk","model":"demo","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}),
    ];
    for w in words(&text) {
        frames.push(serde_json::json!({"object":"chat.completion.chunk","model":"demo","choices":[{"index":0,"delta":{"content":w},"finish_reason":null}]}));
    }
    frames.push(serde_json::json!({"object":"chat.completion.chunk","model":"demo","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}));
    frames.push(serde_json::json!({"object":"chat.completion.chunk","model":"demo","choices":[],"usage":usage(prompt,&text)}));
    let mut lines: Vec<Bytes> = frames
        .into_iter()
        .map(|f| Bytes::from(format!("data: {f}\n\n")))
        .collect();
    lines.push(Bytes::from_static(b"data: [DONE]\n\n"));
    futures::stream::iter(lines)
        .then(|b| async move {
            tokio::time::sleep(PAUSE).await;
            Ok::<_, UpstreamFailure>(b)
        })
        .boxed()
}

/// A `chat.completion` body.
pub fn completion(prompt: &str) -> Bytes {
    let text = reply_text(prompt);
    let body = serde_json::json!({
        "object": "chat.completion", "model": "demo",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": usage(prompt, &text),
    });
    Bytes::from(body.to_string())
}
