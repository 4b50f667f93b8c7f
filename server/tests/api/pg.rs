//! PostgreSQL itself: the schema matches SQLite's, replicas starting together migrate once,
//! a URL's password stays out of logs and errors, TLS is verified, and `migrate-db` moves a
//! SQLite deployment's history over. These run on every pass (they make their own
//! databases); `scripts/test`'s PostgreSQL pass skips them (`--skip pg::`).

use std::collections::BTreeMap;

use classchat_server::config::Settings;
use classchat_server::startup::Application;
use classchat_server::store::Store;
use classchat_server::store::copy::TABLES;
use classchat_server::store::dashboard::OverrideChange;
use classchat_shared::ErrorCode;
use serde_json::json;

use crate::admin::{PASSWORD, sign_in_teacher};
use crate::helpers::*;
use crate::pg_cluster::{PgCluster, shared};

/// A column as both backends should agree on it: the type family and nullability.
fn normalised(
    store_columns: Vec<classchat_server::store::copy::ColumnInfo>,
) -> BTreeMap<(String, String), (String, i64)> {
    store_columns
        .into_iter()
        .map(|c| {
            let family = match c.column_type.as_str() {
                "integer" | "bigint" => "integer",
                "text" => "text",
                other => panic!(
                    "{}.{}: unexpected type {other}",
                    c.table_name, c.column_name
                ),
            };
            (
                (c.table_name, c.column_name),
                (family.to_owned(), c.not_null),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_postgres_schema_has_the_same_tables_columns_and_nullability_as_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::connect(dir.path().join("s.db").to_str().unwrap())
        .await
        .unwrap();
    let pg = Store::connect(&shared().create_database().await)
        .await
        .unwrap();
    let (a, mut b) = (
        normalised(sqlite.table_columns().await.unwrap()),
        normalised(pg.table_columns().await.unwrap()),
    );
    assert!(a.len() > 30, "{a:?}");
    // Only PostgreSQL keeps the shared budgets: on SQLite (one process) they live in memory.
    for only_pg in ["rate_budgets", "daily_messages", "budget_leases"] {
        let before = b.len();
        b.retain(|(table, _), _| table != only_pg);
        assert!(b.len() < before, "{only_pg} is missing on PostgreSQL");
    }
    assert_eq!(a, b, "SQLite (left) and PostgreSQL (right) schemas differ");
}

#[tokio::test]
async fn replicas_starting_together_on_a_fresh_database_migrate_it_once() {
    for _ in 0..3 {
        let url = shared().create_database().await;
        let starts = (0..4).map(|_| Store::connect(&url));
        let stores: Vec<Store> = futures::future::join_all(starts)
            .await
            .into_iter()
            .collect::<anyhow::Result<_>>()
            .expect("every replica starts");
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
            .unwrap()
            .count();
        assert_eq!(
            applied.len(),
            files,
            "each migration applied once: {applied:?}"
        );
        for s in &stores {
            s.ping().await.unwrap();
        }
        assert!(stores.iter().all(Store::is_postgres));
    }
}

#[tokio::test]
async fn the_app_runs_on_postgres_and_its_password_never_reaches_a_log_or_an_error() {
    let cluster = shared();
    let url = cluster.create_database().await;
    let app = spawn_app_with(
        Opts::default()
            .with(database(&url))
            .with(|s| s.admin = admin_password(PASSWORD)),
    )
    .await;
    assert!(app.state.store.is_postgres());
    let s = app.sign_in().await;
    read_events(app.post_chat(&s.token, chat_body("hello", true)).await).await;
    assert_eq!(app.usage_rows(1).await[0].outcome, "completed");
    let t = sign_in_teacher(&app).await;
    let class = app.page_as("/admin/classes/class-1", &t.cookie).await;
    assert!(
        class.contains("admin-student-row") && class.contains("Mei"),
        "{class}"
    );
    app.stop().await;

    // A wrong password and a port nobody listens on: errors name the server, not a password.
    let wrong = format!(
        "postgres://postgres:not-{}@127.0.0.1:{}/postgres",
        cluster.password(),
        cluster.port()
    );
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        format!(
            "postgres://postgres:{}@127.0.0.1:{port}/postgres",
            cluster.password()
        )
    };
    for (bad, cause) in [
        (wrong, "password authentication failed"),
        (closed, "refused"),
    ] {
        let settings = Settings::for_tests(&[
            "--listen-addr",
            "127.0.0.1:0",
            "--database-url",
            &bad,
            "--auth-secret",
            SECRET,
            "--access-code",
            CODE,
        ])
        .unwrap();
        let err = match Application::build(settings).await {
            Ok(_) => panic!("started on {bad}"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.contains("cannot open the database postgres://…@127.0.0.1:"),
            "{err}"
        );
        assert!(err.contains(cause), "the error gives the cause: {err}");
        assert!(!err.contains(cluster.password()), "{err}");
    }
    let logs = captured_logs();
    assert!(
        !logs.contains(cluster.password()),
        "a log line holds the database password"
    );
}

/// A throwaway CA and a server certificate it signed for 127.0.0.1: (CA PEM, cert PEM, key PEM).
fn throwaway_ca() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn tls_to_postgres_is_verified_against_the_given_ca_and_fails_without_it() {
    let (ca, cert, key) = throwaway_ca();
    // Only TLS connections are let in, so a connection that works was encrypted.
    let hba = "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n";
    let cluster = PgCluster::with_files(
        &[
            "ssl = on",
            "ssl_cert_file = 'server.crt'",
            "ssl_key_file = 'server.key'",
        ],
        &[
            ("server.crt", cert.as_bytes()),
            ("server.key", key.as_bytes()),
            ("pg_hba.conf", hba.as_bytes()),
        ],
    );
    cluster.start();
    let ca_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca_file.path(), &ca).unwrap();
    let base = cluster.url("postgres");

    let verified = format!(
        "{base}?sslmode=verify-full&sslrootcert={}",
        ca_file.path().display()
    );
    let store = Store::connect(&verified)
        .await
        .expect("TLS verified against the CA");
    store.ping().await.unwrap();
    store.close().await;

    // The system's (Mozilla's) roots do not know the throwaway CA.
    let err = Store::connect(&format!("{base}?sslmode=verify-full"))
        .await
        .map(|_| ())
        .expect_err("an unknown issuer is refused");
    let err = format!("{err:#}");
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("TLS"),
        "the error says what failed: {err}"
    );
    assert!(!err.contains(cluster.password()), "{err}");

    // Without TLS the server lets nobody in: the success above was over TLS.
    let err = Store::connect(&format!("{base}?sslmode=disable"))
        .await
        .map(|_| ())
        .expect_err("plain connections are refused");
    assert!(!format!("{err:#}").contains(cluster.password()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_db_copies_a_sqlite_deployment_to_postgres_idempotently() {
    // A single-machine deployment: two students chatted, one was revoked, the teacher
    // set a quota (each with its audit line).
    let dir = tempfile::tempdir().unwrap();
    let sqlite_file = dir.path().join("classchat.db");
    let sqlite_url = format!("sqlite://{}", sqlite_file.display());
    let app = spawn_app_with(
        Opts::default()
            .with(database(&sqlite_url))
            .with(|s| s.admin = admin_password(PASSWORD)),
    )
    .await;
    let mei = app.sign_in().await;
    let lin = app
        .post_session(json!({"access_code": CODE, "display_name": "Lin"}))
        .await;
    let lin: classchat_shared::SessionResponse = lin.json().await.unwrap();
    for (s, text) in [(&mei, "one"), (&lin, "two"), (&mei, "three")] {
        assert_eq!(
            app.post_chat(&s.token, chat_body(text, false))
                .await
                .status(),
            200
        );
    }
    let rows = app.usage_rows(3).await;
    let lin_session = rows
        .iter()
        .find(|r| r.display_name.as_deref() == Some("Lin"))
        .unwrap()
        .session_id
        .clone();
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let store = &app.state.store;
    store
        .change_class(
            "class-1",
            &OverrideChange::DailyQuota(50),
            "teacher",
            now_ms,
            "quota 50",
        )
        .await
        .unwrap();
    store
        .admin_revoke(
            &lin_session,
            "class-1",
            lin.session_expires_at,
            "teacher",
            now_ms,
        )
        .await
        .unwrap();
    app.stop().await;

    let cluster = shared();
    let pg_url = cluster.create_database().await;
    let migrate = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_classchat"))
            .args(["migrate-db", "--from", &sqlite_url, "--to", &pg_url])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "migrate-db failed: {stderr}");
        assert!(!stderr.contains(cluster.password()), "{stderr}");
        stderr
    };
    let first = tokio::task::block_in_place(migrate);
    assert!(first.contains("usage_log: 3/3 rows (3 new)"), "{first}");
    assert!(
        first.contains("revoked_sessions: 1/1 rows (1 new)"),
        "{first}"
    );
    assert!(first.contains("postgres://…@127.0.0.1:"), "{first}");
    let second = tokio::task::block_in_place(migrate);
    assert!(second.contains("usage_log: 3/3 rows (0 new)"), "{second}");
    assert!(second.contains("migrate-db: 0 rows copied"), "{second}");

    // Every table holds exactly the source's rows.
    let src = Store::connect_existing(&sqlite_url).await.unwrap();
    let dst = Store::connect(&pg_url).await.unwrap();
    for table in TABLES {
        let a = src.read_page(table, None, 10_000).await.unwrap();
        let b = dst.read_page(table, None, 10_000).await.unwrap();
        assert_eq!(a, b, "table {}", table.name);
        if [
            "usage_log",
            "sessions",
            "usage_hourly",
            "usage_by_session",
            "revoked_sessions",
            "class_overrides",
            "admin_audit",
        ]
        .contains(&table.name)
        {
            assert!(!a.is_empty(), "the test filled {}", table.name);
        }
    }
    // One row per page: every table's keyset (single and two-column keys) crosses pages.
    let paged_url = cluster.create_database().await;
    let summary = classchat_server::cli::migrate_db::run_paged(&sqlite_url, &paged_url, 1)
        .await
        .unwrap();
    assert_eq!(summary.read, summary.inserted);
    let paged = Store::connect(&paged_url).await.unwrap();
    for table in TABLES {
        assert_eq!(
            src.read_page(table, None, 10_000).await.unwrap(),
            paged.read_page(table, None, 10_000).await.unwrap(),
            "table {} copied a row per page",
            table.name
        );
    }
    paged.close().await;
    let max_id = crate::helpers::usage_log(&src).await.last().unwrap().id;
    src.close().await;
    dst.close().await;

    // The app on PostgreSQL: the dashboard shows the history, the revocation and the
    // quota hold, and new rows get ids after the copied ones.
    let app = spawn_app_with(
        Opts::default()
            .with(database(&pg_url))
            .with(|s| s.admin = admin_password(PASSWORD)),
    )
    .await;
    let t = sign_in_teacher(&app).await;
    let class = app.page_as("/admin/classes/class-1", &t.cookie).await;
    assert!(class.contains("Mei") && class.contains("Lin"), "{class}");
    assert!(class.contains("Daily quota: 50 messages"), "{class}");
    expect_error(
        app.post_chat(&lin.token, chat_body("hi", false)).await,
        401,
        ErrorCode::SessionRevoked,
    )
    .await;
    assert_eq!(
        app.post_chat(&mei.token, chat_body("four", false))
            .await
            .status(),
        200
    );
    let rows = app.usage_rows(4).await;
    assert_eq!(rows.len(), 4);
    assert!(rows[3].id > max_id, "{} after {max_id}", rows[3].id);
    app.stop().await;
}

#[tokio::test]
async fn migrate_db_refuses_a_missing_source_an_unknown_table_and_names_urls_without_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}", dir.path().join("nope.db").display());
    let to = "postgres://app:hunter2-secret@127.0.0.1:1/classchat";
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_classchat"))
        .args(["migrate-db", "--from", &missing, "--to", to])
        .env_clear()
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--from") && stderr.contains("nope.db"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("nope.db").exists(),
        "no empty database was made"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_classchat"))
        .args(["migrate-db", "--from", to, "--to", to])
        .env_clear()
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("postgres://…@127.0.0.1:1/classchat"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");

    // A table this build's copier does not know (a newer schema, say): refused, by name.
    let src = dir.path().join("newer.db");
    Store::connect(src.to_str().unwrap())
        .await
        .unwrap()
        .close()
        .await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", src.display()))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE homework (id INTEGER PRIMARY KEY, title TEXT)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let to = format!("sqlite://{}", dir.path().join("copy.db").display());
    let err = classchat_server::cli::migrate_db::run(&format!("sqlite://{}", src.display()), &to)
        .await
        .expect_err("an unknown table is refused");
    assert!(format!("{err:#}").contains("\"homework\""), "{err:#}");
}

#[tokio::test]
async fn a_test_cluster_restarts_with_its_data_and_is_removed_on_drop() {
    let cluster = PgCluster::new(&[]);
    cluster.start();
    let url = cluster.create_database().await;
    let store = Store::connect(&url).await.unwrap();
    store
        .record_audit(1, "teacher", "sign_in", None, "before the restart")
        .await
        .unwrap();
    store.close().await;
    cluster.stop();
    assert!(
        Store::connect(&url).await.is_err(),
        "a stopped cluster refuses connections"
    );
    cluster.start();
    let store = Store::connect(&url).await.unwrap();
    let audit = store.recent_audit(None, 10).await.unwrap();
    assert_eq!(audit[0].detail, "before the restart");
    store.close().await;
    let dir = cluster.dir().to_owned();
    assert!(dir.join("data").exists());
    drop(cluster);
    assert!(!dir.exists(), "the cluster's directory is removed on drop");
}
