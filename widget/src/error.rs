//! What can go wrong in the widget, and the sentence a student sees for it.
//!
//! Decisions are made on [`ErrorCode`]s, never on the server's message text.

use classchat_shared::limits::MAX_MESSAGE_CHARS;
use classchat_shared::{ApiError, ErrorCode, MessagesProblem};

use crate::i18n::Text;

/// A failure of a request or of a check before one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WidgetError {
    /// The server answered with an error (before or inside the stream).
    Api {
        code: ErrorCode,
        retry_after: Option<u64>,
    },
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
}

impl WidgetError {
    /// From an error body (or just a status, when the body was not JSON).
    pub fn from_response(status: u16, body: &str, retry_after_header: Option<u64>) -> Self {
        match serde_json::from_str::<ApiError>(body) {
            Ok(e) => Self::Api {
                code: e.error.code,
                retry_after: e.error.retry_after.or(retry_after_header),
            },
            Err(_) => Self::Api {
                code: code_for_status(status),
                retry_after: retry_after_header,
            },
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
            Self::Invalid(p) => return problem_message(*p, t),
            Self::Api { code, retry_after } => match code {
                ErrorCode::RateLimited => return t.too_fast(*retry_after),
                ErrorCode::InvalidToken | ErrorCode::TokenExpired | ErrorCode::SessionRevoked => {
                    t.err_session_ended
                }
                ErrorCode::ClassDisabled => t.err_class_disabled,
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
    fn error_bodies_are_read_by_code_with_retry_after() {
        let body = r#"{"error":{"code":"rate_limited","message":"slow down","retry_after":90}}"#;
        let e = WidgetError::from_response(429, body, None);
        assert_eq!(
            e,
            WidgetError::Api {
                code: ErrorCode::RateLimited,
                retry_after: Some(90)
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
