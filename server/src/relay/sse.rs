//! Reading Open WebUI's (OpenAI-format) stream chunks. Pure functions, unit-tested.

use std::borrow::Cow;
use std::marker::PhantomData;

use classchat_shared::Usage;
use serde::Deserialize;
use serde::de::{IgnoredAny, SeqAccess, Visitor};

/// What one upstream `data:` line carried.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub text: Option<String>,
    pub usage: Option<Usage>,
    pub finished: bool,
    /// An `{"error": {...}}` frame (Open WebUI ends broken streams with one).
    pub error: Option<String>,
}

// The raw shapes borrow from the line: a chunk costs one allocation (its text, when it has
// escapes or is kept), not one per field; only the first choice is kept, the rest skipped.
#[derive(Deserialize)]
struct RawChunk<'a> {
    #[serde(default, borrow)]
    choices: FirstChoice<'a>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<RawError>,
}

#[derive(Deserialize)]
struct RawChoice<'a> {
    #[serde(default, borrow)]
    delta: Option<RawDelta<'a>>,
    #[serde(default, borrow)]
    message: Option<RawDelta<'a>>,
    #[serde(default)]
    finish_reason: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct RawDelta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
}

/// `choices[0]`, without a `Vec` for the array.
#[derive(Default)]
struct FirstChoice<'a>(Option<RawChoice<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for FirstChoice<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct First<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for First<'a> {
            type Value = FirstChoice<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of choices")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<RawChoice<'a>>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FirstChoice(first))
            }
        }
        d.deserialize_seq(First(PhantomData))
    }
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
    let raw: RawChunk<'_> = serde_json::from_str(data)?;
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
    if let Some(choice) = raw.choices.0 {
        out.finished = choice.finish_reason.is_some();
        out.text = choice
            .delta
            .or(choice.message)
            .and_then(|d| d.content)
            .filter(|t| !t.is_empty())
            .map(Cow::into_owned);
    }
    Ok(out)
}

/// A whole non-streamed `chat.completion`: the reply text and usage.
pub fn parse_completion(body: &[u8]) -> Result<(String, Option<Usage>), String> {
    let raw: RawChunk<'_> =
        serde_json::from_slice(body).map_err(|e| format!("not a chat completion: {e}"))?;
    if let Some(e) = raw.error {
        return Err(match e {
            RawError::Object { message } => message.unwrap_or_default(),
            RawError::Text(t) => t,
        });
    }
    let text = raw
        .choices
        .0
        .and_then(|c| c.message.or(c.delta))
        .and_then(|m| m.content)
        .map(Cow::into_owned)
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
        // Escaped text (owned on the way), and a second choice that is skipped.
        let two = r#"{"choices":[{"delta":{"content":"a\"b\n\u00e9"},"finish_reason":null},{"delta":{"content":"x"}}]}"#;
        let c = parse_chunk(two).unwrap();
        assert_eq!((c.text.as_deref(), c.finished), (Some("a\"b\né"), false));
        assert!(parse_chunk(r#"{"choices":{"delta":{}}}"#).is_err());
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
