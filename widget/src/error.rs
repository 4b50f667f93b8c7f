//! What can go wrong in the widget, and the sentence a student sees for it.
//!
//! Decisions are made on [`ErrorCode`]s, never on the server's message text.

use classchat_shared::limits::MAX_MESSAGE_CHARS;
use classchat_shared::{ApiError, ErrorCode, LimitKind, MessagesProblem};

use crate::i18n::Text;

/// A failure of a request or of a check before one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WidgetError {
    /// The server answered with an error (before or inside the stream).
    Api {
        code: ErrorCode,
        retry_after: Option<u64>,
    },
    /// `class_closed`: outside the class's hours, until `opens_at` (`None`: it has ended).
    Closed(Option<String>),
    /// `fetch` failed: offline, DNS, CORS, server down.
    Network,
    /// The student (or closing the panel) aborted the request.
    Aborted,
    /// The stream ended without a `done` event.
    CutOff,
    /// A conversation from storage whose last message never got a reply.
    Unanswered,
    /// The draft fails the shared message checks; nothing was sent.
    Invalid(MessagesProblem),
    /// `rate_limited` with a wait: sending opens again `retry_after` seconds after `at_ms`
    /// (when the refusal arrived, ms since the epoch; see [`WidgetError::arrived_at`]).
    /// `limit` says which limit (absent from servers before limits were named).
    Limited {
        limit: Option<LimitKind>,
        retry_after: u64,
        at_ms: u64,
    },
}

impl WidgetError {
    /// From an error body (or just a status, when the body was not JSON).
    pub fn from_response(status: u16, body: &str, retry_after_header: Option<u64>) -> Self {
        match serde_json::from_str::<ApiError>(body) {
            Ok(e) if e.error.code == ErrorCode::ClassClosed => Self::Closed(e.error.opens_at),
            Ok(e) => Self::from_parts(
                e.error.code,
                e.error.retry_after.or(retry_after_header),
                e.error.limit,
            ),
            Err(_) => Self::from_parts(code_for_status(status), retry_after_header, None),
        }
    }

    /// From an error's fields, as an error body or a stream's `error` event carries them.
    pub fn from_parts(code: ErrorCode, retry_after: Option<u64>, limit: Option<LimitKind>) -> Self {
        match (code, retry_after) {
            (ErrorCode::RateLimited, Some(retry_after)) => Self::Limited {
                limit,
                retry_after,
                at_ms: 0,
            },
            (code, retry_after) => Self::Api { code, retry_after },
        }
    }

    /// After this error the student must enter the access code again.
    pub fn needs_sign_in(&self) -> bool {
        matches!(self, Self::Api { code, .. } if code.needs_sign_in())
    }

    /// Whether resending the same conversation may help.
    pub fn retryable(&self) -> bool {
        !matches!(self, Self::Invalid(_) | Self::Aborted)
            && !matches!(
                self,
                Self::Api {
                    code: ErrorCode::TooLarge | ErrorCode::InvalidMessages | ErrorCode::BadRequest,
                    ..
                }
            )
    }

    /// The sentence shown under the login form.
    pub fn login_message(&self, t: &Text) -> String {
        match self {
            Self::Api {
                code: ErrorCode::InvalidCode | ErrorCode::BadRequest,
                ..
            } => t.err_invalid_code.into(),
            Self::Api {
                code: ErrorCode::RateLimited,
                retry_after,
            } => t.too_many_attempts(*retry_after),
            Self::Limited { retry_after, .. } => t.too_many_attempts(Some(*retry_after)),
            _ => self.chat_message(t),
        }
    }

