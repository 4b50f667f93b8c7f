//! Reading Open WebUI's (OpenAI-format) stream chunks. Pure functions, unit-tested.

use classchat_shared::Usage;
use serde::Deserialize;

/// What one upstream `data:` line carried.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub text: Option<String>,
    pub usage: Option<Usage>,
    pub finished: bool,
    /// An `{"error": {...}}` frame (Open WebUI ends broken streams with one).
    pub error: Option<String>,
}

#[derive(Deserialize)]
struct RawChunk {
    #[serde(default)]
    choices: Vec<RawChoice>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<RawError>,
}

#[derive(Deserialize)]
struct RawChoice {
    #[serde(default)]
    delta: Option<RawDelta>,
    #[serde(default)]
    message: Option<RawDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct RawDelta {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawError {
    Object {
        #[serde(default)]
        message: Option<String>,
    },
    Text(String),
}

/// `Err` when the line is not JSON of the expected shape.
pub fn parse_chunk(data: &str) -> Result<Chunk, serde_json::Error> {
    let raw: RawChunk = serde_json::from_str(data)?;
    let mut out = Chunk {
        usage: raw.usage,
        ..Chunk::default()
    };
    if let Some(e) = raw.error {
        out.error = Some(match e {
            RawError::Object { message } => message.unwrap_or_default(),
            RawError::Text(t) => t,
        });
    }
    if let Some(choice) = raw.choices.into_iter().next() {
        out.finished = choice.finish_reason.is_some();
        out.text = choice
            .delta
            .or(choice.message)
            .and_then(|d| d.content)
            .filter(|t| !t.is_empty());
    }
    Ok(out)
}

/// A whole non-streamed `chat.completion`: the reply text and usage.
pub fn parse_completion(body: &[u8]) -> Result<(String, Option<Usage>), String> {
    let raw: RawChunk =
        serde_json::from_slice(body).map_err(|e| format!("not a chat completion: {e}"))?;
    if let Some(e) = raw.error {
        return Err(match e {
            RawError::Object { message } => message.unwrap_or_default(),
            RawError::Text(t) => t,
        });
    }
    let text = raw
        .choices
        .into_iter()
        .next()
        .and_then(|c| c.message.or(c.delta))
        .and_then(|m| m.content)
        .ok_or_else(|| "a chat completion without choices[0].message.content".to_owned())?;
    Ok((text, raw.usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The chunk sequence OPEN-WEBUI.md records for a streamed reply.
    const ROLE: &str = r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
    const TEXT: &str = r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#;
    const FINISH: &str = r#"{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
    const USAGE: &str = r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}"#;
    const ERROR: &str = r#"{"error":{"message":"upstream connection reset"}}"#;

    #[test]
    fn reads_each_kind_of_chunk() {
        assert_eq!(parse_chunk(ROLE).unwrap(), Chunk::default());
        assert_eq!(parse_chunk(TEXT).unwrap().text.as_deref(), Some("Hel"));
        assert!(parse_chunk(FINISH).unwrap().finished);
        let u = parse_chunk(USAGE).unwrap().usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (Some(12), Some(7)));
        assert_eq!(
            parse_chunk(ERROR).unwrap().error.as_deref(),
            Some("upstream connection reset")
        );
        assert!(parse_chunk("{not json").is_err());
    }

    #[test]
    fn reads_a_completion() {
        let body = br#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
        let (text, usage) = parse_completion(body).unwrap();
        assert_eq!(text, "Hi!");
        assert_eq!(usage.unwrap().total_tokens, Some(5));
        assert!(parse_completion(b"null").is_err());
        assert!(parse_completion(br#"{"choices":[]}"#).is_err());
    }
}
