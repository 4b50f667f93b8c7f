//! The line that tells a teacher someone tried wrong passwords on their account since their
//! last visit, and when the last one was: a flood they did not notice (it no longer locks
//! them out) should not go unseen.

use leptos::prelude::*;

use super::i18n::Lang;
use crate::store::admin::FailedSince;

/// The overview page with the line at the top of its main section (nothing when there were
/// no wrong passwords).
pub(crate) fn with_failed_sign_ins(
    page: String,
    failed: &FailedSince,
    timezone: &str,
    lang: Lang,
) -> String {
    let Some(line) = line(failed, timezone, lang) else {
        return page;
    };
    let html = view! {
        <p class="flash warning" role="status" data-testid="admin-failed-sign-ins">{line}</p>
    }
    .to_html();
    match page
        .find("<main")
        .and_then(|at| page[at..].find('>').map(|end| at + end + 1))
    {
        Some(at) => format!("{}{html}{}", &page[..at], &page[at..]),
        None => page,
    }
}

/// "3 wrong passwords were tried on this account since your last visit, the last at …".
pub(crate) fn line(failed: &FailedSince, timezone: &str, lang: Lang) -> Option<String> {
    let last = failed.last_ms.filter(|_| failed.count > 0)?;
    let tz = jiff::tz::TimeZone::get(timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    let at = move |ms: i64| super::views::fmt_time(ms, &tz);
    if lang == Lang::ZhTw {
        let since = match failed.since_ms {
            Some(ms) => format!("自您上次造訪（{}）以來", at(ms)),
            None => "過去 30 天內".to_owned(),
        };
        return Some(format!(
            "{since}，這個帳號有 {n} 次登入失敗（密碼錯誤），最後一次在 {last}。\
             之前登入過的瀏覽器不會因此被鎖住；如果不是您本人，請使用夠長且不外流的密碼。",
            n = failed.count,
            last = at(last),
        ));
    }
    let since = match failed.since_ms {
        Some(ms) => format!("since your last visit ({})", at(ms)),
        None => "in the last 30 days".to_owned(),
    };
    Some(format!(
        "{n} failed sign-in attempt{s} (wrong password) on this account {since}, the last at {last}. \
         Browsers that signed in before are not locked out by them; if it was not you, \
         keep the password long and private.",
        n = failed.count,
        s = if failed.count == 1 { "" } else { "s" },
        last = at(last),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_counts_and_dates_the_failures_or_is_absent() {
        let none = FailedSince {
            count: 0,
            last_ms: None,
            since_ms: Some(0),
        };
        let page = "<html><main class=\"admin-main\"><h1>Classes</h1></main></html>".to_owned();
        assert_eq!(
            with_failed_sign_ins(page.clone(), &none, "UTC", Lang::En),
            page
        );
        let three = FailedSince {
            count: 3,
            // 2026-12-07 08:30 UTC is 16:30 in Taipei.
            last_ms: Some(1_796_632_200_000),
            since_ms: Some(1_796_600_000_000),
        };
        let zh = with_failed_sign_ins(page.clone(), &three, "Asia/Taipei", Lang::ZhTw);
        assert!(
            zh.contains("3 次登入失敗") && zh.contains("2026-12-07 16:30"),
            "{zh}"
        );
        let out = with_failed_sign_ins(page, &three, "Asia/Taipei", Lang::En);
        assert!(
            out.contains(
                "3 failed sign-in attempts (wrong password) on this account since your last visit"
            ),
            "{out}"
        );
        assert!(out.contains("the last at 2026-12-07 16:30"), "{out}");
        assert!(
            out.find("admin-failed-sign-ins").unwrap() < out.find("<h1>").unwrap(),
            "at the top of main: {out}"
        );
    }
}
