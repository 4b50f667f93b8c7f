//! What the widget keeps in `localStorage`, and when the token needs refreshing.
//!
//! Keys carry the server's address, so two classchat servers embedded on one site do not
//! mix tokens, and the class id, so a conversation stays with its class:
//! `classchat:v1:<server>:session` holds the [`SessionResponse`] as JSON and
//! `classchat:v1:<server>:<class_id>:conversation` the [`Conversation`].

use classchat_shared::{Role, SessionResponse};

use crate::state::Conversation;

/// Refresh the token this long before it expires.
pub const REFRESH_LEAD_SECS: i64 = 120;

pub fn session_key(server: &str) -> String {
    format!("classchat:v1:{server}:session")
}

pub fn conversation_key(server: &str, class_id: &str) -> String {
    format!("classchat:v1:{server}:{class_id}:conversation")
}

pub fn encode_session(s: &SessionResponse) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// A stored session that can still be used at `now` (Unix seconds), else `None`.
pub fn decode_session(json: &str, now: i64) -> Option<SessionResponse> {
    let s: SessionResponse = serde_json::from_str(json).ok()?;
    (s.expires_at > now + 5 && !s.token.is_empty()).then_some(s)
}

pub fn encode_conversation(c: &Conversation) -> String {
    serde_json::to_string(c).unwrap_or_default()
}

/// A stored conversation; anything unreadable or not ours (a system message) is dropped.
pub fn decode_conversation(json: &str) -> Option<Conversation> {
    let mut c: Conversation = serde_json::from_str(json).ok()?;
    let id_ok = !c.id.is_empty()
        && c.id.len() <= classchat_shared::limits::MAX_CONVERSATION_ID_CHARS
        && c.id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
    if !id_ok {
        return None;
    }
    c.messages.retain(|m| m.role != Role::System);
    Some(c)
}

/// Seconds from `now` until the token should be refreshed, or `None` when refreshing
/// cannot give a later expiry (the session's maximum age is reached).
pub fn refresh_in(s: &SessionResponse, now: i64) -> Option<i64> {
    if s.expires_at >= s.session_expires_at {
        return None;
    }
    let left = s.expires_at - now;
    // Short-lived tokens are refreshed at half their remaining life instead.
    let lead = REFRESH_LEAD_SECS.min(left / 2);
    Some((left - lead).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use classchat_shared::{ChatMessage, ClassInfo};

    fn session(expires_at: i64, session_expires_at: i64) -> SessionResponse {
        SessionResponse {
            token: "t.o.k".into(),
            expires_at,
            session_expires_at,
            class: ClassInfo {
                id: "math-7".into(),
                title: "Math 7".into(),
                greeting: Some("Hi!".into()),
            },
        }
    }

    #[test]
    fn keys_name_the_server_and_class() {
        assert_eq!(
            session_key("https://chat.example"),
            "classchat:v1:https://chat.example:session"
        );
        assert_eq!(
            conversation_key("http://127.0.0.1:3000", "math-7"),
            "classchat:v1:http://127.0.0.1:3000:math-7:conversation"
        );
    }

    #[test]
    fn a_session_survives_a_reload_until_it_expires() {
        let s = session(1_000, 5_000);
        let json = encode_session(&s);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        for field in ["token", "expires_at", "session_expires_at", "class"] {
            assert!(v.get(field).is_some(), "{field}");
        }
        assert_eq!(decode_session(&json, 900), Some(s));
        assert_eq!(decode_session(&json, 1_000), None);
        assert_eq!(decode_session("not json", 0), None);
    }

    #[test]
    fn refresh_is_due_two_minutes_early_while_the_session_allows() {
        assert_eq!(refresh_in(&session(1_000, 5_000), 0), Some(880));
        assert_eq!(refresh_in(&session(1_000, 5_000), 950), Some(25));
        assert_eq!(refresh_in(&session(1_000, 5_000), 2_000), Some(0));
        assert_eq!(refresh_in(&session(5_000, 5_000), 0), None);
    }

    #[test]
    fn conversations_round_trip_and_bad_ones_are_dropped() {
        let c = Conversation {
            id: "c-abc".into(),
            messages: vec![ChatMessage::user("hi"), ChatMessage::assistant("hello")],
        };
        assert_eq!(decode_conversation(&encode_conversation(&c)), Some(c));
        assert_eq!(decode_conversation(r#"{"id":"a b","messages":[]}"#), None);
        let sys = r#"{"id":"c","messages":[{"role":"system","content":"x"},{"role":"user","content":"y"}]}"#;
        assert_eq!(decode_conversation(sys).unwrap().messages.len(), 1);
    }
}
