//! The one error shape every endpoint answers with.

use serde::{Deserialize, Serialize};

/// Machine-readable error codes. The widget matches on these, never on message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    InvalidCode,
    InvalidToken,
    TokenExpired,
    SessionRevoked,
    ClassDisabled,
    /// Outside the class's access windows (403); `opens_at` says when it opens again.
    ClassClosed,
    NotFound,
    TooLarge,
    InvalidMessages,
    RateLimited,
    UpstreamError,
    UpstreamUnavailable,
    UpstreamTimeout,
    /// classchat's own database is not answering (sign-ins need it on PostgreSQL).
    Unavailable,
    Internal,
    /// A code this build does not know yet (a newer server); treated as a generic failure.
    Unknown,
}

/// Read through `String` and [`ErrorCode::as_str`] rather than a derived enum decoder
/// (which holds every name twice, for `str` and bytes): the same result in less wasm.
impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use ErrorCode::*;
        let name = String::deserialize(d)?;
        let known = [
            BadRequest,
            InvalidCode,
            InvalidToken,
            TokenExpired,
            SessionRevoked,
            ClassDisabled,
            ClassClosed,
            NotFound,
            TooLarge,
            InvalidMessages,
            RateLimited,
            UpstreamError,
            UpstreamUnavailable,
            UpstreamTimeout,
            Unavailable,
            Internal,
        ];
        Ok(known
            .into_iter()
            .find(|c| c.as_str() == name)
            .unwrap_or(Unknown))
    }
}

impl ErrorCode {
    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::InvalidCode
            | Self::InvalidToken
            | Self::TokenExpired
            | Self::SessionRevoked
            | Self::ClassDisabled => 401,
            Self::ClassClosed => 403,
            Self::NotFound => 404,
            Self::TooLarge => 413,
            Self::InvalidMessages => 422,
            Self::RateLimited => 429,
            Self::UpstreamError => 502,
            Self::UpstreamUnavailable | Self::Unavailable => 503,
            Self::UpstreamTimeout => 504,
            Self::Internal | Self::Unknown => 500,
        }
    }

    /// The snake_case name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::InvalidCode => "invalid_code",
            Self::InvalidToken => "invalid_token",
            Self::TokenExpired => "token_expired",
            Self::SessionRevoked => "session_revoked",
            Self::ClassDisabled => "class_disabled",
            Self::ClassClosed => "class_closed",
            Self::NotFound => "not_found",
            Self::TooLarge => "too_large",
            Self::InvalidMessages => "invalid_messages",
            Self::RateLimited => "rate_limited",
            Self::UpstreamError => "upstream_error",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::Unknown => "unknown",
        }
    }

    /// True for the codes after which the student must enter the access code again.
    pub fn needs_sign_in(self) -> bool {
        matches!(
            self,
            Self::InvalidToken | Self::TokenExpired | Self::SessionRevoked | Self::ClassDisabled
        )
    }
}

/// Which limit a `rate_limited` refusal is about, so the widget can say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// The student's own messages per minute.
    Minute,
    /// The whole class's messages per minute.
    ClassMinute,
    /// The class's daily quota (opens again at the class's local midnight).
    Day,
    /// The student's own allowance for the day (a student known by a personal code or
    /// the LMS; it follows them across sessions and devices).
    StudentDay,
    /// The student's own allowance for the week (starts again on Monday).
    StudentWeek,
    /// Open WebUI or its model provider refused (429).
    Upstream,
    /// A kind this build does not know (a newer server).
    Other,
}

/// Read through `String` (whose decoder the widget has anyway) rather than a derived enum
/// decoder: the same result in less wasm.
impl<'de> Deserialize<'de> for LimitKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match String::deserialize(d)?.as_str() {
            "minute" => Self::Minute,
            "class_minute" => Self::ClassMinute,
            "day" => Self::Day,
            "student_day" => Self::StudentDay,
            "student_week" => Self::StudentWeek,
            "upstream" => Self::Upstream,
            _ => Self::Other,
        })
    }
}

/// `{"error": {"code": "...", "message": "..."}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: ErrorBody,
}

/// The inside of [`ApiError`]. Read through the stream events' decoder (less wasm).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "crate::chat::EventData")]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// A sentence for a person. Never contains a secret.
    pub message: String,
    /// Seconds to wait before trying again (with `rate_limited`); mirrors `Retry-After`,
    /// which a cross-origin page cannot always read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// With `rate_limited`: which limit refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitKind>,
    /// With `class_closed`: when the class opens again (RFC 3339, with the class's UTC
    /// offset, e.g. `2026-12-08T08:00:00+08:00`); absent when the course has ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opens_at: Option<String>,
}

