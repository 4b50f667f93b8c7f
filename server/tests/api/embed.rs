//! `/embed`: the widget as a page (iframe snippet, shared link, the loader's CSP fallback).

use crate::helpers::*;

fn csp(r: &reqwest::Response) -> String {
    r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn embed_page_runs_under_a_strict_policy_framable_by_anyone_when_origins_are_unset() {
    let app = spawn_app().await;
    let r = app
        .get("/embed?title=Bio+101&accent=%232563eb&theme=dark&frame=1")
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let policy = csp(&r);
    for d in [
        "default-src 'none'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "style-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "frame-ancestors *",
    ] {
        assert!(policy.contains(d), "{d} missing from {policy}");
    }
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    let body = r.text().await.unwrap();
    // No inline script: the one script is the external module, and it exists.
    assert!(body.contains("<script type=\"module\" src=\"/widget/embed.js\"></script>"));
    assert_eq!(body.matches("<script").count(), 1, "{body}");
    assert!(body.contains("data-title=\"Bio 101\""));
    assert!(body.contains("data-frame=\"1\""));
    assert!(body.contains("data-theme=\"dark\""));
    assert!(body.contains("data-parents=\"*\""));
    let js = app.get("/widget/embed.js").await;
    assert_eq!(js.status(), 200);
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        js.headers()["cache-control"],
        "public, max-age=300, must-revalidate"
    );
    let js = js.text().await.unwrap();
    assert!(js.contains("mount(panel"), "embed.js mounts the widget");
    assert!(!js.contains("__CLASSCHAT_"), "placeholders filled in");
}

#[tokio::test]
async fn embed_page_may_be_framed_only_by_allowed_origins_when_set() {
    let app = spawn_app_with(Opts::default().with(|s| {
        s.allowed_origins = Some(vec![
            "https://school.example".into(),
            "http://127.0.0.1:5555".into(),
        ]);
    }))
    .await;
    let r = app.get("/embed").await;
    assert_eq!(r.status(), 200);
    let policy = csp(&r);
    assert!(
        policy.ends_with("frame-ancestors 'self' https://school.example http://127.0.0.1:5555"),
        "{policy}"
    );
    let body = r.text().await.unwrap();
    assert!(body.contains("data-parents=\"https://school.example http://127.0.0.1:5555\""));
    assert!(body.contains("data-frame=\"0\""));
    assert!(body.contains("data-theme=\"\""), "auto: no theme forced");
}

#[tokio::test]
async fn bad_embed_options_get_a_400_naming_the_parameter_without_echoing_it() {
    let app = spawn_app().await;
    for (query, param) in [
        ("accent=red%3Bbackground:url(//evil)", "accent"),
        ("position=%3Cscript%3Ealert(1)%3C/script%3E", "position"),
        ("lang=%22%3E%3Cimg%20src=x%3E", "lang"),
        ("frame=yes", "frame"),
        ("theme=%3Cscript%3Ealert(1)%3C/script%3E", "theme"),
        ("title=a&title=b", "title"),
        ("accent=notacolor", "accent"),
        ("accent=teal", "accent"),
    ] {
        let r = app.get(&format!("/embed?{query}")).await;
        assert_eq!(r.status(), 400, "{query}");
        assert!(
            csp(&r).contains("default-src 'none'"),
            "the error page is locked down too"
        );
        let body = r.text().await.unwrap();
        assert!(
            body.contains(&format!("The {param} parameter must be")),
            "{query}: {body}"
        );
        for raw in [
            "evil",
            "<script",
            "alert",
            "<img",
            "yes",
            "notacolor",
            "teal",
        ] {
            assert!(!body.contains(raw), "{query}: the value is echoed: {body}");
        }
    }
    let twice = app
        .get("/embed?lang=en&lang=zh-TW")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        twice.contains("The lang parameter must be given only once."),
        "{twice}"
    );
    // A title full of markup is a valid title: shown, escaped, never as markup.
    let r = app
        .get("/embed?title=%3C%2Ftitle%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E%22%27")
        .await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(!body.contains("<script>alert"), "{body}");
    assert!(body.contains("&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;"));
    // Parameters the page does not know (platforms add their own) are ignored.
    assert_eq!(
        app.get("/embed?utm_source=canvas&x=%3C").await.status(),
        200
    );
}

#[tokio::test]
async fn front_page_offers_script_iframe_and_link_snippets_with_external_copy_script() {
    let app = spawn_app().await;
    let body = app.get("/").await.text().await.unwrap();
    for id in ["embed-snippet", "iframe-snippet", "link-snippet"] {
        assert!(body.contains(&format!("data-testid=\"{id}\"")), "{id}");
    }
    assert_eq!(body.matches("data-copy=\"snippet-").count(), 3);
    // No snippet overrides the class's title or the students' language: the widget shows
    // the class's own title once a student signs in, in the browser's language. The
    // iframe's accessible name is the class's title.
    for s in ["data-title", "data-lang", "?title=", "amp;title=", "lang="] {
        assert!(!snippets(&body).contains(s), "{s} in {}", snippets(&body));
    }
    assert!(snippets(&body).contains("/embed?accent=%232563eb"));
    assert!(
        snippets(&body).contains("title=\"Class assistant\""),
        "{}",
        snippets(&body)
    );
    // The live widget on the page takes the class's title too.
    assert!(body.contains("<script src=\"/widget.js\" async>"), "{body}");
    // The copy buttons need no inline script or handler attribute.
    assert!(body.contains("<script src=\"/copy.js\" defer>"));
    assert!(!body.contains("onclick"));
    let js = app.get("/copy.js").await;
    assert_eq!(js.status(), 200);
    assert!(js.text().await.unwrap().contains("data-copy"));
}

/// The three snippets' text on the front page (the `<pre>` blocks).
fn snippets(body: &str) -> String {
    body.split("<pre ")
        .skip(1)
        .filter_map(|p| p.split("</pre>").next())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_iframe_snippet_is_named_after_a_renamed_class() {
    let app = spawn_app_with(Opts::default().with(|s| {
        s.classes = code_classes(s, CODE, "Biology helper", None, &[]);
    }))
    .await;
    let body = app.get("/").await.text().await.unwrap();
    let s = snippets(&body);
    assert!(s.contains("title=\"Biology helper\""), "{s}");
    assert!(
        !s.contains("Class assistant") && !s.contains("data-title"),
        "{s}"
    );
}
