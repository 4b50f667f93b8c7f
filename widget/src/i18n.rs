//! The widget's user-facing strings in English and Traditional Chinese (Taiwan).

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
    pub err_code_empty: &'static str,
    pub err_invalid_code: &'static str,
    pub err_name_too_long: &'static str,
    pub err_unreachable: &'static str,
    pub err_session_ended: &'static str,
    pub err_class_disabled: &'static str,
    pub err_conversation_too_long: &'static str,
    pub err_message_empty: &'static str,
    pub err_invalid_messages: &'static str,
    pub err_upstream_error: &'static str,
    pub err_upstream_unavailable: &'static str,
    pub err_upstream_timeout: &'static str,
    pub err_cut_off: &'static str,
    pub err_unanswered: &'static str,
    pub err_generic: &'static str,
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
    err_code_empty: "Enter the access code.",
    err_invalid_code: "That access code is not valid. Check it and try again.",
    err_name_too_long: "Your name is too long.",
    err_unreachable: "Cannot reach the chat server. Check your connection and try again.",
    err_session_ended: "Your session has ended. Enter the access code again to continue.",
    err_class_disabled: "This class is not available right now.",
    err_conversation_too_long: "This conversation is too long. Start a new conversation.",
    err_message_empty: "Type a message first.",
    err_invalid_messages: "This message cannot be sent. Start a new conversation.",
    err_upstream_error: "The assistant had a problem answering. Try again.",
    err_upstream_unavailable: "The assistant is not available right now. Try again later.",
    err_upstream_timeout: "The assistant took too long to answer. Try again.",
    err_cut_off: "The reply was cut off. Try again.",
    err_unanswered: "This message has not been answered yet.",
    err_generic: "Something went wrong. Try again.",
    too_many_attempts: "Too many attempts.",
    too_fast: "You are sending messages too quickly.",
    try_again_in: (" Try again in ", "."),
    seconds: "s",
    minutes: "min",
    message_too_long: ("Your message is too long (at most ", " characters)."),
    copy_code: "Copy code",
    copied: "Copied",
    code: "code",
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
    err_code_empty: "請輸入存取碼。",
    err_invalid_code: "存取碼不正確，請檢查後再試一次。",
    err_name_too_long: "名字太長了。",
    err_unreachable: "無法連線到聊天伺服器，請檢查網路後再試一次。",
    err_session_ended: "登入已過期，請重新輸入存取碼以繼續。",
    err_class_disabled: "這個課程目前無法使用。",
    err_conversation_too_long: "這段對話太長了，請開始新對話。",
    err_message_empty: "請先輸入訊息。",
    err_invalid_messages: "這則訊息無法傳送，請開始新對話。",
    err_upstream_error: "助理回覆時發生問題，請再試一次。",
    err_upstream_unavailable: "助理目前無法使用，請稍後再試。",
    err_upstream_timeout: "助理回覆逾時，請再試一次。",
    err_cut_off: "回覆中斷了，請再試一次。",
    err_unanswered: "這則訊息尚未得到回覆。",
    err_generic: "發生錯誤，請再試一次。",
    too_many_attempts: "嘗試次數過多。",
    too_fast: "傳送訊息太頻繁了。",
    try_again_in: ("請在 ", " 後再試。"),
    seconds: "秒",
    minutes: "分鐘",
    message_too_long: ("訊息太長了（最多 ", " 個字元）。"),
    copy_code: "複製程式碼",
    copied: "已複製",
    code: "程式碼",
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