    /// The sentence shown in the chat's error area.
    pub fn chat_message(&self, t: &Text) -> String {
        let s = match self {
            Self::Network => t.err_unreachable,
            Self::CutOff => t.err_cut_off,
            Self::Unanswered => t.err_unanswered,
            Self::Aborted => "",
            Self::Closed(Some(at)) => return t.class_opens(at),
            Self::Closed(None) => t.err_class_ended,
            Self::Invalid(p) => return problem_message(*p, t),
            Self::Limited {
                limit, retry_after, ..
            } => {
                return t.limit_hit(*limit, *retry_after, None);
            }
            Self::Api { code, retry_after } => match code {
                ErrorCode::RateLimited => return t.too_fast(*retry_after),
                ErrorCode::InvalidToken | ErrorCode::TokenExpired | ErrorCode::SessionRevoked => {
                    t.err_session_ended
                }
                // class_closed's opening time (`opens_at`) is not told yet: a variant carrying
                // it measured +800 B brotli, past the size budget.
                ErrorCode::ClassDisabled | ErrorCode::ClassClosed => t.err_class_disabled,
                ErrorCode::InvalidCode => t.err_invalid_code,
                ErrorCode::TooLarge => t.err_conversation_too_long,
                ErrorCode::InvalidMessages | ErrorCode::BadRequest => t.err_invalid_messages,
                ErrorCode::UpstreamError => t.err_upstream_error,
                ErrorCode::UpstreamUnavailable | ErrorCode::Unavailable => {
                    t.err_upstream_unavailable
                }
                ErrorCode::UpstreamTimeout => t.err_upstream_timeout,
                ErrorCode::NotFound | ErrorCode::Internal | ErrorCode::Unknown => t.err_generic,
            },
        };
        s.into()
    }
}

impl WidgetError {
    /// Notes when a refusal by a limit arrived, so its wait can count down.
    pub fn arrived_at(mut self, now_ms: u64) -> Self {
        if let Self::Limited { at_ms, .. } = &mut self {
            *at_ms = now_ms;
        }
        self
    }

    /// When sending opens again (ms since the epoch), for a refusal by a limit.
    pub fn wait_until(&self) -> Option<u64> {
        match self {
            Self::Limited {
                retry_after, at_ms, ..
            } => Some(at_ms + retry_after * 1000),
            _ => None,
        }
    }
}

/// The sentence for a draft that fails [`classchat_shared::validate_messages`].
pub fn problem_message(p: MessagesProblem, t: &Text) -> String {
    match p {
        MessagesProblem::Empty | MessagesProblem::EmptyMessage => t.err_message_empty.into(),
        MessagesProblem::MessageTooLong => t.message_too_long(MAX_MESSAGE_CHARS),
        MessagesProblem::TooMany | MessagesProblem::TotalTooLong => {
            t.err_conversation_too_long.into()
        }
        MessagesProblem::SystemRole
        | MessagesProblem::LastNotUser
        | MessagesProblem::BadConversationId => t.err_invalid_messages.into(),
    }
}

