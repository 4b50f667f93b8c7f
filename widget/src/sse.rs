//! Server-sent-event frame decoder for the chat stream.
//!
//! `EventSource` cannot POST or send an `Authorization` header, so the widget reads the
//! `fetch` body itself and feeds the bytes here. Lines are split on bytes, so a UTF-8
//! character cut across two network chunks is reassembled before it is decoded.

/// One dispatched event: the `event:` name (`message` when absent) and its joined `data:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub event: String,
    pub data: String,
}

/// Incremental decoder (WHATWG "event stream interpretation", without `id`/`retry`).
#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
    started: bool,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk of the body; returns the frames it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Frame> {
        self.buf.extend_from_slice(chunk);
        let mut frames = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos;
            let mut line = &self.buf[start..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = String::from_utf8_lossy(line).into_owned();
            start = end + 1;
            if let Some(f) = self.line(&line) {
                frames.push(f);
            }
        }
        self.buf.drain(..start);
        frames
    }

    fn line(&mut self, line: &str) -> Option<Frame> {
        let line = if self.started {
            line
        } else {
            self.started = true;
            line.strip_prefix('\u{feff}').unwrap_or(line)
        };
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            let mut data = std::mem::take(&mut self.data);
            if !std::mem::take(&mut self.has_data) {
                return None;
            }
            if data.ends_with('\n') {
                data.pop();
            }
            let event = if event.is_empty() {
                "message".to_owned()
            } else {
                event
            };
            return Some(Frame { event, data });
        }
        if line.starts_with(':') {
            return None; // comment / keep-alive
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use classchat_shared::{ChatEvent, ErrorCode};

    fn frame(event: &str, data: &str) -> Frame {
        Frame {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn decodes_the_relay_frames_and_skips_keep_alives() {
        let body = ": keep-alive\n\nevent: delta\ndata: {\"text\":\"Hel\"}\n\n\
                    event: delta\ndata: {\"text\":\"lo\"}\n\n:\n\n\
                    event: done\ndata: {\"usage\":null}\n\n";
        let mut d = SseDecoder::new();
        let frames = d.push(body.as_bytes());
        assert_eq!(
            frames,
            vec![
                frame("delta", "{\"text\":\"Hel\"}"),
                frame("delta", "{\"text\":\"lo\"}"),
                frame("done", "{\"usage\":null}"),
            ]
        );
        let events: Vec<ChatEvent> = frames
            .iter()
            .map(|f| ChatEvent::parse(&f.event, &f.data).unwrap())
            .collect();
        assert_eq!(events[0], ChatEvent::Delta { text: "Hel".into() });
        assert_eq!(
            events[2],
            ChatEvent::Done {
                usage: None,
                limits: None
            }
        );
    }

    #[test]
    fn frames_split_anywhere_even_inside_a_utf8_character() {
        let body = "event: delta\r\ndata: {\"text\":\"你好 🎉\"}\r\n\r\nevent: error\r\ndata: {\"code\":\"upstream_error\",\"message\":\"x\"}\r\n\r\n";
        let bytes = body.as_bytes();
        for size in 1..8 {
            let mut d = SseDecoder::new();
            let mut frames = Vec::new();
            for chunk in bytes.chunks(size) {
                frames.extend(d.push(chunk));
            }
            assert_eq!(frames.len(), 2, "chunk size {size}");
            assert_eq!(frames[0], frame("delta", "{\"text\":\"你好 🎉\"}"));
            assert_eq!(
                ChatEvent::parse(&frames[1].event, &frames[1].data).unwrap(),
                ChatEvent::Error {
                    code: ErrorCode::UpstreamError,
                    message: "x".into(),
                    retry_after: None,
                    limit: None,
                }
            );
        }
    }

    #[test]
    fn multi_line_data_default_event_and_unfinished_frames() {
        let mut d = SseDecoder::new();
        assert_eq!(
            d.push(b"\xEF\xBB\xBFdata: a\ndata:b\n\n"),
            vec![frame("message", "a\nb")]
        );
        // No blank line yet: nothing is dispatched.
        assert!(d.push(b"event: delta\ndata: {}").is_empty());
        assert_eq!(d.push(b"\n\n"), vec![frame("delta", "{}")]);
        // An event line alone (no data) dispatches nothing and does not leak into the next.
        assert!(d.push(b"event: done\n\n").is_empty());
        assert_eq!(d.push(b"data: x\n\n"), vec![frame("message", "x")]);
    }
}
