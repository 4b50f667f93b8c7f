//! `POST /api/v1/session` and its refresh: access code in, short-lived widget token out.

use serde::{Deserialize, Serialize};

/// What a student sends to sign in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// The class access code the teacher gave out. Compared trimmed and case-insensitively.
    pub access_code: String,
    /// An optional name the teacher sees in usage reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// A freshly issued (or refreshed) widget token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionResponse {
    /// HS256 JWT, sent back as `Authorization: Bearer <token>`.
    pub token: String,
    /// When this token stops working (Unix seconds); refresh before then.
    pub expires_at: i64,
    /// When the session itself ends (Unix seconds): refreshing cannot go past it.
    pub session_expires_at: i64,
    /// The class the code belongs to.
    pub class: ClassInfo,
    /// Who can read this class's conversations: the widget shows a permanent notice unless
    /// `off`. Always sent (also on refresh), so the notice cannot be missing.
    #[serde(default)]
    pub visibility: Visibility,
}

/// A class's conversation visibility, set per class by its owner. A message is stored (or
/// not) by the setting in force when it is sent; a change never reaches older messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// No message text is stored anywhere (the default).
    #[default]
    Off,
    /// Only an exchange flagged for safety is kept, with the exchanges around it.
    Flagged,
    /// Every exchange is kept, sealed, for the class's teachers to read.
    Full,
}

impl Visibility {
    /// As the classes file, the API and the database write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Flagged => "flagged",
            Self::Full => "full",
        }
    }

    /// Parses `off`, `flagged` or `full`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "flagged" => Some(Self::Flagged),
            "full" => Some(Self::Full),
            _ => None,
        }
    }
}

/// What the widget may show about a class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassInfo {
    pub id: String,
    pub title: String,
    /// The first assistant line the widget shows, if the teacher set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greeting: Option<String>,
    /// Suggested first messages, shown on an empty conversation and sent when clicked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub starters: Vec<String>,
}
