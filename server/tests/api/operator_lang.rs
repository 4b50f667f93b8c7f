//! The administrator's usage pages in English or Traditional Chinese: picked from the
//! browser's `Accept-Language`, switched (and remembered) with `?lang=`, as the teachers'
//! pages are.

use crate::admin::{PASSWORD, act, set_cookie, sign_in_teacher};
use crate::helpers::*;

const ZH_BROWSER: &str = "zh-TW,zh;q=0.9,en;q=0.8";

/// A dashboard page with the session cookie (and any other cookie) and a browser language.
async fn page(app: &TestApp, path: &str, cookie: &str, accept: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.address))
        .header("cookie", cookie)
        .header("accept-language", accept)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_operators_pages_follow_the_browser_and_the_language_switch() {
    let app = spawn_app_with(Opts::default().with(|s| s.admin = admin_password(PASSWORD))).await;
    let admin = sign_in_teacher(&app).await;

    // A Chinese browser gets the Chinese overview, with a link back to English; nothing
    // is remembered since nobody chose.
    let r = page(&app, "/admin", &admin.cookie, ZH_BROWSER).await;
    assert_eq!(r.status(), 200);
    assert_eq!(set_cookie(&r, "classchat_admin_lang"), None);
    let zh = r.text().await.unwrap();
    for words in [
        "<html lang=\"zh-TW\">",
        "<h1>班級</h1>",
        "共 1 個班級",
        "今日訊息",
        "將使用量匯出為 CSV（所有班級）",
        "data-class-id=\"class-1\"",
        "<a href=\"/admin?lang=en\" lang=\"en\" data-testid=\"admin-lang-switch\">English</a>",
        "<h2>健康狀態</h2>",
    ] {
        assert!(zh.contains(words), "{words}: {zh}");
    }
    assert!(!zh.contains("Messages today"), "{zh}");

    // The switch answers in English and remembers it over the browser's language.
    let r = page(&app, "/admin?lang=en", &admin.cookie, ZH_BROWSER).await;
    assert_eq!(r.status(), 200);
    let chosen = set_cookie(&r, "classchat_admin_lang").expect("the choice is remembered");
    assert_eq!(chosen, "classchat_admin_lang=en");
    let en = r.text().await.unwrap();
    assert!(
        en.contains("<html lang=\"en\">") && en.contains("<h1>Classes</h1>"),
        "{en}"
    );
    assert!(en.contains("Messages today") && !en.contains("今日訊息"));
    let both = format!("{}; {chosen}", admin.cookie);
    let again = page(&app, "/admin", &both, ZH_BROWSER).await;
    let again = again.text().await.unwrap();
    assert!(again.contains("<h1>Classes</h1>"), "{again}");

    // The class page and the notice after an action follow a choice of Chinese.
    let r = page(&app, "/admin/classes/class-1?lang=zh-TW", &both, "en").await;
    assert_eq!(
        set_cookie(&r, "classchat_admin_lang").as_deref(),
        Some("classchat_admin_lang=zh-TW")
    );
    let class = r.text().await.unwrap();
    assert!(
        class.contains("<h2 id=\"students-heading\">學生</h2>")
            && class.contains("更換存取代碼")
            && class.contains("href=\"/admin/classes/class-1?lang=en\""),
        "{class}"
    );
    let zh_cookie = format!("{}; classchat_admin_lang=zh-TW", admin.cookie);
    let r = act(&app, &admin, "/admin/classes/class-1/disable", &[]).await;
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    let done = page(&app, &to, &zh_cookie, "en")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        done.contains("班級已停用：學生都已登出，且無法登入。") && done.contains("已停用</span>"),
        "{done}"
    );

    // The export's refusal too, and nothing is exported.
    let r = page(
        &app,
        "/admin/export.csv?from=2025-03-04&to=2025-03-01",
        &zh_cookie,
        "en",
    )
    .await;
    assert_eq!(r.status(), 400);
    let refused = r.text().await.unwrap();
    assert!(
        refused.contains("<h1>無法匯出</h1>") && refused.contains("結束日期不可早於開始日期"),
        "{refused}"
    );
}
