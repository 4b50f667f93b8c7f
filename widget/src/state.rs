//! The conversation and its reply cycle as a plain state machine.
//!
//! The UI keeps one [`ChatState`] in a signal and calls these methods; every transition
//! is a pure function here, so `cargo test` checks the behaviour that matters to
//! students: a failed send keeps their text, a stopped reply keeps what arrived, and a
//! late event from an abandoned request cannot touch a newer one.

use classchat_shared::{
    ChatMessage, ChatRequest, LimitsLeft, MessagesProblem, Role, validate_messages,
};
use serde::{Deserialize, Serialize};

use crate::error::WidgetError;
use crate::i18n::FewLeft;

/// At most this many messages left this minute, the widget says so.
pub const FEW_THIS_MINUTE: u32 = 2;
/// At most this many messages left today for the class, the widget says so.
pub const FEW_TODAY: u32 = 5;

/// One conversation with one class, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub messages: Vec<ChatMessage>,
}

impl Conversation {
    pub fn new(id: String) -> Self {
        Self {
            id,
            messages: Vec::new(),
        }
    }

    /// What goes upstream: user and assistant turns with content (the greeting is not a
    /// message, and an empty stopped reply says nothing).
    pub fn outgoing(&self) -> Vec<ChatMessage> {
        self.messages
            .iter()
            .filter(|m| m.role != Role::System)
            .filter(|m| !(m.role == Role::Assistant && m.content.trim().is_empty()))
            .cloned()
            .collect()
    }
}

/// Why the last send did not complete, and whether the reply shown is partial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub error: WidgetError,
    /// The partial reply that arrived before the failure was kept as the last message;
    /// a retry replaces it.
    pub partial_kept: bool,
}

/// The chat panel's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatState {
    pub conversation: Conversation,
    /// The reply being streamed (`Some` while a request is in flight).
    pub partial: Option<String>,
    pub failure: Option<Failure>,
    /// Counts requests and resets, so events of an abandoned request are ignored.
    pub turn: u32,
    /// What the last completed reply said is left of the limits, and when it arrived (ms
    /// since the epoch).
    pub limits: Option<(u64, LimitsLeft)>,
    /// Help resources the server sent for a flagged message: shown below the replies
    /// until the conversation starts over.
    pub help: Option<String>,
}

impl ChatState {
    pub fn new(conversation: Conversation) -> Self {
        let unanswered = conversation
            .messages
            .last()
            .is_some_and(|m| m.role == Role::User);
        Self {
            conversation,
            partial: None,
            failure: unanswered.then_some(Failure {
                error: WidgetError::Unanswered,
                partial_kept: false,
            }),
            turn: 0,
            limits: None,
            help: None,
        }
    }

    pub fn streaming(&self) -> bool {
        self.partial.is_some()
    }

    fn request(&self) -> ChatRequest {
        ChatRequest {
            conversation_id: self.conversation.id.clone(),
            messages: self.conversation.outgoing(),
            stream: true,
        }
    }

    /// Adds the student's message and starts a reply, or says why it cannot be sent (the
    /// draft then stays in the input and nothing changes).
    pub fn send(&mut self, text: &str) -> Result<(u32, ChatRequest), MessagesProblem> {
        let text = text.trim();
        if self.streaming() {
            return Err(MessagesProblem::LastNotUser);
        }
        let mut candidate = self.conversation.outgoing();
        candidate.push(ChatMessage::user(text));
        validate_messages(&candidate)?;
        self.conversation.messages.push(ChatMessage::user(text));
        Ok(self.start())
    }

    /// Sends the conversation again after a failure (dropping a partial reply).
    pub fn retry(&mut self) -> Option<(u32, ChatRequest)> {
        if self.streaming() {
            return None;
        }
        let failure = self.failure.take()?;
        if failure.partial_kept
            && self
                .conversation
                .messages
                .last()
                .is_some_and(|m| m.role == Role::Assistant)
        {
            self.conversation.messages.pop();
        }
        if validate_messages(&self.conversation.outgoing()).is_err() {
            self.failure = Some(failure);
            return None;
        }
        Some(self.start())
    }

    fn start(&mut self) -> (u32, ChatRequest) {
        self.turn += 1;
        self.partial = Some(String::new());
        self.failure = None;
        (self.turn, self.request())
    }

    /// Records a problem found before sending (nothing is sent).
    pub fn refuse(&mut self, problem: MessagesProblem) {
        self.failure = Some(Failure {
            error: WidgetError::Invalid(problem),
            partial_kept: false,
        });
    }

