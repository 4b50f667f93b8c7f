//! The dashboard's Health panel: what the start-up checks found, each failure with its fix.
//!
//! Kept apart from `views` so the overview only gains one call: the panel is rendered here
//! and placed at the end of the overview's `<main>`.

use leptos::prelude::*;

use super::i18n::Lang;
use crate::health::{Health, Outcome};

/// The overview page with the Health panel added at the end of its main section. The
/// checks' own findings stay in English (they are `classchat check`'s, and the README's).
pub(crate) fn with_panel(page: String, health: &Health, timezone: &str, lang: Lang) -> String {
    let panel = panel(health, timezone, lang);
    match page.rfind("</main>") {
        Some(at) => format!("{}{panel}{}", &page[..at], &page[at..]),
        None => page,
    }
}

fn panel(health: &Health, timezone: &str, lang: Lang) -> String {
    let heading = lang.t("Health", "健康狀態");
    let tz = jiff::tz::TimeZone::get(timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    let Some((at, results)) = health.get() else {
        return view! {
            <section class="health" id="health">
                <h2>{heading}</h2>
                <p class="meta">{lang.t("The start-up checks are still running; reload in a moment.", "啟動檢查仍在進行中，請稍後重新載入。")}</p>
            </section>
        }
        .to_html();
    };
    let failed = results
        .iter()
        .filter(|r| r.outcome == Outcome::Fail)
        .count();
    let state = if failed == 0 && results.iter().all(|r| r.outcome == Outcome::Pass) {
        lang.t("Every check passed", "所有檢查都通過").to_owned()
    } else if failed == 0 {
        lang.t(
            "No check failed, but some need a look or were skipped",
            "沒有檢查失敗，但有些需要留意或已略過",
        )
        .to_owned()
    } else {
        match lang {
            Lang::En => format!(
                "{failed} check{} failed",
                if failed == 1 { "" } else { "s" }
            ),
            Lang::ZhTw => format!("{failed} 項檢查失敗"),
        }
    };
    let when = at.to_zoned(tz).strftime("%Y-%m-%d %H:%M").to_string();
    let summary = match lang {
        Lang::En => format!("{state} as of {when} (run `classchat check` to check again)."),
        Lang::ZhTw => format!("{state}，截至 {when}（執行 `classchat check` 可再次檢查）。"),
    };
    let rows = results
        .into_iter()
        .map(|r| {
            let (badge, label) = match r.outcome {
                Outcome::Pass => ("badge on", lang.t("ok", "正常")),
                Outcome::Warn => ("badge", lang.t("look at this", "請留意")),
                Outcome::Fail => ("badge off", lang.t("failed", "失敗")),
                Outcome::Skip => ("badge", lang.t("skipped", "已略過")),
            };
            view! {
                <tr>
                    <td><span class=badge>{label}</span></td>
                    <th scope="row">{r.name}</th>
                    <td>{r.detail}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="health" id="health">
            <h2>{heading}</h2>
            <p class="meta">{summary}</p>
            <div class="table-wrap">
                <table class="data">
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
    .to_html()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::CheckResult;

    #[test]
    fn the_panel_lists_each_check_escaped_inside_main() {
        let health = Health::default();
        let page = "<html><main><h1>Classes</h1></main></html>".to_owned();
        let waiting = with_panel(page.clone(), &health, "UTC", Lang::En);
        assert!(waiting.contains("still running"), "{waiting}");
        health.set(vec![
            CheckResult {
                name: "clock",
                outcome: Outcome::Pass,
                detail: "within 0s".into(),
            },
            CheckResult {
                name: "API key",
                outcome: Outcome::Fail,
                detail: "refused <b>".into(),
            },
        ]);
        let zh = with_panel(page.clone(), &health, "Asia/Taipei", Lang::ZhTw);
        assert!(
            zh.contains("健康狀態") && zh.contains("1 項檢查失敗"),
            "{zh}"
        );
        assert!(
            zh.contains("refused &lt;b&gt;"),
            "the finding itself stays as found"
        );
        let html = with_panel(page, &health, "Asia/Taipei", Lang::En);
        let at = html.find("Health").unwrap();
        assert!(at < html.find("</main>").unwrap());
        assert!(html.contains("1 check failed"), "{html}");
        assert!(html.contains("refused &lt;b&gt;"), "{html}");
        assert!(html.contains("within 0s"));
    }
}
