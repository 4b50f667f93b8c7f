//! A year of a school's usage (5 million rows over 20 classes) and how fast the dashboard
//! answers on it. A measurement, not a timed assertion: run it with
//! `cargo test --release -p classchat-server --test api dashboard_scale -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use crate::helpers::*;

const ROWS: i64 = 5_000_000;
const CLASSES: i64 = 20;

#[tokio::test]
#[ignore = "fills 5 million rows: a measurement, run explicitly"]
async fn dashboard_scale_five_million_rows() {
    let codes: Vec<String> = (1..=CLASSES)
        .map(|i| format!("class-code-{i:02}"))
        .collect();
    let app = spawn_app_with(Opts::default().with(move |s| {
        s.classes = access_codes(s, &codes.join(","));
        s.admin = admin_password(crate::admin::PASSWORD);
    }))
    .await;
    let url = format!("sqlite://{}", app.db_path.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let start_ms = now_ms - 365 * 86_400_000;
    let step = 365 * 86_400_000 / ROWS;
    let t = Instant::now();
    // 150 students per class; one in fifty requests failed upstream.
    sqlx::query(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last})
         INSERT INTO usage_log (at_ms, class_id, session_id, display_name, conversation_id, model,
            prompt_tokens, completion_tokens, first_token_ms, total_ms, outcome, error_code)
         SELECT {start_ms} + i * {step}, 'class-' || (i % {CLASSES} + 1),
                's-' || (i % {CLASSES}) || '-' || ((i / {CLASSES}) % 150), 'Student ' || ((i / {CLASSES}) % 150),
                'c-' || (i % 997), 'test-model', 50 + i % 100, 100 + i % 300, 300, 2000,
                CASE WHEN i % 50 = 0 THEN 'upstream_error' ELSE 'completed' END,
                CASE WHEN i % 50 = 0 THEN 'upstream_error' END
         FROM n",
        last = ROWS - 1
    ))
    .execute(&pool)
    .await
    .unwrap();
    // The rollups the usage writer keeps in step, built here in bulk (as migration 0002 does).
    for sql in [
        "INSERT INTO usage_hourly (class_id, hour_ms, messages, tokens, errors)
         SELECT class_id, (at_ms / 3600000) * 3600000, COUNT(*), SUM(prompt_tokens + completion_tokens),
                SUM(outcome = 'upstream_error') FROM usage_log GROUP BY 1, 2",
        "INSERT INTO usage_by_session (class_id, session_id, display_name, messages, tokens, last_at_ms)
         SELECT class_id, session_id, MAX(display_name), COUNT(*), SUM(prompt_tokens + completion_tokens), MAX(at_ms)
         FROM usage_log GROUP BY 1, 2",
        "INSERT INTO sessions (session_id, class_id, display_name, started_at_ms, last_seen_ms)
         SELECT session_id, class_id, display_name, MIN(at_ms), MAX(at_ms) FROM usage_log GROUP BY session_id",
        "ANALYZE",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_log")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, ROWS);
    println!("filled {ROWS} rows in {:.1}s", t.elapsed().as_secs_f64());

    let cookie = crate::admin::sign_in_teacher(&app).await.cookie;

    for (name, path) in [
        ("overview", "/admin".to_owned()),
        ("class page", "/admin/classes/class-7".to_owned()),
    ] {
        let mut times: Vec<Duration> = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            let r = app
                .client
                .get(format!("{}{path}", app.address))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let body = r.text().await.unwrap();
            times.push(t.elapsed());
            assert!(body.contains("admin-class-row") || body.contains("admin-student-row"));
        }
        times.sort();
        println!(
            "{name}: median {:.1} ms, max {:.1} ms (7 requests, {ROWS} usage rows)",
            times[3].as_secs_f64() * 1e3,
            times[6].as_secs_f64() * 1e3
        );
    }
}
