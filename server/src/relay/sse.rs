//! Reading Open WebUI's (OpenAI-format) stream chunks. Pure functions, unit-tested.

use std::borrow::Cow;
use std::marker::PhantomData;

use classchat_shared::Usage;
use serde::Deserialize;
use serde::de::{IgnoredAny, SeqAccess, Visitor};

/// What one upstream `data:` line carried; the text borrows from the line unless it had
/// escapes, so relaying a delta copies it once, into the event written to the student.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Chunk<'a> {
    pub text: Option<Cow<'a, str>>,
    pub usage: Option<Usage>,
    pub finished: bool,
    /// An `{"error": {...}}` frame (Open WebUI ends broken streams with one).
    pub error: Option<String>,
}

// The raw shapes borrow from the line: a chunk costs no allocation (but its text when it has
// escapes), not one per field; only the first choice is kept, the rest skipped.
#[derive(Deserialize)]
struct RawChunk<'a> {
    #[serde(default, borrow)]
    choices: FirstChoice<'a>,
    #[serde(default)]
    usage: Option<RawUsage>,
    /// Ollama's native counts, at the top level of its final chunk.
    #[serde(default)]
    prompt_eval_count: Option<u32>,
    #[serde(default)]
    eval_count: Option<u32>,
    #[serde(default)]
    error: Option<RawError>,
}

/// Token counts in every spelling providers use (docs/open-webui.md, "Token counts"):
/// OpenAI's `prompt_tokens`/`completion_tokens`, the Responses-style
/// `input_tokens`/`output_tokens`, and Ollama's `prompt_eval_count`/`eval_count`, which
/// some Open WebUI releases copy into `usage` as they are. Separate fields, not serde
/// aliases: newer releases send two spellings side by side, which aliases refuse.
#[derive(Deserialize, Default)]
struct RawUsage {
    #[serde(default)]
    prompt_tokens: Option<u32>,
    #[serde(default)]
    completion_tokens: Option<u32>,
    #[serde(default)]
    total_tokens: Option<u32>,
    #[serde(default)]
    input_tokens: Option<u32>,
    #[serde(default)]
    output_tokens: Option<u32>,
    #[serde(default)]
    prompt_eval_count: Option<u32>,
    #[serde(default)]
    eval_count: Option<u32>,
}

impl RawChunk<'_> {
    /// The chunk's usage, whichever spelling and place it came in; `None` without counts.
    fn usage(&self) -> Option<Usage> {
        let u = self.usage.as_ref();
        let prompt = u
            .and_then(|u| u.prompt_tokens.or(u.input_tokens).or(u.prompt_eval_count))
            .or(self.prompt_eval_count);
        let completion = u
            .and_then(|u| u.completion_tokens.or(u.output_tokens).or(u.eval_count))
            .or(self.eval_count);
        let total = u
            .and_then(|u| u.total_tokens)
            .or(match (prompt, completion) {
                (Some(p), Some(c)) => Some(p.saturating_add(c)),
                _ => None,
            });
        (prompt.is_some() || completion.is_some() || total.is_some()).then_some(Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: total,
        })
    }
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
    #[serde(default, borrow, deserialize_with = "borrowed")]
    content: Option<Cow<'a, str>>,
}

/// An optional string borrowed from the line when it has no escapes. (serde borrows a
/// `Cow<str>` field only when it is the field's whole type, not inside an `Option`.)
fn borrowed<'de: 'a, 'a, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Text<'a>>::deserialize(d)?.map(|t| t.0))
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
pub fn parse_chunk(data: &str) -> Result<Chunk<'_>, serde_json::Error> {
    let raw: RawChunk<'_> = serde_json::from_str(data)?;
    let mut out = Chunk {
        usage: raw.usage(),
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
            .filter(|t| !t.is_empty());
    }
    Ok(out)
}

/// A whole non-streamed `chat.completion`: the reply text and usage.
pub fn parse_completion(body: &[u8]) -> Result<(String, Option<Usage>), String> {
    let raw: RawChunk<'_> =
        serde_json::from_slice(body).map_err(|e| format!("not a chat completion: {e}"))?;
    let usage = raw.usage();
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
    Ok((text, usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The chunk sequence docs/open-webui.md records for a streamed reply.
    const ROLE: &str = r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
    const TEXT: &str = r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#;
    const FINISH: &str = r#"{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
    const USAGE: &str = r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}"#;
    const ERROR: &str = r#"{"error":{"message":"upstream connection reset"}}"#;

    #[test]
    fn reads_each_kind_of_chunk() {
        assert_eq!(parse_chunk(ROLE).unwrap(), Chunk::default());
        assert_eq!(parse_chunk(TEXT).unwrap().text.as_deref(), Some("Hel"));
        // Text without escapes is borrowed from the line, not copied.
        assert!(matches!(
            parse_chunk(TEXT).unwrap().text,
            Some(Cow::Borrowed("Hel"))
        ));
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

    fn counts(data: &str) -> (Option<u32>, Option<u32>, Option<u32>) {
        let u = parse_chunk(data).unwrap().usage.expect("usage read");
        (u.prompt_tokens, u.completion_tokens, u.total_tokens)
    }

    #[test]
    fn reads_every_spelling_of_usage() {
        assert_eq!(counts(USAGE), (Some(12), Some(7), Some(19)));
        assert_eq!(
            counts(r#"{"choices":[],"usage":{"input_tokens":5,"output_tokens":3}}"#),
            (Some(5), Some(3), Some(8))
        );
        // Ollama's own final chunk, and the same counts as some Open WebUI releases pass them.
        assert_eq!(
            counts(r#"{"model":"m","done":true,"prompt_eval_count":26,"eval_count":290}"#),
            (Some(26), Some(290), Some(316))
        );
        assert_eq!(
            counts(
                r#"{"choices":[],"usage":{"response_token/s":"N/A","prompt_eval_count":4,"eval_count":9}}"#
            ),
            (Some(4), Some(9), Some(13))
        );
        // Newer Open WebUI releases send Ollama's counts in two spellings at once.
        assert_eq!(
            counts(
                r#"{"choices":[],"usage":{"input_tokens":2,"output_tokens":6,"prompt_tokens":2,"completion_tokens":6,"total_tokens":8}}"#
            ),
            (Some(2), Some(6), Some(8))
        );
        // Chunks without counts carry no usage, even with an empty or foreign `usage`.
        assert_eq!(parse_chunk(TEXT).unwrap().usage, None);
        assert_eq!(
            parse_chunk(r#"{"choices":[],"usage":{"total_duration":5}}"#)
                .unwrap()
                .usage,
            None
        );
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
