//! The widget's user-facing strings in English and Traditional Chinese (Taiwan).

use classchat_shared::LimitKind;
use std::sync::atomic::{AtomicBool, Ordering};

/// A supported language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    ZhTw,
}

impl Lang {
    /// The configured language (`data-lang`), else the browser's (`navigator.language`):
    /// anything starting with `zh` is Traditional Chinese, everything else English.
    pub fn pick(configured: Option<&str>, navigator: Option<&str>) -> Self {
        let configured = configured.map(str::trim).filter(|s| !s.is_empty());
        match configured.or(navigator) {
            Some(tag) if tag.to_ascii_lowercase().starts_with("zh") => Self::ZhTw,
            _ => Self::En,
        }
    }

    /// The BCP 47 tag for the `lang` attribute.
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::ZhTw => "zh-TW",
        }
    }

    pub fn text(self) -> &'static Text {
        match self {
            Self::En => &EN,
            Self::ZhTw => &ZH_TW,
        }
    }

    /// Makes `self` what [`Lang::current`] returns (the widget's `mount` calls it).
    pub fn set_current(self) {
        CURRENT_ZH.store(self == Self::ZhTw, Ordering::Relaxed);
    }

    /// The mounted widget's language, for views built far from the app's context (a
    /// reply's code blocks).
    pub fn current() -> Self {
        if CURRENT_ZH.load(Ordering::Relaxed) {
            Self::ZhTw
        } else {
            Self::En
        }
    }
}

static CURRENT_ZH: AtomicBool = AtomicBool::new(false);

