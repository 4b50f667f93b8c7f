//! The admin API's errors, in the widget's shape: `{"error": {"code", "message"}}`. The
//! codes are the API's own (`unauthorized`, `forbidden`, …); messages never carry a
//! secret, and database or internal details stay in the log.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Every way an admin API request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiFailure {
    #[error("{0}")]
    BadRequest(String),
    /// No token, an unknown or revoked one, or a disabled teacher's.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Signed in, but the role does not allow it.
    #[error("{0}")]
    Forbidden(String),
    #[error("Not found.")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    /// Well-formed but not acceptable (overlapping periods, an unknown model…): 422 with
    /// a code that names the rule.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// Open WebUI's model list could not be had; the sentence says why.
    #[error("{0}")]
    ModelsUnavailable(String),
    #[error("This invitation has already been used.")]
    InvitationUsed,
    #[error("This invitation has expired. Ask the administrator for a new one.")]
    InvitationExpired,
    #[error("Too many attempts. Please wait {0} seconds and try again.")]
    RateLimited(u64),
    #[error("classchat cannot reach its database right now. Please try again in a minute.")]
    Unavailable,
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// The error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable snake_case code for scripts to match on.
    pub code: &'static str,
    /// A sentence for a person.
    pub message: String,
}

impl ApiFailure {
    /// The HTTP status and the error code.
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::Invalid { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, *code),
            Self::ModelsUnavailable(_) => (StatusCode::BAD_GATEWAY, "models_unavailable"),
            Self::InvitationUsed => (StatusCode::GONE, "invitation_used"),
            Self::InvitationExpired => (StatusCode::GONE, "invitation_expired"),
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<sqlx::Error> for ApiFailure {
    fn from(e: sqlx::Error) -> Self {
        match crate::error::AppError::from(e) {
            crate::error::AppError::Unavailable => Self::Unavailable,
            crate::error::AppError::Internal(e) => Self::Internal(e),
            other => Self::Internal(anyhow::anyhow!("{other}")),
        }
    }
}

impl From<JsonRejection> for ApiFailure {
    fn from(r: JsonRejection) -> Self {
        match crate::error::AppError::from(r) {
            crate::error::AppError::TooLarge(m) | crate::error::AppError::BadRequest(m) => {
                Self::BadRequest(m)
            }
            other => Self::BadRequest(other.to_string()),
        }
    }
}

impl From<QueryRejection> for ApiFailure {
    fn from(r: QueryRejection) -> Self {
        Self::BadRequest(format!(
            "The query string is not as expected: {}",
            r.body_text()
        ))
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        let message = match &self {
            Self::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "admin API: internal error");
                "Something went wrong on the server. Please try again.".to_owned()
            }
            other => other.to_string(),
        };
        let mut resp = (
            status,
            axum::Json(ErrorBody {
                error: ErrorDetail { code, message },
            }),
        )
            .into_response();
        match self {
            Self::RateLimited(secs) => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            Self::Unauthorized(_) => {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        resp
    }
}

/// `Json` whose rejections are [`ApiFailure`]s.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiFailure))]
pub struct ApiJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `Query` whose rejections are [`ApiFailure`]s.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiFailure))]
pub struct ApiQuery<T>(pub T);
