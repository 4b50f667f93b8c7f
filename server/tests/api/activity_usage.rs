//! Usage per activity (issue 22): each chat request's row carries the activity its session
//! signed in to (none for a class's own code), and the admin API's usage answer and CSV
//! split a class's usage by activity while the class's totals still hold. Runs on SQLite,
//! and on PostgreSQL with `CLASSCHAT_TEST_DB=postgres`.

use std::collections::HashMap;

use classchat_fake_upstream::FAKE_USAGE;
use reqwest::Method;
use serde_json::json;

use crate::admin_api::{admin_token, api};
use crate::helpers::*;

async fn sign_in_code(app: &TestApp, code: &str, name: &str) -> String {
    let r = app
        .post_session(json!({"access_code": code, "display_name": name}))
        .await;
    assert_eq!(r.status(), 200);
    let s: classchat_shared::SessionResponse = r.json().await.unwrap();
    s.token
}

async fn chat(app: &TestApp, token: &str, text: &str) {
    let r = app.post_chat(token, chat_body(text, false)).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn two_activities_usage_and_csv_split_by_activity_while_class_totals_hold() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (s, class) = api(
        &app,
        Method::POST,
        "/api/v1/admin/classes",
        &admin,
        Some(json!({"title": "Biology 7A", "time_zone": "Asia/Taipei"})),
    )
    .await;
    assert_eq!(s, 201, "{class}");
    let class = class["id"].as_str().unwrap().to_owned();
    let mut activities = Vec::new();
    for title in ["Lab report helper", "Exam revision"] {
        let (s, a) = api(
            &app,
            Method::POST,
            &format!("/api/v1/admin/classes/{class}/activities"),
            &admin,
            Some(json!({"title": title})),
        )
        .await;
        assert_eq!(s, 201, "{a}");
        activities.push((
            a["id"].as_str().unwrap().to_owned(),
            a["code"].as_str().unwrap().to_owned(),
            title,
        ));
    }
    let (lab, exam) = (&activities[0], &activities[1]);

    // Two messages in the lab activity (two students), one in exam revision, and one in the
    // configured class (its own code: no activity).
    let mei = sign_in_code(&app, &lab.1, "Mei").await;
    let kai = sign_in_code(&app, &lab.1, "Kai").await;
    let lin = sign_in_code(&app, &exam.1, "Lin").await;
    let own = sign_in_code(&app, CODE, "Own").await;
    chat(&app, &mei, "one").await;
    chat(&app, &kai, "two").await;
    chat(&app, &lin, "three").await;
    chat(&app, &own, "four").await;

    // Every row names its activity; the configured class's row names none.
    let rows = app.usage_rows(4).await;
    let by_name: HashMap<&str, (&str, Option<&str>)> = rows
        .iter()
        .map(|r| {
            (
                r.display_name.as_deref().unwrap(),
                (r.class_id.as_str(), r.activity_id.as_deref()),
            )
        })
        .collect();
    assert_eq!(by_name["Mei"], (class.as_str(), Some(lab.0.as_str())));
    assert_eq!(by_name["Kai"], (class.as_str(), Some(lab.0.as_str())));
    assert_eq!(by_name["Lin"], (class.as_str(), Some(exam.0.as_str())));
    assert_eq!(by_name["Own"], ("class-1", None));

    // The API's answer: the class's totals, and each activity's share adding up to them.
    let per = i64::from(FAKE_USAGE.0 + FAKE_USAGE.1);
    let usage_path = format!("/api/v1/admin/classes/{class}/usage");
    wait_for("the hourly totals to hold the three messages", || async {
        api(&app, Method::GET, &usage_path, &admin, None).await.1["messages"] == 3
    })
    .await;
    let (s, usage) = api(&app, Method::GET, &usage_path, &admin, None).await;
    assert_eq!(s, 200, "{usage}");
    assert_eq!(usage["tokens"], 3 * per);
    assert_eq!(usage["errors"], 0);
    let split: HashMap<String, (i64, i64, String)> = usage["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["activity_id"].as_str().unwrap().to_owned(),
                (
                    a["messages"].as_i64().unwrap(),
                    a["tokens"].as_i64().unwrap(),
                    a["title"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect();
    assert_eq!(split.len(), 2, "{usage}");
    assert_eq!(split[&lab.0], (2, 2 * per, lab.2.to_owned()));
    assert_eq!(split[&exam.0], (1, per, exam.2.to_owned()));
    let sum: i64 = split.values().map(|v| v.0).sum();
    assert_eq!(sum, usage["messages"].as_i64().unwrap());

    // The CSV: an activity column, each row in its own activity, only this class's rows.
    let r = app
        .client
        .get(format!("{}{usage_path}?format=csv", app.address))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = r.text().await.unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (name_col, id_col, title_col, class_col) = (
        col("display_name"),
        col("activity_id"),
        col("activity"),
        col("class_id"),
    );
    let mut seen: Vec<(String, String, String)> = lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            assert_eq!(cells[class_col], class);
            (
                cells[name_col].to_owned(),
                cells[id_col].to_owned(),
                cells[title_col].to_owned(),
            )
        })
        .collect();
    seen.sort();
    let row = |n: &str, a: &(String, String, &str)| (n.to_owned(), a.0.clone(), a.2.to_owned());
    assert_eq!(seen, [row("Kai", lab), row("Lin", exam), row("Mei", lab)]);

    let (s, e) = api(
        &app,
        Method::GET,
        &format!("{usage_path}?format=xml"),
        &admin,
        None,
    )
    .await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("bad_request")));
}
