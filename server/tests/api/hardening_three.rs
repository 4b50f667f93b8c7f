//! Holes a review found in the sign-in limits, the daily quota, the proxy header, URL
//! redaction and revocations, each test failing if its fix is undone. Tests named `…_on_pg`
//! always run on PostgreSQL (a database of the shared throwaway cluster, or a cluster of their
//! own when they stop it); the others run on the backend `CLASSCHAT_TEST_DB` names.

use classchat_server::config::ClientIpSource;
use classchat_shared::{ApiError, ErrorCode};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::pg_cluster::{PgCluster, shared};

/// A wrong code sent at once `n` times from one address: how many were evaluated (401
/// `invalid_code`) and how many refused before their code was looked at (429).
async fn wrong_codes_at_once(app: &TestApp, n: usize) -> (usize, usize) {
    let c = client_from(9);
    let sends = (0..n).map(|i| {
        let req = c
            .post(format!("{}/api/v1/session", app.address))
            .json(&json!({ "access_code": format!("wrong-guess-{i}") }));
        async move { req.send().await.unwrap() }
    });
    let (mut evaluated, mut refused) = (0, 0);
    for r in futures::future::join_all(sends).await {
        let status = r.status();
        let body: ApiError = r.json().await.unwrap();
        match (status.as_u16(), body.error.code) {
            (401, ErrorCode::InvalidCode) => evaluated += 1,
            (429, ErrorCode::RateLimited) => refused += 1,
            other => panic!("unexpected answer {other:?}: {}", body.error.message),
        }
    }
    (evaluated, refused)
}

/// The burst, with a refill (one an hour) that cannot add a try while the test runs.
fn burst_of_15(opts: Opts) -> Opts {
    opts.with(|s| s.login_failures_per_address = rate(15, hours(15)))
}

