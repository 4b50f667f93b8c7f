//! Leased message budgets on PostgreSQL (`classchat_server::limits::leases`): replicas spend
//! slices of a budget in memory, and what they admit together stays within the budget and
//! the bound the README states; a replica that dies gives its slice back within the lease
//! time; and a message costs well under one statement. Always on PostgreSQL (a database of
//! the shared throwaway cluster, or a cluster of its own), whatever `CLASSCHAT_TEST_DB` says.

use std::time::{Duration, Instant};

use classchat_server::config::Settings;
use classchat_shared::ErrorCode;
use sqlx::Connection;

use crate::helpers::*;
use crate::pg_cluster::{PgCluster, shared};

/// Two replicas on one fresh database of `url`, with `configure` on both.
async fn replicas_on(
    url: &str,
    configure: impl Fn(&mut Settings) + Clone + Send + Sync + 'static,
) -> (TestApp, TestApp) {
    let opts = || {
        Opts::default()
            .with(database(url))
            .with(|s| {
                s.sign_ins_per_address = rate(1_000_000, minutes(1));
                s.budget_lease = Duration::from_secs(2);
            })
            .with(configure.clone())
    };
    (spawn_app_with(opts()).await, spawn_app_with(opts()).await)
}

/// Sends `n` messages at once to `app`: how many were admitted (200) and refused (429).
async fn burst(app: &TestApp, token: &str, n: usize) -> (usize, usize) {
    let sends = (0..n).map(|_| app.post_chat(token, chat_body("hi", false)));
    let (mut admitted, mut refused) = (0, 0);
    for r in futures::future::join_all(sends).await {
        match r.status().as_u16() {
            200 => admitted += 1,
            429 => refused += 1,
            s => panic!("status {s} in the burst"),
        }
    }
    (admitted, refused)
}