    pub fn delta(&mut self, turn: u32, text: &str) {
        if turn == self.turn
            && let Some(p) = &mut self.partial
        {
            p.push_str(text);
        }
    }

    /// The reply is complete; `limits` is what the server says is left, and when it came.
    pub fn done(&mut self, turn: u32, limits: Option<(u64, LimitsLeft)>) {
        if turn == self.turn {
            self.commit_partial();
            self.limits = limits;
        }
    }

    /// Until when sending waits for a limit (ms since the epoch), if it does.
    pub fn wait_until(&self) -> Option<u64> {
        self.failure.as_ref()?.error.wait_until()
    }

    /// True while a limit holds sending back at `now_ms`.
    pub fn waiting(&self, now_ms: u64) -> bool {
        self.wait_until().is_some_and(|until| until > now_ms)
    }

    /// Once a limit's wait is over, the refused message becomes an ordinary unanswered one,
    /// which the student can retry. Returns whether anything changed.
    pub fn wait_over(&mut self, now_ms: u64) -> bool {
        match &mut self.failure {
            Some(f) if f.error.wait_until().is_some_and(|until| until <= now_ms) => {
                f.error = WidgetError::Unanswered;
                true
            }
            _ => false,
        }
    }

    /// The quiet "few left" line due at `now_ms`, if any.
    pub fn few_left(&self, now_ms: u64) -> Option<FewLeft> {
        let (at, l) = self.limits?;
        let minute_current = l.minute.is_some_and(|m| now_ms < at + m.reset_secs * 1000);
        few_left(&l, minute_current)
    }

    /// The student stopped the reply: what arrived stays.
    pub fn stopped(&mut self, turn: u32) {
        if turn == self.turn {
            self.commit_partial();
        }
    }

    pub fn failed(&mut self, turn: u32, error: WidgetError) {
        if turn != self.turn {
            return;
        }
        if error == WidgetError::Aborted {
            return self.stopped(turn);
        }
        let partial_kept = self.commit_partial();
        self.failure = Some(Failure {
            error,
            partial_kept,
        });
    }

    /// Ends the reply in progress; true when a non-empty partial reply was kept.
    fn commit_partial(&mut self) -> bool {
        match self.partial.take() {
            Some(text) if !text.trim().is_empty() => {
                self.conversation
                    .messages
                    .push(ChatMessage::assistant(text));
                true
            }
            _ => false,
        }
    }

    /// The student signed in again after their token ran out: the send that failed
    /// for that reason can now be retried.
    pub fn signed_in_again(&mut self) {
        if let Some(f) = &mut self.failure
            && f.error.needs_sign_in()
        {
            f.error = WidgetError::Unanswered;
        }
    }

    /// Starts over with a fresh, empty conversation.
    pub fn reset(&mut self, id: String) {
        self.turn += 1;
        self.conversation = Conversation::new(id);
        self.partial = None;
        self.failure = None;
        self.help = None;
    }
}

/// The quiet "few left" line, if one is due: the day's quota first (it lasts longer),
/// then the minute's, while `minute_current` (its refill is not yet due).
pub fn few_left(limits: &LimitsLeft, minute_current: bool) -> Option<FewLeft> {
    if let Some(day) = limits.day.filter(|d| d.left <= FEW_TODAY) {
        return Some(FewLeft::Day(day.left));
    }
    limits
        .minute
        .filter(|m| minute_current && m.left <= FEW_THIS_MINUTE)
        .map(|m| FewLeft::Minute(m.left))
}

