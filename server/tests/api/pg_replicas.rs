//! Two replicas (two real routers) on one PostgreSQL database behave as one service: every
//! fact they must agree on reaches the other one, and every budget is spent once. Each test
//! here fails if that fact stayed in one process. Always on PostgreSQL (a database of the
//! shared throwaway cluster), whatever `CLASSCHAT_TEST_DB` says.

use std::time::{Duration, Instant};

use classchat_server::config::Settings;
use classchat_shared::{ErrorCode, SessionResponse};
use serde_json::json;

use crate::admin::{PASSWORD, act, sign_in_teacher};
use crate::helpers::*;
use crate::pg_cluster::{PgCluster, shared};

/// Two replicas on one fresh database. The periodic resync is an hour away unless the
/// test says otherwise, so what arrives quickly arrived by notification.
async fn replicas(
    configure: impl Fn(&mut Settings) + Clone + Send + Sync + 'static,
) -> (TestApp, TestApp) {
    let url = shared().create_database().await;
    let opts = || {
        Opts::default()
            .with(database(&url))
            .with(|s| {
                s.admin = admin_password(PASSWORD);
                s.resync_interval = hours(1);
            })
            .with(configure.clone())
    };
    let a = spawn_app_with(opts()).await;
    let b = spawn_app_with(opts()).await;
    (a, b)
}

