//! What the widget keeps in `localStorage`, and when the token needs refreshing.
//!
//! Keys carry the server's address, so two classchat servers embedded on one site do not
//! mix tokens, and the class id, so a conversation stays with its class:
//! `classchat:v1:<server>:session` holds the [`SessionResponse`] as JSON and
//! `classchat:v1:<server>:<class_id>:conversation` the [`Conversation`] with the
//! `session_expires_at` of the session it was written under.
//!
//! Lab PCs are shared by students who use the same class code: a conversation belongs to
//! one session. It is shown only under that session and is dropped once the session's
//! maximum age has passed, and sign-out removes every key under the server's prefix.

use classchat_shared::{ChatMessage, Role, SessionResponse};
use serde::{Deserialize, Serialize};

use crate::state::Conversation;

/// Refresh the token this long before it expires.
pub const REFRESH_LEAD_SECS: i64 = 120;

/// Every key the widget writes for `server` starts with this.
pub fn server_prefix(server: &str) -> String {
    format!("classchat:v1:{server}:")
}

pub fn session_key(server: &str) -> String {
    format!("classchat:v1:{server}:session")
}

/// True for the keys this widget writes for `server`: its session and its conversations.
/// Class ids have no `:`, so `http://a` does not claim the keys of `http://a:3000`.
pub fn is_own_key(server: &str, key: &str) -> bool {
    key.strip_prefix(&server_prefix(server))
        .is_some_and(|rest| rest == "session" || class_of_conversation(rest).is_some())
}

/// True for this server's conversation keys (of any class).
pub fn is_conversation_key(server: &str, key: &str) -> bool {
    key.strip_prefix(&server_prefix(server))
        .and_then(class_of_conversation)
        .is_some()
}

fn class_of_conversation(rest: &str) -> Option<&str> {
    rest.strip_suffix(":conversation")
        .filter(|class| !class.is_empty() && !class.contains(':'))
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
    (s.expires_at > now + 5 && s.session_expires_at > now && !s.token.is_empty()).then_some(s)
}

/// A conversation as stored: with the end of the session that wrote it.
#[derive(Serialize, Deserialize)]
struct StoredConversation {
    session_expires_at: i64,
    id: String,
    messages: Vec<ChatMessage>,
}

/// The conversation as written under `session`.
pub fn encode_conversation(c: &Conversation, session: &SessionResponse) -> String {
    serde_json::to_string(&StoredConversation {
        session_expires_at: session.session_expires_at,
        id: c.id.clone(),
        messages: c.messages.clone(),
    })
    .unwrap_or_default()
}

/// A stored conversation if it may be shown under `session` at `now`: written under that
/// session (another student's session on a shared PC had another end) and younger than
/// the session's maximum age. Anything unreadable or not ours (a system message) is
/// dropped.
pub fn decode_conversation(
    json: &str,
    session: &SessionResponse,
    now: i64,
) -> Option<Conversation> {
    let stored: StoredConversation = serde_json::from_str(json).ok()?;
    if stored.session_expires_at != session.session_expires_at || stored.session_expires_at <= now {
        return None;
    }
    let mut c = Conversation {
        id: stored.id,
        messages: stored.messages,
    };
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
    use classchat_shared::ClassInfo;

    fn session(expires_at: i64, session_expires_at: i64) -> SessionResponse {
        SessionResponse {
            token: "t.o.k".into(),
            expires_at,
            session_expires_at,
            class: ClassInfo {
                id: "math-7".into(),
                title: "Math 7".into(),
                greeting: Some("Hi!".into()),
                starters: Vec::new(),
            },
            visibility: Default::default(),
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
        // A token that outlives its session (a clock change) is not used either.
        assert_eq!(
            decode_session(&encode_session(&session(5_000, 800)), 900),
            None
        );
    }

    #[test]
    fn every_key_sits_under_the_server_prefix() {
        let server = "http://127.0.0.1:3000";
        let prefix = server_prefix(server);
        assert!(session_key(server).starts_with(&prefix));
        assert!(conversation_key(server, "math-7").starts_with(&prefix));
        assert!(is_conversation_key(
            server,
            &conversation_key(server, "math-7")
        ));
        assert!(!is_conversation_key(server, &session_key(server)));
        for key in [session_key(server), conversation_key(server, "math-7")] {
            assert!(is_own_key(server, &key), "{key}");
            assert!(!is_own_key("https://other.example", &key), "{key}");
            // The same host without the port is another server.
            assert!(!is_own_key("http://127.0.0.1", &key), "{key}");
        }
        assert!(!is_own_key(server, "classchat:v1:http://127.0.0.1:3000:x"));
        assert!(!is_own_key(server, "unrelated"));
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
        let s = session(1_000, 5_000);
        let c = Conversation {
            id: "c-abc".into(),
            messages: vec![ChatMessage::user("hi"), ChatMessage::assistant("hello")],
        };
        assert_eq!(
            decode_conversation(&encode_conversation(&c, &s), &s, 900),
            Some(c)
        );
        let bad_id = r#"{"session_expires_at":5000,"id":"a b","messages":[]}"#;
        assert_eq!(decode_conversation(bad_id, &s, 900), None);
        let sys = r#"{"session_expires_at":5000,"id":"c","messages":[{"role":"system","content":"x"},{"role":"user","content":"y"}]}"#;
        assert_eq!(decode_conversation(sys, &s, 900).unwrap().messages.len(), 1);
        // Written before conversations named their session: whose it was is unknown.
        let unowned = r#"{"id":"c","messages":[{"role":"user","content":"y"}]}"#;
        assert_eq!(decode_conversation(unowned, &s, 900), None);
    }

    #[test]
    fn a_conversation_shows_only_under_its_session_and_within_its_maximum_age() {
        let first = session(1_000, 5_000);
        let c = Conversation {
            id: "c-abc".into(),
            messages: vec![ChatMessage::user("my secret question")],
        };
        let json = encode_conversation(&c, &first);
        // The next student on the same PC and code signs in later: another session end.
        let next = session(3_000, 7_000);
        assert_eq!(decode_conversation(&json, &next, 2_000), None);
        // The session's maximum age has passed.
        assert_eq!(decode_conversation(&json, &first, 5_000), None);
        assert_eq!(decode_conversation(&json, &first, 4_999), Some(c));
    }
}