/// A fresh conversation id from random numbers in `[0, 1)` and the time: `c-` and base-36
/// digits, well inside the shared limit of 64 letters, digits, `-` or `_`.
pub fn conversation_id(now_ms: f64, mut random: impl FnMut() -> f64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut id = String::from("c-");
    let mut t = now_ms.max(0.0) as u64;
    let mut time = Vec::new();
    while t > 0 {
        time.push(DIGITS[(t % 36) as usize] as char);
        t /= 36;
    }
    id.extend(time.iter().rev());
    id.push('-');
    for _ in 0..16 {
        let r = (random() * 36.0) as usize;
        id.push(DIGITS[r.min(35)] as char);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use classchat_shared::limits::MAX_MESSAGE_CHARS;
    use classchat_shared::{ErrorCode, validate_request};

    fn fresh() -> ChatState {
        ChatState::new(Conversation::new("c-1".into()))
    }

    #[test]
    fn a_streamed_reply_builds_up_and_is_committed_on_done() {
        let mut s = fresh();
        let (turn, req) = s.send("  What is 2+2? ").unwrap();
        assert_eq!(req.messages, vec![ChatMessage::user("What is 2+2?")]);
        assert!(req.stream);
        assert_eq!(validate_request(&req), Ok(()));
        s.delta(turn, "It is ");
        s.delta(turn, "4.");
        assert_eq!(s.partial.as_deref(), Some("It is 4."));
        s.done(turn, None);
        assert!(!s.streaming());
        assert_eq!(
            s.conversation.messages,
            vec![
                ChatMessage::user("What is 2+2?"),
                ChatMessage::assistant("It is 4.")
            ]
        );
        let (_, next) = s.send("and 3+3?").unwrap();
        assert_eq!(next.messages.len(), 3);
    }

    #[test]
    fn help_resources_stay_out_of_the_conversation_and_go_with_a_new_one() {
        let mut s = fresh();
        let (turn, _) = s.send("hello").unwrap();
        s.help = Some("1925 安心專線".into());
        s.delta(turn, "Hi.");
        s.done(turn, None);
        let (_, next) = s.send("again").unwrap();
        assert!(next.messages.iter().all(|m| !m.content.contains("1925")));
        assert!(s.help.is_some(), "shown until the conversation starts over");
        s.reset("new".into());
        assert!(s.help.is_none());
    }

    #[test]
    fn the_limits_of_the_last_reply_are_kept_with_its_turn() {
        use classchat_shared::Allowance;
        let mut s = fresh();
        let left = LimitsLeft {
            minute: Some(Allowance {
                left: 1,
                reset_secs: 40,
            }),
            day: None,
        };
        let (turn, _) = s.send("hi").unwrap();
        s.done(turn, Some((10_000, left)));
        assert_eq!(s.limits, Some((10_000, left)));
        assert_eq!(s.few_left(49_999), Some(FewLeft::Minute(1)));
        assert_eq!(s.few_left(50_000), None, "the minute is whole again");
        // A late `done` of an abandoned turn changes nothing.
        let (next, _) = s.send("again").unwrap();
        s.reset("c-2".into());
        s.done(next, None);
        assert_eq!(s.limits, Some((10_000, left)));
    }

    #[test]
    fn few_left_names_the_day_first_and_the_minute_only_while_current() {
        use classchat_shared::Allowance;
        let a = |left| {
            Some(Allowance {
                left,
                reset_secs: 30,
            })
        };
        let l = |minute, day| LimitsLeft { minute, day };
        assert_eq!(few_left(&l(a(2), None), true), Some(FewLeft::Minute(2)));
        assert_eq!(few_left(&l(a(2), None), false), None);
        assert_eq!(few_left(&l(a(3), None), true), None);
        assert_eq!(few_left(&l(a(0), a(5)), true), Some(FewLeft::Day(5)));
        assert_eq!(few_left(&l(a(1), a(6)), true), Some(FewLeft::Minute(1)));
        assert_eq!(few_left(&l(None, a(40)), true), None);
    }

    #[test]
    fn a_refusal_by_a_limit_waits_then_offers_retry() {
        let mut s = fresh();
        let (turn, _) = s.send("hello").unwrap();
        s.failed(
            turn,
            WidgetError::Limited {
                limit: Some(classchat_shared::LimitKind::Minute),
                retry_after: 30,
                at_ms: 1_000,
            },
        );
        assert_eq!(s.wait_until(), Some(31_000));
        assert!(s.waiting(30_999));
        assert!(!s.wait_over(30_999));
        assert!(!s.waiting(31_000));
        assert!(s.wait_over(31_000));
        assert_eq!(s.failure.as_ref().unwrap().error, WidgetError::Unanswered);
        assert!(!s.wait_over(99_000), "nothing left to change");
        // Other failures do not wait.
        let (again, _) = s.retry().unwrap();
        s.failed(again, WidgetError::Network);
        assert!(!s.waiting(0) && !s.wait_over(u64::MAX));
        assert_eq!(s.failure.as_ref().unwrap().error, WidgetError::Network);
        let (_, req) = s.retry().unwrap();
        assert_eq!(req.messages, vec![ChatMessage::user("hello")]);
    }

    #[test]
    fn a_failed_send_keeps_the_text_and_retry_resends_it() {
        let mut s = fresh();
        let (turn, _) = s.send("hello").unwrap();
        s.failed(turn, WidgetError::Network);
        assert_eq!(s.conversation.messages, vec![ChatMessage::user("hello")]);
        assert!(s.failure.is_some());
        let (turn2, req) = s.retry().unwrap();
        assert!(turn2 > turn);
        assert_eq!(req.messages, vec![ChatMessage::user("hello")]);
        assert!(s.failure.is_none());
    }

    #[test]
    fn a_reply_cut_mid_stream_is_shown_then_replaced_by_retry() {
        let mut s = fresh();
        let (turn, _) = s.send("hello").unwrap();
        s.delta(turn, "Partial ans");
        s.failed(turn, WidgetError::CutOff);
        assert_eq!(s.conversation.messages.len(), 2);
        assert!(s.failure.as_ref().unwrap().partial_kept);
        let (_, req) = s.retry().unwrap();
        assert_eq!(req.messages, vec![ChatMessage::user("hello")]);
    }

    #[test]
    fn stop_keeps_the_partial_reply_without_an_error() {
        let mut s = fresh();
        let (turn, _) = s.send("tell me a story").unwrap();
        s.delta(turn, "Once upon");
        s.failed(turn, WidgetError::Aborted);
        assert_eq!(
            s.conversation.messages.last(),
            Some(&ChatMessage::assistant("Once upon"))
        );
        assert!(s.failure.is_none());
        // Stopping before any text leaves the question unanswered; the next send works.
        let (turn, _) = s.send("again").unwrap();
        s.stopped(turn);
        let (_, req) = s.send("third").unwrap();
        assert_eq!(req.messages.len(), 4);
    }

    #[test]
    fn invalid_drafts_change_nothing() {
        let mut s = fresh();
        assert_eq!(s.send("   "), Err(MessagesProblem::EmptyMessage));
        assert_eq!(
            s.send(&"x".repeat(MAX_MESSAGE_CHARS + 1)),
            Err(MessagesProblem::MessageTooLong)
        );
        assert!(s.conversation.messages.is_empty());
        let (turn, _) = s.send("ok").unwrap();
        assert!(s.send("while streaming").is_err());
        s.done(turn, None);
    }

    #[test]
    fn events_of_an_abandoned_request_are_ignored() {
        let mut s = fresh();
        let (old, _) = s.send("first").unwrap();
        s.reset("c-2".into());
        s.delta(old, "late");
        s.failed(
            old,
            WidgetError::Api {
                code: ErrorCode::UpstreamError,
                retry_after: None,
            },
        );
        assert_eq!(s.conversation, Conversation::new("c-2".into()));
        assert!(s.partial.is_none() && s.failure.is_none());
    }

    #[test]
    fn an_expired_token_keeps_the_message_for_after_sign_in() {
        let mut s = fresh();
        let (turn, _) = s.send("my question").unwrap();
        let expired = WidgetError::Api {
            code: ErrorCode::TokenExpired,
            retry_after: None,
        };
        s.failed(turn, expired);
        s.signed_in_again();
        assert_eq!(s.failure.as_ref().unwrap().error, WidgetError::Unanswered);
        let (_, req) = s.retry().unwrap();
        assert_eq!(req.messages, vec![ChatMessage::user("my question")]);
    }

    #[test]
    fn a_stored_conversation_ending_in_a_question_offers_retry() {
        let conv = Conversation {
            id: "c-9".into(),
            messages: vec![ChatMessage::user("still there?")],
        };
        let mut s = ChatState::new(conv);
        assert_eq!(s.failure.as_ref().unwrap().error, WidgetError::Unanswered);
        assert!(s.retry().is_some());
    }

    #[test]
    fn empty_assistant_messages_are_not_sent() {
        let conv = Conversation {
            id: "c".into(),
            messages: vec![
                ChatMessage::user("a"),
                ChatMessage::assistant(" "),
                ChatMessage::user("b"),
            ],
        };
        assert_eq!(conv.outgoing().len(), 2);
    }

    #[test]
    fn conversation_ids_fit_the_shared_rules() {
        let mut n = 0.0;
        let id = conversation_id(1_700_000_000_000.0, || {
            n = (n + 0.37) % 1.0;
            n
        });
        assert!(id.len() <= 64, "{id}");
        assert!(id.starts_with("c-"));
        let req = ChatRequest {
            conversation_id: id,
            messages: vec![ChatMessage::user("hi")],
            stream: true,
        };
        assert_eq!(validate_request(&req), Ok(()));
        assert_eq!(conversation_id(0.0, || 0.999_999).len(), 2 + 1 + 16);
    }
}