/// Every fixed string the widget shows.
#[derive(Debug)]
pub struct Text {
    pub default_title: &'static str,
    pub new_conversation: &'static str,
    pub sign_out: &'static str,
    pub close: &'static str,
    pub login_intro: &'static str,
    pub access_code: &'static str,
    pub your_name: &'static str,
    pub sign_in: &'static str,
    pub signing_in: &'static str,
    pub conversation: &'static str,
    pub you: &'static str,
    pub assistant: &'static str,
    pub message: &'static str,
    pub placeholder: &'static str,
    pub send: &'static str,
    pub stop: &'static str,
    pub retry: &'static str,
    pub typing: &'static str,
    /// A stream open but silent past the heartbeat: something on the way holds it.
    pub held_up: &'static str,
    /// The stream is open but the model has sent nothing yet: it is probably loading.
    pub starting_up: &'static str,
    /// The class's conversation visibility, told permanently while it is not `off`:
    /// `full`, then `flagged`.
    pub notice_full: &'static str,
    pub notice_flagged: &'static str,
    pub err_code_empty: &'static str,
    pub err_invalid_code: &'static str,
    pub err_name_too_long: &'static str,
    pub err_unreachable: &'static str,
    pub err_session_ended: &'static str,
    pub err_class_disabled: &'static str,
    /// Outside the class's hours: around the opening time; and once the course is over.
    class_opens: (&'static str, &'static str),
    pub err_class_ended: &'static str,
    pub err_conversation_too_long: &'static str,
    pub err_message_empty: &'static str,
    pub err_invalid_messages: &'static str,
    pub err_upstream_error: &'static str,
    pub err_upstream_unavailable: &'static str,
    pub err_upstream_timeout: &'static str,
    pub err_cut_off: &'static str,
    pub err_unanswered: &'static str,
    pub err_generic: &'static str,
    /// Above the help resources shown after a message flagged for safety.
    pub help: &'static str,
    // Pieces of the sentences built by the functions below.
    too_many_attempts: &'static str,
    too_fast: &'static str,
    try_again_in: (&'static str, &'static str),
    seconds: &'static str,
    minutes: &'static str,
    message_too_long: (&'static str, &'static str),
    /// A reply's code block: its copy button, what the button says once it has copied,
    /// and the name of the scrollable code (after the language, when there is one).
    pub copy_code: &'static str,
    pub copied: &'static str,
    pub code: &'static str,
    /// Lead sentences for a refusal by a limit: own minute, class minute, class day, the
    /// AI service, and a limit this build cannot name.
    limit_minute: &'static str,
    limit_class_minute: &'static str,
    limit_day: &'static str,
    /// The student's own allowance: for the day, and for the week (no time: it is Monday).
    limit_student_day: &'static str,
    limit_student_week: &'static str,
    limit_upstream: &'static str,
    send_again_in: (&'static str, &'static str),
    send_again_at: (&'static str, &'static str),
    /// "N messages left this minute" / "… today for this class": (before N, after N when
    /// N is 1, after N otherwise).
    left_minute: (&'static str, &'static str, &'static str),
    left_day: (&'static str, &'static str, &'static str),
}

/// Waits longer than this are told as a clock time rather than counted down.
pub const CLOCK_AFTER_SECS: u64 = 15 * 60;

/// A countdown as a clock shows it: `0:42`, `12:05`, `1:02:03`.
pub fn countdown(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Which limit a quiet "few left" line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FewLeft {
    Minute(u32),
    Day(u32),
}

impl Text {
    /// "Too many attempts. Try again in 30 s." (login, `rate_limited`).
    pub fn too_many_attempts(&self, retry_after: Option<u64>) -> String {
        self.with_wait(self.too_many_attempts, retry_after)
    }

    /// "You are sending messages too quickly. Try again in 2 min." (chat, `rate_limited`).
    pub fn too_fast(&self, retry_after: Option<u64>) -> String {
        self.with_wait(self.too_fast, retry_after)
    }

    fn with_wait(&self, lead: &str, retry_after: Option<u64>) -> String {
        match retry_after {
            Some(secs) => {
                let (pre, post) = self.try_again_in;
                format!("{lead}{pre}{}{post}", self.duration(secs))
            }
            None => lead.to_owned(),
        }
    }

    /// `45 s`, `2 min` (rounded up): short and exact enough for a wait.
    pub fn duration(&self, secs: u64) -> String {
        if secs < 60 {
            format!("{} {}", secs.max(1), self.seconds)
        } else {
            format!("{} {}", secs.div_ceil(60), self.minutes)
        }
    }

    /// The sentence for a refusal by a limit and when sending opens again: counting down
    /// (`in 0:42`), or for a long wait at `clock` (the local time it opens, e.g. `00:00`).
    pub fn limit_hit(&self, limit: Option<LimitKind>, secs: u64, clock: Option<&str>) -> String {
        let lead = match limit {
            Some(LimitKind::Minute) => self.limit_minute,
            Some(LimitKind::ClassMinute) => self.limit_class_minute,
            Some(LimitKind::Day) => self.limit_day,
            Some(LimitKind::StudentDay) => self.limit_student_day,
            Some(LimitKind::StudentWeek) => return self.limit_student_week.to_owned(),
            Some(LimitKind::Upstream) => self.limit_upstream,
            Some(LimitKind::Other) | None => self.too_fast,
        };
        let ((pre, post), when) = match clock {
            Some(c) if secs > CLOCK_AFTER_SECS => (self.send_again_at, c.to_owned()),
            _ => (self.send_again_in, countdown(secs)),
        };
        format!("{lead}{pre}{when}{post}")
    }

    /// "2 messages left this minute." / "5 messages left today for this class."
    pub fn few_left(&self, few: FewLeft) -> String {
        let ((pre, one, many), n) = match few {
            FewLeft::Minute(n) => (self.left_minute, n),
            FewLeft::Day(n) => (self.left_day, n),
        };
        format!("{pre}{n}{}", if n == 1 { one } else { many })
    }

    /// "This class is closed now. It opens 2026-12-08 08:00." from `opens_at`
    /// (`2026-12-08T08:00:00+08:00`), told in the class's own time as the server wrote it.
    pub fn class_opens(&self, opens_at: &str) -> String {
        let (pre, post) = self.class_opens;
        match (opens_at.get(..10), opens_at.get(11..16)) {
            (Some(day), Some(time)) => format!("{pre}{day} {time}{post}"),
            _ => self.err_class_disabled.into(),
        }
    }

    /// "Your message is too long (at most 8000 characters)."
    pub fn message_too_long(&self, max: usize) -> String {
        let (pre, post) = self.message_too_long;
        format!("{pre}{max}{post}")
    }
}

static EN: Text = Text {
    default_title: "Class chat",
    new_conversation: "New conversation",
    sign_out: "Sign out",
    close: "Close chat",
    login_intro: "Enter the access code your teacher gave you.",
    access_code: "Access code",
    your_name: "Your name (optional)",
    sign_in: "Start chatting",
    signing_in: "Signing in…",
    conversation: "Conversation",
    you: "You",
    assistant: "Assistant",
    message: "Message",
    placeholder: "Ask a question…",
    send: "Send",
    stop: "Stop",
    retry: "Retry",
    typing: "The assistant is writing…",
    held_up: "The reply is being held up on the way — a proxy between you and the server may be buffering it. It will appear when it is complete.",
    starting_up: "The assistant is starting up; the first answer can take a minute.",
    notice_full: "Your teacher can read conversations in this class.",
    notice_flagged: "Your teacher is shown messages flagged for safety.",
    err_code_empty: "Enter the access code.",
    err_invalid_code: "That access code is not valid. Check it and try again.",
    err_name_too_long: "Your name is too long.",
    err_unreachable: "Cannot reach the chat server. Check your connection and try again.",
    err_session_ended: "Your session has ended. Enter the access code again to continue.",
    err_class_disabled: "This class is not available right now.",
    class_opens: ("This class is closed now. It opens ", "."),
    err_class_ended: "This class has ended.",
    err_conversation_too_long: "This conversation is too long. Start a new conversation.",
    err_message_empty: "Type a message first.",
    err_invalid_messages: "This message cannot be sent. Start a new conversation.",
    err_upstream_error: "The assistant had a problem answering. Try again.",
    err_upstream_unavailable: "The assistant is not available right now. Try again later.",
    err_upstream_timeout: "The assistant took too long to answer. Try again.",
    err_cut_off: "The reply was cut off. Try again.",
    err_unanswered: "This message has not been answered yet.",
    err_generic: "Something went wrong. Try again.",
    help: "You are not alone. If you are going through something hard, you can talk to someone now:",
    too_many_attempts: "Too many attempts.",
    too_fast: "You are sending messages too quickly.",
    try_again_in: (" Try again in ", "."),
    seconds: "s",
    minutes: "min",
    message_too_long: ("Your message is too long (at most ", " characters)."),
    copy_code: "Copy code",
    copied: "Copied",
    code: "code",
    limit_minute: "You have sent as many messages as you can this minute.",
    limit_class_minute: "Your class has sent as many messages as it can this minute.",
    limit_day: "Your class has used today's messages.",
    limit_student_day: "You have used your messages for today.",
    limit_student_week: "You have used your messages for this week. They start again on Monday.",
    limit_upstream: "The AI service has reached its usage limit for now.",
    send_again_in: (" You can send again in ", "."),
    send_again_at: (" You can send again at ", "."),
    left_minute: (
        "",
        " message left this minute.",
        " messages left this minute.",
    ),
    left_day: (
        "",
        " message left today for this class.",
        " messages left today for this class.",
    ),
};

static ZH_TW: Text = Text {
    default_title: "課堂聊天",
    new_conversation: "新對話",
    sign_out: "登出",
    close: "關閉聊天",
    login_intro: "請輸入老師給你的存取碼。",
    access_code: "存取碼",
    your_name: "你的名字（選填）",
    sign_in: "開始聊天",
    signing_in: "登入中…",
    conversation: "對話內容",
    you: "你",
    assistant: "助理",
    message: "訊息",
    placeholder: "輸入你的問題…",
    send: "傳送",
    stop: "停止",
    retry: "重試",
    typing: "助理正在回覆…",
    held_up: "回覆在傳送途中被延遲了——你和伺服器之間的代理伺服器可能正在暫存它。回覆完成後就會顯示。",
    starting_up: "助理正在啟動中，第一個回答可能需要一分鐘。",
    notice_full: "老師可以閱讀這個班級的對話。",
    notice_flagged: "老師會看到被標示為安全疑慮的訊息。",
    err_code_empty: "請輸入存取碼。",
    err_invalid_code: "存取碼不正確，請檢查後再試一次。",
    err_name_too_long: "名字太長了。",
    err_unreachable: "無法連線到聊天伺服器，請檢查網路後再試一次。",
    err_session_ended: "登入已過期，請重新輸入存取碼以繼續。",
    err_class_disabled: "這個課程目前無法使用。",
    class_opens: ("這個課程目前未開放，將於 ", " 開放。"),
    err_class_ended: "這個課程已經結束。",
    err_conversation_too_long: "這段對話太長了，請開始新對話。",
    err_message_empty: "請先輸入訊息。",
    err_invalid_messages: "這則訊息無法傳送，請開始新對話。",
    err_upstream_error: "助理回覆時發生問題，請再試一次。",
    err_upstream_unavailable: "助理目前無法使用，請稍後再試。",
    err_upstream_timeout: "助理回覆逾時，請再試一次。",
    err_cut_off: "回覆中斷了，請再試一次。",
    err_unanswered: "這則訊息尚未得到回覆。",
    err_generic: "發生錯誤，請再試一次。",
    help: "你並不孤單。如果你正經歷困難，現在就可以找人談談：",
    too_many_attempts: "嘗試次數過多。",
    too_fast: "傳送訊息太頻繁了。",
    try_again_in: ("請在 ", " 後再試。"),
    seconds: "秒",
    minutes: "分鐘",
    message_too_long: ("訊息太長了（最多 ", " 個字元）。"),
    copy_code: "複製程式碼",
    copied: "已複製",
    code: "程式碼",
    limit_minute: "你這一分鐘能傳的訊息已經用完了。",
    limit_class_minute: "你的班級這一分鐘能傳的訊息已經用完了。",
    limit_day: "你的班級今天的訊息已經用完了。",
    limit_student_day: "你今天的訊息額度已經用完了。",
    limit_student_week: "你這週的訊息額度已經用完了，星期一會重新開始。",
    limit_upstream: "AI 服務暫時達到使用上限。",
    send_again_in: ("可在 ", " 後再傳送。"),
    send_again_at: ("可在 ", " 再傳送。"),
    left_minute: ("這一分鐘還可以傳 ", " 則訊息。", " 則訊息。"),
    left_day: ("班級今天還可以傳 ", " 則訊息。", " 則訊息。"),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_comes_from_config_then_browser() {
        assert_eq!(Lang::pick(Some("zh-TW"), Some("en-US")), Lang::ZhTw);
        assert_eq!(Lang::pick(Some("en"), Some("zh-TW")), Lang::En);
        assert_eq!(Lang::pick(None, Some("zh-Hant-TW")), Lang::ZhTw);
        assert_eq!(Lang::pick(Some(" "), Some("ZH")), Lang::ZhTw);
        assert_eq!(Lang::pick(None, Some("fr-FR")), Lang::En);
        assert_eq!(Lang::pick(None, None), Lang::En);
    }

    #[test]
    fn the_current_language_is_the_one_set_last() {
        Lang::ZhTw.set_current();
        assert_eq!(Lang::current().text().copy_code, "複製程式碼");
        Lang::En.set_current();
        assert_eq!(Lang::current(), Lang::En);
    }

    #[test]
    fn limit_waits_count_down_then_turn_into_a_clock_time() {
        assert_eq!(countdown(0), "0:00");
        assert_eq!(countdown(42), "0:42");
        assert_eq!(countdown(725), "12:05");
        assert_eq!(countdown(3723), "1:02:03");
        let en = Lang::En.text();
        let day = Some(LimitKind::Day);
        assert_eq!(
            en.limit_hit(day, 600, Some("00:00")),
            "Your class has used today's messages. You can send again in 10:00."
        );
        assert_eq!(
            en.limit_hit(day, 5 * 3600, Some("00:00")),
            "Your class has used today's messages. You can send again at 00:00."
        );
        assert!(en.limit_hit(day, 5 * 3600, None).ends_with("in 5:00:00."));
        assert_eq!(
            en.limit_hit(Some(LimitKind::StudentDay), 600, Some("00:00")),
            "You have used your messages for today. You can send again in 10:00."
        );
        // Days away: no clock time that would read as today's.
        assert_eq!(
            en.limit_hit(Some(LimitKind::StudentWeek), 3 * 86_400, Some("00:00")),
            "You have used your messages for this week. They start again on Monday."
        );
        let zh = Lang::ZhTw.text();
        assert_eq!(
            zh.limit_hit(Some(LimitKind::Upstream), 90, None),
            "AI 服務暫時達到使用上限。可在 1:30 後再傳送。"
        );
    }

    #[test]
    fn few_left_lines_agree_in_number() {
        let en = Lang::En.text();
        assert_eq!(
            en.few_left(FewLeft::Minute(1)),
            "1 message left this minute."
        );
        assert_eq!(
            en.few_left(FewLeft::Minute(2)),
            "2 messages left this minute."
        );
        assert_eq!(
            en.few_left(FewLeft::Day(0)),
            "0 messages left today for this class."
        );
        assert_eq!(
            Lang::ZhTw.text().few_left(FewLeft::Day(5)),
            "班級今天還可以傳 5 則訊息。"
        );
    }

    #[test]
    fn waits_are_shown_in_seconds_or_rounded_up_minutes() {
        let en = Lang::En.text();
        assert_eq!(
            en.too_many_attempts(Some(30)),
            "Too many attempts. Try again in 30 s."
        );
        assert_eq!(
            en.too_many_attempts(Some(61)),
            "Too many attempts. Try again in 2 min."
        );
        assert_eq!(en.too_many_attempts(None), "Too many attempts.");
        assert_eq!(en.duration(0), "1 s");
        let zh = Lang::ZhTw.text();
        assert_eq!(
            zh.too_many_attempts(Some(120)),
            "嘗試次數過多。請在 2 分鐘 後再試。"
        );
        assert_eq!(
            en.message_too_long(8000),
            "Your message is too long (at most 8000 characters)."
        );
    }
}