fn code_for_status(status: u16) -> ErrorCode {
    match status {
        400 => ErrorCode::BadRequest,
        401 => ErrorCode::InvalidToken,
        404 => ErrorCode::NotFound,
        413 => ErrorCode::TooLarge,
        422 => ErrorCode::InvalidMessages,
        429 => ErrorCode::RateLimited,
        502 => ErrorCode::UpstreamError,
        503 => ErrorCode::UpstreamUnavailable,
        504 => ErrorCode::UpstreamTimeout,
        _ => ErrorCode::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    #[test]
    fn a_closed_class_says_when_it_opens_in_each_language() {
        let body = r#"{"error":{"code":"class_closed","message":"closed","opens_at":"2026-12-08T08:00:00+08:00"}}"#;
        let e = WidgetError::from_response(403, body, None);
        assert_eq!(
            e,
            WidgetError::Closed(Some("2026-12-08T08:00:00+08:00".into()))
        );
        assert!(!e.needs_sign_in() && e.retryable());
        assert_eq!(
            e.login_message(Lang::En.text()),
            "This class is closed now. It opens 2026-12-08 08:00."
        );
        assert_eq!(
            e.chat_message(Lang::ZhTw.text()),
            "這個課程目前未開放，將於 2026-12-08 08:00 開放。"
        );
        let ended = WidgetError::from_response(
            403,
            r#"{"error":{"code":"class_closed","message":"ended"}}"#,
            None,
        );
        assert_eq!(ended.chat_message(Lang::En.text()), "This class has ended.");
        assert_eq!(ended.chat_message(Lang::ZhTw.text()), "這個課程已經結束。");
    }

    #[test]
    fn error_bodies_are_read_by_code_with_retry_after() {
        let body = r#"{"error":{"code":"rate_limited","message":"slow down","retry_after":90}}"#;
        let e = WidgetError::from_response(429, body, None);
        assert_eq!(
            e,
            WidgetError::Limited {
                limit: None,
                retry_after: 90,
                at_ms: 0
            }
        );
        let en = Lang::En.text();
        assert_eq!(
            e.login_message(en),
            "Too many attempts. Try again in 2 min."
        );
        let invalid = WidgetError::from_response(
            401,
            r#"{"error":{"code":"invalid_code","message":"no"}}"#,
            None,
        );
        assert_eq!(invalid.login_message(en), en.err_invalid_code);
        assert!(!invalid.needs_sign_in());
    }

    #[test]
    fn a_named_limit_becomes_a_wait_with_its_own_sentence() {
        let en = Lang::En.text();
        let read = |limit: &str, secs: u64| {
            WidgetError::from_response(
                429,
                &format!(
                    r#"{{"error":{{"code":"rate_limited","message":"x","retry_after":{secs},"limit":"{limit}"}}}}"#
                ),
                None,
            )
        };
        let minute = read("minute", 42);
        assert_eq!(
            minute,
            WidgetError::Limited {
                limit: Some(LimitKind::Minute),
                retry_after: 42,
                at_ms: 0
            }
        );
        assert_eq!(minute.clone().arrived_at(1_000).wait_until(), Some(43_000));
        assert!(minute.retryable() && !minute.needs_sign_in());
        assert_eq!(
            minute.chat_message(en),
            "You have sent as many messages as you can this minute. You can send again in 0:42."
        );
        assert!(
            read("class_minute", 5)
                .chat_message(en)
                .starts_with("Your class has sent")
        );
        assert!(
            read("day", 5)
                .chat_message(en)
                .starts_with("Your class has used today's")
        );
        assert!(
            read("upstream", 5)
                .chat_message(en)
                .starts_with("The AI service")
        );
        // An older server names no limit: the general sentence, still with the countdown.
        let old = WidgetError::from_response(
            429,
            r#"{"error":{"code":"rate_limited","message":"x","retry_after":3}}"#,
            None,
        );
        assert_eq!(
            old.chat_message(en),
            "You are sending messages too quickly. You can send again in 0:03."
        );
        // Without a wait there is nothing to count down.
        let bare = WidgetError::from_response(
            429,
            r#"{"error":{"code":"rate_limited","message":"x"}}"#,
            None,
        );
        assert_eq!(bare.arrived_at(5).wait_until(), None);
    }

    #[test]
    fn non_json_bodies_fall_back_to_the_status() {
        let e = WidgetError::from_response(503, "<html>Bad gateway</html>", Some(5));
        assert_eq!(
            e,
            WidgetError::Api {
                code: ErrorCode::UpstreamUnavailable,
                retry_after: Some(5)
            }
        );
        assert!(WidgetError::from_response(401, "", None).needs_sign_in());
    }

    #[test]
    fn token_problems_send_the_student_back_to_sign_in() {
        for code in [
            ErrorCode::TokenExpired,
            ErrorCode::InvalidToken,
            ErrorCode::SessionRevoked,
            ErrorCode::ClassDisabled,
        ] {
            let e = WidgetError::Api {
                code,
                retry_after: None,
            };
            assert!(e.needs_sign_in());
            assert!(e.retryable());
        }
        assert!(!WidgetError::Network.needs_sign_in());
        assert!(WidgetError::Network.retryable());
        assert!(!WidgetError::Invalid(MessagesProblem::MessageTooLong).retryable());
    }

    #[test]
    fn every_problem_has_a_sentence() {
        let zh = Lang::ZhTw.text();
        assert_eq!(
            problem_message(MessagesProblem::MessageTooLong, zh),
            "訊息太長了（最多 8000 個字元）。"
        );
        assert_eq!(
            problem_message(MessagesProblem::TooMany, zh),
            zh.err_conversation_too_long
        );
    }
}
