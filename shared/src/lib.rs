//! The wire contract between the classchat widget and server (see DESIGN.md).
//!
//! Everything here is plain serde data so it builds for the server and for `wasm32`;
//! both sides use the same types and the same limits, so they cannot drift apart.

pub mod auth;
pub mod chat;
pub mod error;
pub mod limits;

pub use auth::{ClassInfo, SessionRequest, SessionResponse, Visibility};
pub use chat::{
    Allowance, ChatEvent, ChatMessage, ChatRequest, ChatResponse, LimitsLeft, MessagesProblem,
    Role, Usage, validate_messages, validate_request,
};
pub use error::{ApiError, ErrorBody, ErrorCode, LimitKind};