/// Polls `cond` until it holds; returns how long that took. The deadline is generous
/// (a loaded two-core machine); the time it took is printed for the record.
async fn eventually<F, Fut>(what: &str, mut cond: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if cond().await {
            let took = start.elapsed();
            eprintln!("{what}: reached the other replica in {took:?}");
            return took;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: never reached the other replica");
}

async fn chat_status(app: &TestApp, token: &str) -> u16 {
    app.post_chat(token, chat_body("hi", false))
        .await
        .status()
        .as_u16()
}

fn session_id(s: &SessionResponse) -> String {
    use base64::Engine;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.token.split('.').nth(1).unwrap())
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&claims).unwrap()["sub"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_sign_out_on_one_replica_ends_the_session_on_the_other() {
    let (a, b) = replicas(|_| {}).await;
    let s = a.sign_in().await;
    assert_eq!(chat_status(&b, &s.token).await, 200, "B knows nothing yet");
    assert_eq!(a.logout(&s.token).await.status(), 204);
    eventually("sign-out", || async {
        chat_status(&b, &s.token).await == 401
    })
    .await;
    expect_error(
        b.post_chat(&s.token, chat_body("hi", false)).await,
        401,
        ErrorCode::SessionRevoked,
    )
    .await;
}

#[tokio::test]
async fn a_session_revoked_on_the_dashboard_of_one_replica_ends_on_the_other() {
    let (a, b) = replicas(|_| {}).await;
    let s = a.sign_in().await;
    let other = a.sign_in().await;
    let sid = session_id(&s);
    eventually("the sign-in's row", || async {
        a.state.store.session_info(&sid).await.unwrap().is_some()
    })
    .await;
    let t = sign_in_teacher(&a).await;
    assert_eq!(
        act(
            &a,
            &t,
            &format!("/admin/sessions/{sid}/revoke"),
            &[("class_id", "class-1")]
        )
        .await
        .status(),
        303
    );
    eventually("revocation", || async {
        chat_status(&b, &s.token).await == 401
    })
    .await;
    assert_eq!(
        chat_status(&b, &other.token).await,
        200,
        "only that session"
    );
}

#[tokio::test]
async fn a_code_rotation_disable_enable_and_quota_on_one_replica_apply_on_the_other() {
    let (a, b) = replicas(|_| {}).await;
    let s = b.sign_in().await;
    let t = sign_in_teacher(&a).await;

    assert_eq!(
        act(&a, &t, "/admin/classes/class-1/disable", &[])
            .await
            .status(),
        303
    );
    eventually("disable", || async {
        chat_status(&b, &s.token).await == 401
    })
    .await;
    expect_error(
        b.post_session(json!({ "access_code": CODE })).await,
        401,
        ErrorCode::ClassDisabled,
    )
    .await;
    assert_eq!(
        act(&a, &t, "/admin/classes/class-1/enable", &[])
            .await
            .status(),
        303
    );
    eventually("enable", || async {
        chat_status(&b, &s.token).await == 200
    })
    .await;

    assert_eq!(
        act(&a, &t, "/admin/classes/class-1/quota", &[("quota", "1")])
            .await
            .status(),
        303
    );
    eventually("quota", || async {
        b.state
            .classes
            .current()
            .get("class-1")
            .unwrap()
            .daily_message_quota
            == 1
    })
    .await;

    assert_eq!(
        act(&a, &t, "/admin/classes/class-1/rotate", &[])
            .await
            .status(),
        303
    );
    eventually("rotation", || async {
        b.post_session(json!({ "access_code": CODE }))
            .await
            .status()
            == 401
    })
    .await;
    expect_error(
        b.post_chat(&s.token, chat_body("hi", false)).await,
        401,
        ErrorCode::SessionRevoked,
    )
    .await;
}

#[tokio::test]
async fn a_missed_notification_is_healed_by_the_periodic_resync() {
    let (a, b) = replicas(|s| s.resync_interval = Duration::from_secs(1)).await;
    let s = a.sign_in().await;
    assert_eq!(chat_status(&b, &s.token).await, 200);
    // Revoked behind both replicas' backs: no notification is sent.
    let sid = session_id(&s);
    let far = classchat_server::basics::now_secs() + 3600;
    a.state
        .store
        .revoke_session(&sid, "class-1", far, "admin", 0)
        .await
        .unwrap();
    eventually("silent revocation", || async {
        chat_status(&b, &s.token).await == 401
    })
    .await;
}

#[tokio::test]
async fn wrong_codes_spent_on_either_replica_come_from_one_budget() {
    let (a, b) = replicas(|s| s.login_failures_per_address = rate(4, minutes(10))).await;
    let c = client_from(9);
    for app in [&a, &b, &a, &b] {
        let r = c
            .post(format!("{}/api/v1/session", app.address))
            .json(&json!({ "access_code": "wrong-code" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    for app in [&a, &b] {
        let r = c
            .post(format!("{}/api/v1/session", app.address))
            .json(&json!({ "access_code": CODE }))
            .send()
            .await
            .unwrap();
        expect_error(r, 429, ErrorCode::RateLimited).await;
    }
}

#[tokio::test]
async fn a_session_s_rate_the_class_ceiling_and_the_daily_quota_are_one_budget() {
    // Per session: 2 a minute, whichever replica the messages reach.
    let (a, b) = replicas(|s| s.messages_per_minute = 2).await;
    let s = a.sign_in().await;
    assert_eq!(chat_status(&a, &s.token).await, 200);
    assert_eq!(chat_status(&b, &s.token).await, 200);
    expect_error(
        b.post_chat(&s.token, chat_body("hi", false)).await,
        429,
        ErrorCode::RateLimited,
    )
    .await;
    expect_error(
        a.post_chat(&s.token, chat_body("hi", false)).await,
        429,
        ErrorCode::RateLimited,
    )
    .await;

    // Per class: 3 a minute over all its sessions.
    let (a, b) = replicas(|s| s.class_messages_per_minute = 3).await;
    let mut tokens = Vec::new();
    for _ in 0..4 {
        tokens.push(a.sign_in().await.token);
    }
    for (app, t) in [(&a, &tokens[0]), (&b, &tokens[1]), (&a, &tokens[2])] {
        assert_eq!(chat_status(app, t).await, 200);
    }
    let e = expect_error(
        b.post_chat(&tokens[3], chat_body("hi", false)).await,
        429,
        ErrorCode::RateLimited,
    )
    .await;
    assert!(e.error.message.contains("class"), "{}", e.error.message);

    // Per class-day: a quota of 3.
    let (a, b) = replicas(|s| s.daily_message_quota = 3).await;
    let s = a.sign_in().await;
    for app in [&a, &b, &a] {
        assert_eq!(chat_status(app, &s.token).await, 200);
    }
    let e = expect_error(
        b.post_chat(&s.token, chat_body("hi", false)).await,
        429,
        ErrorCode::RateLimited,
    )
    .await;
    assert!(e.error.message.contains("today"), "{}", e.error.message);
}

#[tokio::test]
async fn usage_from_both_replicas_is_in_either_replica_s_export() {
    let (a, b) = replicas(|_| {}).await;
    for (app, conv) in [(&a, "conv-on-a"), (&b, "conv-on-b")] {
        let s = app.sign_in().await;
        let body = json!({"conversation_id": conv, "messages": [{"role": "user", "content": "hi"}], "stream": false});
        assert_eq!(app.post_chat(&s.token, body).await.status(), 200);
    }
    a.usage_rows(2).await;
    let t = sign_in_teacher(&b).await;
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::get("Asia/Taipei").unwrap())
        .date()
        .to_string();
    let csv = b
        .page_as(
            &format!("/admin/export.csv?from={today}&to={today}"),
            &t.cookie,
        )
        .await;
    assert!(
        csv.contains("conv-on-a") && csv.contains("conv-on-b"),
        "{csv}"
    );
}

#[tokio::test]
async fn housekeeping_runs_on_one_replica_at_a_time() {
    let (a, _b) = replicas(|_| {}).await;
    let today = jiff::Zoned::now().date();
    let now = classchat_server::basics::now_secs();
    // Another replica holds the housekeeping lock (in an open transaction).
    let mut other = sqlx::PgConnection::connect(&a.db_url).await.unwrap();
    use sqlx::Connection;
    let mut tx = other.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(0x6363_6363_i64)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert!(
        !a.state.store.housekeeping(now, today).await.unwrap(),
        "skipped while held"
    );
    tx.rollback().await.unwrap();
    // The replicas' own housekeeping may hold the lock for a moment (their first run is at
    // start-up, and a busy machine can delay it until now): it must run once it is free.
    wait_for("housekeeping runs once the lock is free", || async {
        a.state.store.housekeeping(now, today).await.unwrap()
    })
    .await;
}

#[tokio::test]
async fn a_database_restart_needs_no_classchat_restart() {
    let cluster = PgCluster::new(&[]);
    cluster.start();
    let url = cluster.create_database().await;
    let app = spawn_app_with(Opts::default().with(database(&url))).await;
    let s = app.sign_in().await;
    assert_eq!(chat_status(&app, &s.token).await, 200);
    app.usage_rows(1).await;

    cluster.stop();
    assert_eq!(
        app.get("/readyz").await.status(),
        503,
        "not ready while it is down"
    );
    // A student already signed in keeps chatting; a new sign-in gets the specific 503.
    assert_eq!(chat_status(&app, &s.token).await, 200);
    assert_eq!(chat_status(&app, &s.token).await, 200);
    expect_error(
        app.post_session(json!({ "access_code": CODE })).await,
        503,
        ErrorCode::Unavailable,
    )
    .await;

    cluster.start();
    eventually("readiness", || async {
        app.get("/readyz").await.status() == 200
    })
    .await;
    // The two replies given while it was down were held and written now.
    app.usage_rows(3).await;
    eventually("sign-in", || async {
        app.post_session(json!({ "access_code": CODE }))
            .await
            .status()
            == 200
    })
    .await;
    assert!(!captured_logs().contains(cluster.password()));
}
