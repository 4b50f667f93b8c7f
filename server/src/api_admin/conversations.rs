//! A class's stored conversations (issue 23): its conversation visibility as the API
//! writes it, and the routes that read what `full` and `flagged` kept.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Who can read a class's conversations: `off` (nothing stored, the default), `flagged`
/// (only exchanges flagged for safety, with their context) or `full` (every exchange).
/// Students are told in the widget whenever it is not `off`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // The schema's shape; the fields carry `classchat_shared::Visibility`.
pub(super) enum VisibilityName {
    Off,
    Flagged,
    Full,
}