impl TryFrom<crate::chat::EventData> for ErrorBody {
    type Error = &'static str;
    fn try_from(d: crate::chat::EventData) -> Result<Self, Self::Error> {
        Ok(Self {
            code: d.code.ok_or("missing field `code`")?,
            message: d.message.ok_or("missing field `message`")?,
            retry_after: d.retry_after,
            limit: d.limit,
            opens_at: d.opens_at,
        })
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error: ErrorBody {
                code,
                message: message.into(),
                retry_after: None,
                limit: None,
                opens_at: None,
            },
        }
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.error.retry_after = Some(secs);
        self
    }

    pub fn with_limit(mut self, limit: Option<LimitKind>) -> Self {
        self.error.limit = limit;
        self
    }

    pub fn with_opens_at(mut self, opens_at: Option<String>) -> Self {
        self.error.opens_at = opens_at;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_serialises_to_the_documented_shape() {
        let e = ApiError::new(ErrorCode::RateLimited, "Too many attempts.").with_retry_after(30);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"code": "rate_limited", "message": "Too many attempts.", "retry_after": 30}})
        );
        let back: ApiError = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn the_limit_kind_is_named_on_the_wire_and_unknown_kinds_are_other() {
        let e = ApiError::new(ErrorCode::RateLimited, "wait")
            .with_retry_after(5)
            .with_limit(Some(LimitKind::ClassMinute));
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["error"]["limit"], "class_minute");
        for k in [
            LimitKind::Minute,
            LimitKind::ClassMinute,
            LimitKind::Day,
            LimitKind::Upstream,
        ] {
            let back: LimitKind = serde_json::from_value(serde_json::to_value(k).unwrap()).unwrap();
            assert_eq!(back, k);
        }
        let later: ApiError = serde_json::from_str(
            r#"{"error":{"code":"rate_limited","message":"x","limit":"per_hour"}}"#,
        )
        .unwrap();
        assert_eq!(later.error.limit, Some(LimitKind::Other));
    }

    #[test]
    fn error_bodies_read_back_whole_and_need_a_code_and_a_message() {
        let e = ApiError::new(ErrorCode::RateLimited, "wait")
            .with_retry_after(30)
            .with_limit(Some(LimitKind::Day));
        let back: ApiError = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
        let plain = ApiError::new(ErrorCode::NotFound, "no");
        let back: ApiError = serde_json::from_str(&serde_json::to_string(&plain).unwrap()).unwrap();
        assert_eq!(back, plain);
        for bad in [
            r#"{"error":{"message":"x"}}"#,
            r#"{"error":{"code":"not_found"}}"#,
            r#"{"error":{"code":"not_found","message":"x","retry_after":-1}}"#,
            r#"{"error":"not_found"}"#,
        ] {
            assert!(serde_json::from_str::<ApiError>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_closed_class_says_when_it_opens() {
        let e = ApiError::new(ErrorCode::ClassClosed, "closed")
            .with_opens_at(Some("2026-12-08T08:00:00+08:00".into()));
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"code": "class_closed", "message": "closed", "opens_at": "2026-12-08T08:00:00+08:00"}})
        );
        let back: ApiError = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
        let ended = ApiError::new(ErrorCode::ClassClosed, "ended");
        assert!(
            serde_json::to_value(&ended).unwrap()["error"]
                .get("opens_at")
                .is_none()
        );
        assert_eq!(ErrorCode::ClassClosed.status(), 403);
        assert!(!ErrorCode::ClassClosed.needs_sign_in());
    }

    #[test]
    fn unknown_codes_do_not_break_old_widgets() {
        let e: ApiError =
            serde_json::from_str(r#"{"error":{"code":"brand_new","message":"x"}}"#).unwrap();
        assert_eq!(e.error.code, ErrorCode::Unknown);
    }

    /// Every code, listed by a match that stops compiling when a code is added.
    fn every_code() -> Vec<ErrorCode> {
        use ErrorCode::*;
        let all = vec![
            BadRequest,
            InvalidCode,
            InvalidToken,
            TokenExpired,
            SessionRevoked,
            ClassDisabled,
            ClassClosed,
            NotFound,
            TooLarge,
            InvalidMessages,
            RateLimited,
            UpstreamError,
            UpstreamUnavailable,
            UpstreamTimeout,
            Unavailable,
            Internal,
            Unknown,
        ];
        for c in &all {
            match c {
                BadRequest | InvalidCode | InvalidToken | TokenExpired | SessionRevoked
                | ClassDisabled | ClassClosed | NotFound | TooLarge | InvalidMessages
                | RateLimited | UpstreamError | UpstreamUnavailable | UpstreamTimeout
                | Unavailable | Internal | Unknown => {}
            }
        }
        all
    }

    #[test]
    fn every_code_round_trips_by_its_wire_name_and_has_an_error_status() {
        let all = every_code();
        let names: std::collections::HashSet<_> = all.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), all.len(), "names are distinct");
        for c in all {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
            let back: ErrorCode = serde_json::from_value(c.as_str().into()).unwrap();
            assert_eq!(back, c, "{c:?}");
            assert!((400..600).contains(&c.status()), "{c:?}");
        }
    }

    #[test]
    fn statuses_follow_the_contract() {
        use ErrorCode::*;
        let want = |c: ErrorCode| match c {
            BadRequest => 400,
            InvalidCode | InvalidToken | TokenExpired | SessionRevoked | ClassDisabled => 401,
            ClassClosed => 403,
            NotFound => 404,
            TooLarge => 413,
            InvalidMessages => 422,
            RateLimited => 429,
            UpstreamError => 502,
            UpstreamUnavailable | Unavailable => 503,
            UpstreamTimeout => 504,
            Internal | Unknown => 500,
        };
        for c in every_code() {
            assert_eq!(c.status(), want(c), "{c:?}");
        }
    }

    #[test]
    fn only_the_session_codes_send_the_student_back_to_sign_in() {
        for c in every_code() {
            let want = matches!(
                c,
                ErrorCode::InvalidToken
                    | ErrorCode::TokenExpired
                    | ErrorCode::SessionRevoked
                    | ErrorCode::ClassDisabled
            );
            assert_eq!(c.needs_sign_in(), want, "{c:?}");
        }
    }
}
