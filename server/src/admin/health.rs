//! The dashboard's Health panel: what the start-up checks found, each failure with its fix.
//!
//! Kept apart from `views` so the overview only gains one call: the panel is rendered here
//! and placed at the end of the overview's `<main>`.

use leptos::prelude::*;

use crate::health::{Health, Outcome};

/// The overview page with the Health panel added at the end of its main section.
pub fn with_panel(page: String, health: &Health, timezone: &str) -> String {
    let panel = panel(health, timezone);
    match page.rfind("</main>") {
        Some(at) => format!("{}{panel}{}", &page[..at], &page[at..]),
        None => page,
    }
}

fn panel(health: &Health, timezone: &str) -> String {
    let tz = jiff::tz::TimeZone::get(timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    let Some((at, results)) = health.get() else {
        return view! {
            <section class="health" id="health">
                <h2>"Health"</h2>
                <p class="meta">"The start-up checks are still running; reload in a moment."</p>
            </section>
        }
        .to_html();
    };
    let failed = results
        .iter()
        .filter(|r| r.outcome == Outcome::Fail)
        .count();
    let summary = format!(
        "{} as of {} (run `classchat check` to check again).",
        if failed == 0 && results.iter().all(|r| r.outcome == Outcome::Pass) {
            "Every check passed".to_owned()
        } else if failed == 0 {
            "No check failed, but some need a look or were skipped".to_owned()
        } else {
            format!(
                "{failed} check{} failed",
                if failed == 1 { "" } else { "s" }
            )
        },
        at.to_zoned(tz).strftime("%Y-%m-%d %H:%M"),
    );
    let rows = results
        .into_iter()
        .map(|r| {
            let (badge, label) = match r.outcome {
                Outcome::Pass => ("badge on", "ok"),
                Outcome::Warn => ("badge", "look at this"),
                Outcome::Fail => ("badge off", "failed"),
                Outcome::Skip => ("badge", "skipped"),
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
            <h2>"Health"</h2>
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
        let waiting = with_panel(page.clone(), &health, "UTC");
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
        let html = with_panel(page, &health, "Asia/Taipei");
        let at = html.find("Health").unwrap();
        assert!(at < html.find("</main>").unwrap());
        assert!(html.contains("1 check failed"), "{html}");
        assert!(html.contains("refused &lt;b&gt;"), "{html}");
        assert!(html.contains("within 0s"));
    }
}
