//! One error type for every handler, rendered as the contract's `{"error": {code, message}}`.

use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use classchat_shared::{ApiError, ErrorCode, LimitKind, MessagesProblem};

/// `Result` with [`AppError`] as the default error.
pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// Every outcome a client can see that is not a success.
///
/// Messages are written for the student; nothing here may carry a secret, so upstream
/// and database details stay in the log line, never in the body.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("That access code is not valid.")]
    InvalidCode,
    #[error("{0}")]
    Token(TokenProblem),
    #[error("This class is not open for chat right now.")]
    ClassDisabled,
    /// The widget shows it as a closed class (the same code); the message says why.
    #[error(
        "Your teacher has paused this activity for now. The class's other activities are still open."
    )]
    ActivityPaused,
    /// Outside the class's access windows: when it opens again (RFC 3339, the class's
    /// offset), or `None` when the course has ended.
    #[error("{}", closed_sentence(.opens_at.as_deref()))]
    ClassClosed { opens_at: Option<String> },
    #[error("Not found.")]
    NotFound,
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    InvalidMessages(String),
    #[error("{message}")]
    RateLimited {
        retry_after: u64,
        message: String,
        /// Which limit, when it is one a student can be told about.
        limit: Option<LimitKind>,
    },
    #[error("{message}")]
    Upstream { code: ErrorCode, message: String },
    #[error("classchat cannot reach its database right now. Please try again in a minute.")]
    Unavailable,
    /// [`Self::Unavailable`] with the driver's reason, which only the log sees.
    #[error("classchat cannot reach its database right now. Please try again in a minute.")]
    DatabaseAway(#[source] sqlx::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// Why a widget token was refused; each is its own error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    Missing,
    Invalid,
    Expired,
    Revoked,
    CodeRotated,
}

impl std::fmt::Display for TokenProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Missing => "Sign in with your class access code first.",
            Self::Invalid => "Your sign-in is not valid. Enter the access code again.",
            Self::Expired => "Your sign-in has expired. Enter the access code again.",
            Self::Revoked => "You have been signed out. Enter the access code again.",
            Self::CodeRotated => {
                "The class access code has changed. Enter the new code from your teacher."
            }
        })
    }
}

impl AppError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::InvalidCode => ErrorCode::InvalidCode,
            Self::Token(TokenProblem::Missing | TokenProblem::Invalid) => ErrorCode::InvalidToken,
            Self::Token(TokenProblem::Expired) => ErrorCode::TokenExpired,
            Self::Token(TokenProblem::Revoked | TokenProblem::CodeRotated) => {
                ErrorCode::SessionRevoked
            }
            Self::ClassDisabled | Self::ActivityPaused => ErrorCode::ClassDisabled,
            Self::ClassClosed { .. } => ErrorCode::ClassClosed,
            Self::NotFound => ErrorCode::NotFound,
            Self::TooLarge(_) => ErrorCode::TooLarge,
            Self::InvalidMessages(_) => ErrorCode::InvalidMessages,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Upstream { code, .. } => *code,
            Self::Unavailable | Self::DatabaseAway(_) => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn rate_limited(retry_after: u64, message: impl Into<String>) -> Self {
        Self::RateLimited {
            retry_after: retry_after.max(1),
            message: message.into(),
            limit: None,
        }
    }

    /// A message refused by a named limit: the widget says which and counts down.
    pub fn limit_hit(limit: LimitKind, retry_after: u64, message: impl Into<String>) -> Self {
        Self::RateLimited {
            retry_after: retry_after.max(1),
            message: message.into(),
            limit: Some(limit),
        }
    }

    /// The body the client sees.
    pub fn to_api_error(&self) -> ApiError {
        let message = match self {
            Self::Internal(_) => "Something went wrong on the server. Please try again.".to_owned(),
            other => other.to_string(),
        };
        let mut body = ApiError::new(self.code(), message);
        if let Self::RateLimited {
            retry_after, limit, ..
        } = self
        {
            body = body.with_retry_after(*retry_after).with_limit(*limit);
        }
        if let Self::ClassClosed { opens_at } = self {
            body = body.with_opens_at(opens_at.clone());
        }
        body
    }
}

/// "This class is closed now. It opens on 2026-12-08 at 08:00 (UTC+08:00)." The widget
/// says the same in the student's language from `opens_at`.
fn closed_sentence(opens_at: Option<&str>) -> String {
    match opens_at {
        Some(t) if t.len() >= 19 => format!(
            "This class is closed now. It opens on {} at {} (UTC{}).",
            &t[..10],
            &t[11..16],
            &t[19..]
        ),
        _ => "This class has ended: it does not open again.".to_owned(),
    }
}

impl From<MessagesProblem> for AppError {
    fn from(p: MessagesProblem) -> Self {
        match p.code() {
            ErrorCode::TooLarge => Self::TooLarge(p.message()),
            ErrorCode::BadRequest => Self::BadRequest(p.message()),
            _ => Self::InvalidMessages(p.message()),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            // The database is away (restarting, network): a specific 503, not a 500.
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::DatabaseAway(e),
            e => Self::Internal(anyhow::Error::new(e).context("database")),
        }
    }
}

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::TooLarge(format!(
                    "The request is too large (at most {} KB).",
                    classchat_shared::limits::MAX_BODY_BYTES / 1024
                ))
            }
            JsonRejection::MissingJsonContentType(_) => Self::BadRequest(
                "Send the request as JSON (Content-Type: application/json).".into(),
            ),
            // serde's text names the field and the problem, never a secret we hold.
            JsonRejection::JsonDataError(e) => Self::BadRequest(format!(
                "The request does not have the expected fields: {}",
                e.body_text().trim_start_matches(
                    "Failed to deserialize the JSON body into the target type: "
                )
            )),
            JsonRejection::JsonSyntaxError(_) => {
                Self::BadRequest("The request is not valid JSON.".into())
            }
            other => Self::BadRequest(other.body_text()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // Internal details go to the log (through the failure report), never the body.
        let detail = match &self {
            Self::Internal(e) => Some(format!("{e:#}")),
            Self::DatabaseAway(e) => Some(crate::basics::error_chain(e)),
            _ => None,
        };
        let mut resp = (status, axum::Json(self.to_api_error())).into_response();
        resp.extensions_mut().insert(FailureReport {
            code: self.code().as_str(),
            detail,
        });
        if let Self::RateLimited { retry_after, .. } = self {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        resp
    }
}

/// What a failed response tells the one log line [`crate::startup`]'s failure layer writes
/// for it. Conversions stay pure (no logging), so an error is logged once, with its request
/// id, however many layers it passed through.
#[derive(Debug, Clone)]
pub struct FailureReport {
    /// The contract's error code (or the page's kind, for the dashboard).
    pub code: &'static str,
    /// The cause, for the log only: never a secret, never sent to the client.
    pub detail: Option<String>,
}

/// `Json` whose rejections are [`AppError`]s, so bad JSON gets the contract's error shape.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct AppJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