/// Sends messages one at a time until one is refused: how many were admitted.
async fn until_refused(app: &TestApp, token: &str, at_most: usize) -> usize {
    for n in 0..at_most {
        let r = app.post_chat(token, chat_body("hi", false)).await;
        if r.status().as_u16() != 200 {
            expect_error(r, 429, ErrorCode::RateLimited).await;
            return n;
        }
    }
    at_most
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_in_a_burst_admit_the_ceiling_and_at_most_its_refill_more() {
    // A ceiling of 320 a minute: slices of up to 10, an interval of 187.5 ms.
    const N: usize = 320;
    let url = shared().create_database().await;
    let (a, b) = replicas_on(&url, |s| {
        s.messages_per_minute = 0;
        s.class_messages_per_minute = N as u32;
    })
    .await;
    let ta = a.sign_in().await.token;
    let tb = b.sign_in().await.token;
    let start = Instant::now();
    let ((a_in, a_out), (b_in, b_out)) = tokio::join!(burst(&a, &ta, 250), burst(&b, &tb, 250));
    let elapsed = start.elapsed();
    let admitted = a_in + b_in;
    // The budget refills one message per interval while the burst runs; every message
    // admitted was granted by the database, so nothing beyond that refill gets in.
    let refill = (elapsed.as_secs_f64() / (60.0 / N as f64)).ceil() as usize + 1;
    eprintln!(
        "burst of 2 x 250 in {elapsed:?}: {a_in} + {b_in} admitted, {a_out} + {b_out} refused; refill {refill}"
    );
    assert!(
        admitted <= N + refill,
        "{admitted} admitted where the ceiling is {N} (+{refill} refilled)"
    );
    assert!(
        admitted >= N,
        "{admitted} admitted: the ceiling of {N} was not reached"
    );
    assert!(
        a_in > 0 && b_in > 0,
        "both replicas admitted: {a_in}, {b_in}"
    );
}

/// The messages the database has counted today over all classes.
async fn counted(db: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar("SELECT coalesce(sum(messages), 0)::BIGINT FROM daily_messages")
        .fetch_one(db)
        .await
        .unwrap()
}

/// The classchat binary as a replica of its own (so it can be killed), on `db`.
fn replica_process(db: &str, upstream: &str, quota: u32) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_classchat"))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", db)
        .env("AUTH_SECRET", SECRET)
        .env("ACCESS_CODE", CODE)
        .env("TIMEZONE", "Asia/Taipei")
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("OPEN_WEBUI_URL", upstream)
        .env("OPEN_WEBUI_API_KEY", API_KEY)
        .env("OPEN_WEBUI_MODEL", "test-model")
        .env("MESSAGES_PER_MINUTE", "0")
        .env("CLASS_MESSAGES_PER_MINUTE", "0")
        .env("DAILY_MESSAGE_QUOTA", quota.to_string())
        .env("BUDGET_LEASE", "2s")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _ = dir.keep();
    (child, format!("http://127.0.0.1:{port}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_s_slice_comes_back_once_its_lease_ends() {
    // A daily quota (no refill hides a lost slice): 320, slices of up to 10.
    const Q: usize = 320;
    let url = shared().create_database().await;
    let b = spawn_app_with(Opts::default().with(database(&url)).with(|s| {
        s.messages_per_minute = 0;
        s.class_messages_per_minute = 0;
        s.daily_message_quota = Q as u32;
        s.budget_lease = Duration::from_secs(2);
    }))
    .await;
    let (mut child, address) = replica_process(&url, &b.upstream.url(), Q as u32);
    let a = reqwest::Client::new();
    wait_for("the replica process answers", || async {
        a.get(format!("{address}/healthz")).send().await.is_ok()
    })
    .await;
    let token = b.sign_in().await.token;
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();

    // Bursts on the process until it holds events of its slices unspent: the database has
    // counted more of the day than the process admitted.
    let mut on_a = 0;
    for _ in 0..60 {
        let sends = (0..8).map(|_| {
            a.post(format!("{address}/api/v1/chat"))
                .bearer_auth(&token)
                .json(&chat_body("hi", false))
                .send()
        });
        for r in futures::future::join_all(sends).await {
            assert_eq!(r.unwrap().status(), 200);
            on_a += 1;
        }
        if counted(&mut db).await > on_a as i64 {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL: nothing is returned
    child.wait().unwrap();
    let held = counted(&mut db).await - on_a as i64;
    assert!(held > 0, "the replica never held an unspent slice");
    let first_expiry: i64 =
        sqlx::query_scalar("SELECT min(expires_ms) FROM budget_leases WHERE unused > 0")
            .fetch_one(&mut db)
            .await
            .unwrap();

    // The other replica spends until refused, then keeps asking: the whole quota becomes
    // spendable, and only once the killed replica's lease has ended.
    let mut on_b = until_refused(&b, &token, Q).await;
    let refused_at = Instant::now();
    let deadline = Instant::now() + PATIENCE;
    while on_a + on_b < Q {
        assert!(
            Instant::now() < deadline,
            "the killed replica's slice never came back"
        );
        if b.post_chat(&token, chat_body("hi", false)).await.status() == 200 {
            on_b += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let now: i64 = sqlx::query_scalar("SELECT classchat_now_ms()")
        .fetch_one(&mut db)
        .await
        .unwrap();
    eprintln!(
        "quota {Q}: {on_a} on the killed replica ({held} unspent when killed), {on_b} on the \
         other; the whole quota {:?} after the other was first refused",
        refused_at.elapsed()
    );
    assert!(
        now >= first_expiry,
        "the quota was whole {} ms before the killed replica's lease ended",
        first_expiry - now
    );
    // Once every slice is back, nothing more: what the killed replica spent of its slices
    // after taking them came back with the rest, at most a slice (10) less one.
    wait_for("every slice returned", || async {
        b.state.limits.leased_unspent() == 0
            && sqlx::query_scalar::<_, i64>("SELECT count(*) FROM budget_leases")
                .fetch_one(&mut sqlx::PgConnection::connect(&url).await.unwrap())
                .await
                .unwrap()
                == 0
    })
    .await;
    on_b += until_refused(&b, &token, Q).await;
    assert!(
        on_a + on_b < Q + 10,
        "{} admitted where the quota is {Q}",
        on_a + on_b
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_costs_well_under_one_statement_with_budgets_on() {
    let cluster = PgCluster::new(&[
        "shared_preload_libraries = 'pg_stat_statements'",
        "pg_stat_statements.track = all",
    ]);
    cluster.start();
    let url = cluster.create_database().await;
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE EXTENSION pg_stat_statements")
        .execute(&mut db)
        .await
        .unwrap();
    let (a, b) = replicas_on(&url, |s| {
        s.messages_per_minute = 1_000_000;
        s.class_messages_per_minute = 1_000_000;
        s.daily_message_quota = 1_000_000;
    })
    .await;
    let token = a.sign_in().await.token;
    // Both replicas warm (a first slice each), then counted from zero.
    for app in [&a, &b] {
        assert_eq!(burst(app, &token, 4).await, (4, 0));
    }
    a.usage_rows(8).await;
    sqlx::query("SELECT pg_stat_statements_reset()")
        .execute(&mut db)
        .await
        .unwrap();
    const MESSAGES: usize = 400;
    for _ in 0..MESSAGES / 40 {
        let (x, y) = tokio::join!(burst(&a, &token, 20), burst(&b, &token, 20));
        assert_eq!((x, y), ((20, 0), (20, 0)));
    }
    a.usage_rows(8 + MESSAGES).await;
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT query, calls FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND query NOT LIKE '%pg_stat_statements%' AND toplevel ORDER BY calls DESC",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    let calls = |needle: &str| -> i64 {
        rows.iter()
            .filter(|(q, _)| q.contains(needle))
            .map(|(_, c)| c)
            .sum()
    };
    let total: i64 = rows.iter().map(|(_, c)| c).sum();
    let leases = calls("classchat_lease(");
    let usage = calls("INSERT INTO usage_log");
    eprintln!(
        "{MESSAGES} messages: {total} statements ({leases} lease takes, {usage} usage inserts); the busiest:"
    );
    for (q, c) in rows.iter().take(12) {
        let q: String = q.split_whitespace().collect::<Vec<_>>().join(" ");
        eprintln!("{c:>6}  {}", q.chars().take(140).collect::<String>());
    }
    assert_eq!(calls("classchat_admit("), 0, "no per-message admission");
    assert!(
        (leases as usize) < MESSAGES / 4,
        "{leases} lease takes for {MESSAGES} messages"
    );
    // Nothing else runs per message either: the usage rows go in batches (a few statements
    // a flush, however many rows), and tokens are checked against in-memory copies.
    for (q, c) in &rows {
        assert!(
            (*c as usize) < MESSAGES / 4,
            "{c} calls for {MESSAGES} messages: {q}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_stops_returns_its_slices_at_once() {
    const Q: usize = 320;
    let url = shared().create_database().await;
    let (a, b) = replicas_on(&url, |s| {
        s.messages_per_minute = 0;
        s.class_messages_per_minute = 0;
        s.daily_message_quota = Q as u32;
        // Long enough that only a return (not the database's expiry) explains the slice back.
        s.budget_lease = Duration::from_secs(60);
    })
    .await;
    let token = a.sign_in().await.token;
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut on_a = 0;
    for _ in 0..60 {
        assert_eq!(burst(&a, &token, 8).await, (8, 0));
        on_a += 8;
        if a.state.limits.leased_unspent() > 0 {
            break;
        }
    }
    let held = a.state.limits.leased_unspent();
    assert!(held > 0, "the replica never held an unspent slice");
    assert_eq!(counted(&mut db).await, (on_a + held as usize) as i64);
    a.stop().await;
    // Returned on the way out: the day counts what was admitted, and the other replica
    // spends the rest of the quota without waiting for any lease to end.
    assert_eq!(counted(&mut db).await, on_a as i64);
    let on_b = until_refused(&b, &token, Q).await;
    assert_eq!(on_a + on_b, Q);
}

/// One integer from the app's database, on either backend.
async fn scalar(app: &TestApp, sql: &str) -> i64 {
    if app.state.store.is_postgres() {
        let mut c = sqlx::PgConnection::connect(&app.db_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(&app.db_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    }
}

/// The usage writer's rollups, now multi-row statements per batch: right per session and
/// per hour over several sessions and batches, and a session's last-seen time never goes
/// back. On the backend `CLASSCHAT_TEST_DB` names.
#[tokio::test]
async fn a_usage_batch_keeps_every_session_s_and_hour_s_rollup() {
    use classchat_server::store::{Outcome, SessionRow, UsageRow};
    const HOUR: i64 = 3_600_000;
    let app = spawn_app().await;
    let t0 = 1_800_000_000_000 - 1_800_000_000_000 % HOUR;
    let row = |session: usize, at_ms: i64| UsageRow {
        at_ms,
        class_id: "c".into(),
        session_id: format!("s{session}"),
        conversation_id: "conv".into(),
        prompt_tokens: Some(1),
        completion_tokens: Some(2),
        outcome: Outcome::Completed,
        ..Default::default()
    };
    let sessions: Vec<SessionRow> = (0..70)
        .map(|i| SessionRow {
            session_id: format!("s{i}"),
            class_id: "c".into(),
            display_name: None,
            started_at_ms: t0,
        })
        .collect();
    // 70 sessions (more than one statement's 64), two hours, two batches; session i sends
    // i % 3 + 1 messages in the first batch.
    let first: Vec<UsageRow> = (0..70)
        .flat_map(|i| (0..i % 3 + 1).map(move |k| row(i, t0 + (i as i64) * 1000 + k as i64)))
        .chain([row(5, t0 + HOUR + 10)])
        .collect();
    app.state
        .store
        .insert_usage(&first, &sessions)
        .await
        .unwrap();
    // An older row for s5 later: counted, but its last-seen time stays.
    app.state
        .store
        .insert_usage(&[row(5, t0 + 1)], &[])
        .await
        .unwrap();
    let expected: i64 = (0..70).map(|i| (i % 3 + 1) as i64).sum::<i64>() + 2;
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM usage_log").await,
        expected
    );
    assert_eq!(
        scalar(
            &app,
            "SELECT CAST(SUM(messages) AS BIGINT) FROM usage_by_session"
        )
        .await,
        expected
    );
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM usage_by_session").await,
        70
    );
    assert_eq!(
        scalar(
            &app,
            "SELECT messages FROM usage_by_session WHERE session_id = 's5'"
        )
        .await,
        (5 % 3 + 1) + 2
    );
    assert_eq!(
        scalar(
            &app,
            "SELECT tokens FROM usage_by_session WHERE session_id = 's68'"
        )
        .await,
        3 * (68 % 3 + 1)
    );
    assert_eq!(
        scalar(
            &app,
            &format!(
                "SELECT messages FROM usage_hourly WHERE hour_ms = {}",
                t0 + HOUR
            )
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &app,
            &format!("SELECT messages FROM usage_hourly WHERE hour_ms = {t0}")
        )
        .await,
        expected - 1
    );
    assert_eq!(
        scalar(
            &app,
            "SELECT last_seen_ms FROM sessions WHERE session_id = 's5'"
        )
        .await,
        t0 + HOUR + 10
    );
    assert_eq!(
        scalar(
            &app,
            "SELECT last_seen_ms FROM sessions WHERE session_id = 's68'"
        )
        .await,
        t0 + 68_000 + 2
    );
}

/// Two replicas' usage batches that touch the same class-hours and sessions at once both
/// commit: rollup rows are upserted in key order, so neither waits on a lock the other holds
/// (in hash order they deadlocked on PostgreSQL under the two-replica benchmark).
#[tokio::test]
async fn concurrent_usage_batches_over_the_same_rollups_both_commit() {
    use classchat_server::store::{Outcome, UsageRow};
    let app = spawn_app().await;
    let at = 1_800_000_000_000_i64;
    let batch = |reverse: bool| {
        let mut rows: Vec<UsageRow> = (0..60)
            .map(|i| UsageRow {
                at_ms: at + i,
                class_id: format!("c{}", i % 30),
                session_id: format!("s{}", i % 40),
                conversation_id: "conv".into(),
                outcome: Outcome::Completed,
                ..Default::default()
            })
            .collect();
        if reverse {
            rows.reverse();
        }
        rows
    };
    let store = &app.state.store;
    for _ in 0..15 {
        let (a, b) = (batch(false), batch(true));
        let (ra, rb) = tokio::join!(store.insert_usage(&a, &[]), store.insert_usage(&b, &[]));
        ra.expect("the first batch commits");
        rb.expect("the second batch commits");
    }
    assert_eq!(
        scalar(
            &app,
            "SELECT CAST(SUM(messages) AS BIGINT) FROM usage_hourly"
        )
        .await,
        15 * 2 * 60
    );
}