async fn parallel_guesses_are_evaluated_at_most_the_burst(opts: Opts) {
    let app = spawn_app_with(burst_of_15(opts)).await;
    let (evaluated, refused) = wrong_codes_at_once(&app, 200).await;
    eprintln!("200 parallel wrong codes: {evaluated} evaluated, {refused} refused");
    assert_eq!(evaluated + refused, 200);
    assert!(
        (1..=15).contains(&evaluated),
        "{evaluated} evaluated where the burst is 15"
    );
    // A right code given while the budget is spent is refused too, and one from elsewhere
    // signs in: the spent budget is this address's.
    let r = client_from(9)
        .post(format!("{}/api/v1/session", app.address))
        .json(&json!({ "access_code": CODE }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = client_from(10)
        .post(format!("{}/api/v1/session", app.address))
        .json(&json!({ "access_code": CODE }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_codes_from_one_address_are_evaluated_at_most_the_burst_on_pg() {
    let url = shared().create_database().await;
    parallel_guesses_are_evaluated_at_most_the_burst(Opts::default().with(database(&url))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_codes_from_one_address_are_evaluated_at_most_the_burst() {
    parallel_guesses_are_evaluated_at_most_the_burst(Opts::default()).await;
}

#[tokio::test]
async fn a_right_code_gives_its_attempt_back() {
    let app = spawn_app_with(Opts::default().with(|s| {
        s.login_failures_per_address = rate(2, hours(15));
        s.login_failures_per_address_per_day = 0;
    }))
    .await;
    let c = client_from(11);
    let send = |code: &'static str| {
        c.post(format!("{}/api/v1/session", app.address))
            .json(&json!({ "access_code": code }))
            .send()
    };
    // Twenty right codes spend none of the two tries a wrong code has.
    for _ in 0..20 {
        assert_eq!(send(CODE).await.unwrap().status(), 200);
    }
    for _ in 0..2 {
        assert_eq!(send("wrong-code-1").await.unwrap().status(), 401);
    }
    assert_eq!(send(CODE).await.unwrap().status(), 429);
}

/// Wrong codes "from" IPv6 clients behind a trusted proxy on loopback (budgets small enough
/// to count): per /64 3, per /56 5, per /48 8.
fn ipv6_budgets(opts: Opts) -> Opts {
    opts.with(|s| {
        behind_loopback_proxy(s, ClientIpSource::XForwardedFor);
        s.login_failures_per_address = rate(3, hours(15));
        s.login_failures_per_ipv6_56 = rate(5, hours(15));
        s.login_failures_per_ipv6_48 = rate(8, hours(15));
    })
}

async fn wrong_code_from(app: &TestApp, ip: &str, code: &str) -> u16 {
    app.client
        .post(format!("{}/api/v1/session", app.address))
        .header("x-forwarded-for", ip)
        .json(&json!({ "access_code": code }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn a_48_with_many_64s_is_bounded(opts: Opts) {
    let app = spawn_app_with(ipv6_budgets(opts)).await;
    // One person's /48: two tries from each of 40 /64s, each in a /56 of its own.
    let mut evaluated = 0;
    for i in 0..40u32 {
        for _ in 0..2 {
            match wrong_code_from(&app, &format!("2001:db8:aa:{i:02x}00::1"), "wrong-1").await {
                401 => evaluated += 1,
                429 => {}
                s => panic!("status {s}"),
            }
        }
    }
    assert_eq!(evaluated, 8, "the /48's budget, not 40 /64s' worth");
    // 40 /64s of one /56 of another /48: the /56's budget.
    let mut evaluated = 0;
    for i in 0..40u32 {
        if wrong_code_from(&app, &format!("2001:db8:bb:1{i:02x}::1"), "wrong-1").await == 401 {
            evaluated += 1;
        }
    }
    assert_eq!(evaluated, 5, "the /56's budget");
    // Another /48 is someone else.
    assert_eq!(
        wrong_code_from(&app, "2001:db8:cc:1::1", CODE).await,
        200,
        "another /48 signs in"
    );
    assert_eq!(
        wrong_code_from(&app, "2001:db8:aa:ff00::1", CODE).await,
        429
    );
}

#[tokio::test]
async fn a_48_with_many_64s_gets_a_bounded_number_of_tries() {
    a_48_with_many_64s_is_bounded(Opts::default()).await;
}

#[tokio::test]
async fn a_48_with_many_64s_gets_a_bounded_number_of_tries_on_pg() {
    let url = shared().create_database().await;
    a_48_with_many_64s_is_bounded(Opts::default().with(database(&url))).await;
}

async fn chat(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_chat(token, chat_body("hi", false)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_grants_no_new_daily_quota_on_pg() {
    let cluster = PgCluster::new(&[]);
    cluster.start();
    let url = cluster.create_database().await;
    let opts = || {
        Opts::default().with(database(&url)).with(|s| {
            s.daily_message_quota = 10;
            s.messages_per_minute = 0;
            s.class_messages_per_minute = 0;
        })
    };
    let a = spawn_app_with(opts()).await;
    let b = spawn_app_with(opts()).await;
    let s = a.sign_in().await;
    for app in [&a, &b, &a, &b, &a, &b, &a, &b] {
        assert_eq!(chat(app, &s.token).await.status(), 200);
    }

    // 8 of 10 used; the database goes away. Neither replica knows what the other spends, so
    // together they admit at most the 2 left (and each telling its students a new day began
    // is what this guards against).
    cluster.stop();
    let mut admitted = 0;
    for app in [&a, &b, &a, &b, &a, &b] {
        let r = chat(app, &s.token).await;
        match r.status().as_u16() {
            200 => admitted += 1,
            503 => {
                let e: ApiError = r.json().await.unwrap();
                assert_eq!(e.error.code, ErrorCode::Unavailable);
            }
            s => panic!("status {s} during the outage"),
        }
    }
    assert!(admitted <= 2, "{admitted} admitted during the outage");

    // Back: the class spends the rest, and each replica learns that the day is spent.
    cluster.start();
    for app in [&a, &b] {
        wait_for("the replica's quota answer", || async {
            chat(app, &s.token).await.status() == StatusCode::TOO_MANY_REQUESTS
        })
        .await;
    }
    // Away again: the known count says the day is spent; no replica starts a new one.
    cluster.stop();
    for app in [&a, &b, &a, &b] {
        let e = expect_error(chat(app, &s.token).await, 429, ErrorCode::RateLimited).await;
        assert!(e.error.message.contains("today"), "{}", e.error.message);
    }
}

#[tokio::test]
async fn a_bad_byte_in_x_forwarded_for_does_not_make_the_client_the_proxy() {
    let app = spawn_app_with(Opts::default().with(|s| {
        s.client_ip = ClientIpSource::XForwardedFor;
        s.trusted_proxies = nets(&["127.0.0.1/32"]);
        s.login_failures_per_address = rate(2, hours(15));
    }))
    .await;
    let proxy = client_from(1);
    let send = |xff: Option<&'static [u8]>| {
        let mut req = proxy
            .post(format!("{}/api/v1/session", app.address))
            .json(&json!({ "access_code": "not-the-code" }));
        if let Some(v) = xff {
            req = req.header(
                "x-forwarded-for",
                reqwest::header::HeaderValue::from_bytes(v).unwrap(),
            );
        }
        req.send()
    };
    // The client put a Latin-1 byte in its own part; the proxy appended what it saw.
    let forged: &'static [u8] = b"caf\xe9, 198.51.100.7";
    for _ in 0..2 {
        assert_eq!(send(Some(forged)).await.unwrap().status(), 401);
    }
    assert_eq!(
        send(Some(forged)).await.unwrap().status(),
        429,
        "counted as 198.51.100.7"
    );
    assert!(app.logs().contains("client=198.51.100.7"), "{}", app.logs());
    // The proxy's own budget (what every client without a header shares) is untouched.
    assert_eq!(send(None).await.unwrap().status(), 401);
    // A bad byte where the client's address should be: unknown, still not the proxy.
    let bad: &'static [u8] = b"198.51.100.8, 10.0.0.\xff";
    for _ in 0..2 {
        assert_eq!(send(Some(bad)).await.unwrap().status(), 401);
    }
    assert_eq!(send(Some(bad)).await.unwrap().status(), 429);
    assert_eq!(send(None).await.unwrap().status(), 401);
}

#[tokio::test]
async fn a_revoked_session_s_last_token_is_refused_through_its_leeway() {
    use classchat_server::auth::token::LEEWAY_SECS;
    let app = spawn_app().await;
    let s = app.sign_in().await;
    // The session's last token: it expires at the session's end and verifies until the
    // leeway after it (here it is valid now, so only its revocation can refuse it).
    assert_eq!(app.logout(&s.token).await.status(), 204);
    // Housekeeping runs in the leeway after the end (the clock seam: housekeeping and the
    // resync take their "now"), on the database and in this replica's memory.
    let at = s.session_expires_at + LEEWAY_SECS as i64 - 1;
    let today = jiff::Zoned::now().date();
    app.state.revoked.prune(at);
    app.state.store.housekeeping(at, today).await.unwrap();
    expect_error(chat(&app, &s.token).await, 401, ErrorCode::SessionRevoked).await;
    // A replica that starts or resyncs then still reads the revocation.
    let sid = {
        use base64::Engine;
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.token.split('.').nth(1).unwrap())
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&claims).unwrap()["sub"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let kept = app.state.store.revocations(at).await.unwrap();
    assert!(kept.iter().any(|r| r.session_id == sid), "{kept:?}");
}

/// A PostgreSQL URL with the user and password in the query string instead of before the
/// host (libpq and sqlx take both).
fn query_string_url(url: &str, password: &str) -> String {
    let mut u = reqwest::Url::parse(url).unwrap();
    let user = u.username().to_owned();
    u.set_username("").unwrap();
    u.set_password(None).unwrap();
    format!("{u}?user={user}&password={password}&sslmode=disable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_the_query_string_reaches_no_log_line_on_pg() {
    let cluster = shared();
    let url = cluster.create_database().await;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], envs: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_classchat"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .current_dir(dir.path());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };

    // Start-up: the password is wrong, so the server stops with the database's error.
    let wrong = "Wrong-Query-Pass-5150";
    let (ok, out) = tokio::task::block_in_place(|| {
        run(
            &[],
            &[
                ("DATABASE_URL", &query_string_url(&url, wrong)),
                ("AUTH_SECRET", SECRET),
                ("ACCESS_CODE", CODE),
                ("LISTEN_ADDR", "127.0.0.1:0"),
            ],
        )
    });
    assert!(!ok, "{out}");
    assert!(out.contains("cannot open the database"), "{out}");
    assert!(out.contains("password=…"), "{out}");
    assert!(!out.contains(wrong), "{out}");

    // migrate-db's summary names the target with the right password in its query string.
    let sqlite = format!("sqlite://{}", dir.path().join("source.db").display());
    classchat_server::store::Store::connect(&sqlite)
        .await
        .unwrap()
        .close()
        .await;
    let to = query_string_url(&url, cluster.password());
    let (ok, out) =
        tokio::task::block_in_place(|| run(&["migrate-db", "--from", &sqlite, "--to", &to], &[]));
    assert!(ok, "{out}");
    assert!(out.contains("migrate-db: 0 rows copied"), "{out}");
    assert!(out.contains("password=…"), "{out}");
    assert!(!out.contains(cluster.password()), "{out}");
    assert!(!captured_logs().contains(wrong));
}
