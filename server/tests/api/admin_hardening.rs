//! Dashboard sign-in under attack, on the real router: a flood of wrong passwords does not
//! stall open chats, the limit over all addresses holds across replicas, old login forms
//! and signed-out or outdated sessions are refused, and the CSV export is defused.
//! Distinct clients are distinct loopback source addresses (127.0.0.x).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use classchat_fake_upstream::FakeConfig;
use classchat_server::admin::session::{CookieKeys, hash_password};
use serde_json::json;

use crate::admin::{PASSWORD, csrf_of, set_cookie};
use crate::admin_cf::{AUD, Access};
use crate::helpers::*;

/// A login form as one browser sees it: its pre-sign-in cookie and CSRF token.
#[derive(Clone)]
struct Form {
    client: reqwest::Client,
    cookie: String,
    csrf: String,
}

async fn login_form(app: &TestApp, client: &reqwest::Client) -> Form {
    let r = client
        .get(format!("{}/admin/login", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = set_cookie(&r, "classchat_admin_login").expect("login cookie");
    Form {
        client: client.clone(),
        cookie,
        csrf: csrf_of(&r.text().await.unwrap()),
    }
}

impl Form {
    async fn post(&self, address: &str, password: &str) -> reqwest::Response {
        self.client
            .post(format!("{address}/admin/login"))
            .header("cookie", &self.cookie)
            .form(&[("password", password), ("csrf", &self.csrf)])
            .send()
            .await
            .unwrap()
    }
}

/// A signed-in dashboard session: its cookie and the CSRF token of its pages.
struct Session {
    cookie: String,
    csrf: String,
}

async fn sign_in_from(app: &TestApp, client: &reqwest::Client) -> Session {
    let r = login_form(app, client)
        .await
        .post(&app.address, PASSWORD)
        .await;
    assert_eq!(r.status(), 303, "signed in");
    let cookie = set_cookie(&r, "classchat_admin").expect("session cookie");
    let page = dashboard(app, &cookie).await;
    assert_eq!(page.status(), 200);
    Session {
        csrf: csrf_of(&page.text().await.unwrap()),
        cookie,
    }
}

async fn dashboard(app: &TestApp, cookie: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/admin", app.address))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// `/admin` with this cookie: 200, or 303 to the login page.
async fn dashboard_status(app: &TestApp, cookie: &str) -> u16 {
    let r = dashboard(app, cookie).await;
    if r.status() == 303 {
        assert_eq!(r.headers()["location"], "/admin/login");
    }
    r.status().as_u16()
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds")
}

/// Fifty wrong passwords at once from five addresses, checked against an argon2 hash: the
/// checks queue for their slots on the blocking pool while a streamed chat and twenty
/// health checks, started after them, all finish before even half the sign-ins have been
/// answered. Run argon2 on the async workers instead and every one of those steps waits for
/// a check to end, so the sign-ins finish first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_wrong_passwords_wait_in_line_while_chats_keep_answering() {
    let hash = hash_password(PASSWORD).unwrap();
    let app = spawn_app_with(Opts {
        fake: FakeConfig {
            chunks: 20,
            chunk_delay: Duration::from_millis(1),
            ..FakeConfig::default()
        },
        ..Opts::default().with(move |s| {
            s.admin = admin_password_hash(&hash);
            s.login_failures_per_address = rate(100, minutes(10));
            s.admin_login_failures = rate(100, minutes(60));
        })
    })
    .await;
    let student = app.sign_in().await;
    let mut forms = Vec::new();
    for n in 2..=6 {
        forms.push(login_form(&app, &client_from(n)).await);
    }

    let answered = Arc::new(AtomicUsize::new(0));
    let attempts: Vec<_> = (0..50)
        .map(|i| {
            let (form, address, answered) =
                (forms[i % 5].clone(), app.address.clone(), answered.clone());
            tokio::spawn(async move {
                let status = form.post(&address, "not-the-password").await.status();
                answered.fetch_add(1, SeqCst);
                status.as_u16()
            })
        })
        .collect();
    // The flood is being checked: the first answers are out.
    let deadline = Instant::now() + Duration::from_secs(120);
    while answered.load(SeqCst) == 0 {
        assert!(Instant::now() < deadline, "no sign-in was ever answered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let events = read_events(
        app.post_chat(&student.token, chat_body("hello", true))
            .await,
    )
    .await;
    assert_eq!(reply_text(&events), "You said: hello");
    for _ in 0..20 {
        assert_eq!(app.get("/healthz").await.status(), 200);
    }
    let answered_meanwhile = answered.load(SeqCst);
    assert!(
        answered_meanwhile < 25,
        "the chat and health checks had to wait for {answered_meanwhile} of 50 password checks"
    );

    for a in attempts {
        assert_eq!(a.await.unwrap(), 401, "every wrong password is refused");
    }
    let r = login_form(&app, &client_from(7))
        .await
        .post(&app.address, PASSWORD)
        .await;
    assert_eq!(r.status(), 303, "the right password still signs in");
    assert!(!captured_logs().contains(PASSWORD));
}

/// Two replicas on one database, wrong passwords from five addresses in parallel: no more
/// than ADMIN_LOGIN_FAILURES get checked over both, the rest are told to wait, and then even
/// the right password from a new address waits.
#[tokio::test]
async fn the_limit_over_all_addresses_holds_across_replicas() {
    let opts = Opts::default().with(|s| {
        s.admin = admin_password(PASSWORD);
        s.admin_login_failures = rate(6, minutes(60));
        s.login_failures_per_address = rate(100, minutes(10));
    });
    let a = spawn_app_with(opts.clone()).await;
    let b = spawn_app_with(Opts {
        dir: Some(a.dir()),
        ..opts
    })
    .await;
    let mut jobs = Vec::new();
    for i in 0..10u8 {
        let app = if i % 2 == 0 { &a } else { &b };
        let form = login_form(app, &client_from(2 + i % 5)).await;
        let address = app.address.clone();
        jobs.push(tokio::spawn(async move {
            let r = form.post(&address, "not-the-password").await;
            (r.status().as_u16(), r.headers().get("retry-after").cloned())
        }));
    }
    let mut checked = 0;
    for j in jobs {
        match j.await.unwrap() {
            (401, _) => checked += 1,
            (429, Some(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(checked <= 6, "{checked} wrong passwords checked");
    // Two attempts racing for the last place can both be refused; one at a time, the rest
    // of the allowance is used up, and not one attempt more.
    let late = login_form(&b, &client_from(8)).await;
    for _ in 0..7 {
        let r = late.post(&b.address, "not-the-password").await;
        if r.status() == 429 {
            break;
        }
        assert_eq!(r.status(), 401);
        checked += 1;
    }
    assert_eq!(checked, 6, "exactly the allowance over both replicas");

    let r = login_form(&a, &client_from(9))
        .await
        .post(&a.address, PASSWORD)
        .await;
    assert_eq!(r.status(), 429, "the right password waits too");
    assert!(set_cookie(&r, "classchat_admin").is_none());
    let wait = retry_after(&r);
    assert!((1..=3600).contains(&wait), "Retry-After {wait}");
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Too many wrong passwords") && html.contains("Try again in"),
        "{html}"
    );
}

/// OWASP's device cookie against lock-out attacks: a stranger's 50 wrong passwords from ten
/// other addresses spend the account's budget for unknown browsers (20), so a browser that
/// never signed in waits, even with the right password; the teacher's browser, which signed
/// in before, is judged by its own budget and signs in at once, and the dashboard tells the
/// teacher how many wrong passwords were tried and when.
#[tokio::test]
async fn a_strangers_flood_does_not_lock_out_a_browser_that_signed_in_before() {
    let app = spawn_app_with(Opts::default().with(|s| s.admin = admin_password(PASSWORD))).await;
    let teacher = client_from(2);
    let r = login_form(&app, &teacher)
        .await
        .post(&app.address, PASSWORD)
        .await;
    assert_eq!(r.status(), 303, "signed in");
    let device = set_cookie(&r, "classchat_admin_device").expect("a device cookie");
    let raw = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("classchat_admin_device="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(raw.contains(attr), "{attr} in {raw}");
    }

    let (mut checked, mut refused) = (0, 0);
    for i in 0..50u8 {
        let stranger = login_form(&app, &client_from(3 + i % 10)).await;
        let r = stranger.post(&app.address, "not-the-password").await;
        match r.status().as_u16() {
            401 => checked += 1,
            429 => refused += 1,
            other => panic!("{other}"),
        }
    }
    assert_eq!(
        (checked, refused),
        (20, 30),
        "the account's budget, then waits"
    );

    // A browser that never signed in waits, the right password included...
    let r = login_form(&app, &client_from(20))
        .await
        .post(&app.address, PASSWORD)
        .await;
    assert_eq!(r.status(), 429, "an unknown browser is locked out");
    assert!(set_cookie(&r, "classchat_admin").is_none());
    // ...and a forged or foreign device cookie does not help it.
    let form = login_form(&app, &client_from(20)).await;
    let r = form
        .client
        .post(format!("{}/admin/login", app.address))
        .header(
            "cookie",
            format!(
                "{}; classchat_admin_device=YWRtaW4.x.9999999999.forged",
                form.cookie
            ),
        )
        .form(&[("password", PASSWORD), ("csrf", &form.csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        429,
        "a forged device cookie is no device cookie"
    );

    // The teacher's browser is not.
    let form = login_form(&app, &teacher).await;
    let r = teacher
        .post(format!("{}/admin/login", app.address))
        .header("cookie", format!("{}; {device}", form.cookie))
        .form(&[("password", PASSWORD), ("csrf", &form.csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        303,
        "the known browser signs in during the flood"
    );
    let session = set_cookie(&r, "classchat_admin").expect("session cookie");
    let page = dashboard(&app, &session).await.text().await.unwrap();
    assert!(
        page.contains(
            "20 failed sign-in attempts (wrong password) on this account since your last visit"
        ),
        "{page}"
    );
    assert!(page.contains("the last at "), "{page}");
    assert!(!page.contains("not-the-password"));
    assert!(!captured_logs().contains(PASSWORD));
}

/// The per-address budget counts by the sign-in address key and lives in the database, so
/// a second replica sees the first one's failures.
#[tokio::test]
async fn the_per_address_limit_is_shared_by_replicas() {
    let opts = Opts::default().with(|s| {
        s.admin = admin_password(PASSWORD);
        s.login_failures_per_address = rate(3, minutes(10));
    });
    let a = spawn_app_with(opts.clone()).await;
    let b = spawn_app_with(Opts {
        dir: Some(a.dir()),
        ..opts
    })
    .await;
    let client = client_from(4);
    for app in [&a, &b, &a] {
        let r = login_form(app, &client)
            .await
            .post(&app.address, "not-the-password")
            .await;
        assert_eq!(r.status(), 401);
    }
    let r = login_form(&b, &client)
        .await
        .post(&b.address, PASSWORD)
        .await;
    assert_eq!(r.status(), 429, "the other replica counts the same budget");
    let r = login_form(&b, &client_from(5))
        .await
        .post(&b.address, PASSWORD)
        .await;
    assert_eq!(r.status(), 303, "another address is not held back");
}

#[tokio::test]
async fn an_old_login_form_is_refused_without_checking_the_password() {
    let app = spawn_app_with(Opts::default().with(|s| s.admin = admin_password(PASSWORD))).await;
    let form = login_form(&app, &client_from(2)).await;
    let pre = form.cookie.split_once('=').unwrap().1.to_owned();
    let now = classchat_server::basics::now_secs();
    // The token the server made for this cookie two hours ago (same secret, same cookie).
    let old = Form {
        csrf: CookieKeys::new(&app.state.settings.auth_secret).login_csrf(&pre, now - 7200),
        ..form.clone()
    };
    let r = old.post(&app.address, PASSWORD).await;
    assert_eq!(r.status(), 403);
    assert!(set_cookie(&r, "classchat_admin").is_none());
    assert!(
        set_cookie(&r, "classchat_admin_login").is_some(),
        "a fresh form comes back"
    );
    let html = r.text().await.unwrap();
    assert!(
        html.contains("more than an hour") && html.contains("reload the page"),
        "{html}"
    );
    // The expiry is under the MAC: moving it forward breaks the token.
    let (_, mac) = old.csrf.split_once('.').unwrap();
    let forged = Form {
        csrf: format!("{}.{mac}", now + 3600),
        ..form.clone()
    };
    assert_eq!(forged.post(&app.address, PASSWORD).await.status(), 403);
    assert_eq!(form.post(&app.address, PASSWORD).await.status(), 303);
}

/// A copied session cookie stops working on every replica once its teacher signs out;
/// other sessions go on, until the password changes.
#[tokio::test]
async fn sign_out_ends_a_session_on_every_replica_and_a_new_password_ends_them_all() {
    let opts = Opts::default().with(|s| s.admin = admin_password(PASSWORD));
    let a = spawn_app_with(opts.clone()).await;
    let b = spawn_app_with(Opts {
        dir: Some(a.dir()),
        ..opts.clone()
    })
    .await;
    let leaving = sign_in_from(&a, &client_from(2)).await;
    let staying = sign_in_from(&a, &client_from(3)).await;
    assert_eq!(dashboard_status(&b, &leaving.cookie).await, 200);

    let r = a
        .client
        .post(format!("{}/admin/logout", a.address))
        .header("cookie", &leaving.cookie)
        .form(&[("csrf", &leaving.csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        set_cookie(&r, "classchat_admin").as_deref(),
        Some("classchat_admin=")
    );
    assert_eq!(dashboard_status(&a, &leaving.cookie).await, 303);
    assert_eq!(
        dashboard_status(&b, &leaving.cookie).await,
        303,
        "the other replica refuses the copied cookie"
    );
    assert_eq!(dashboard_status(&b, &staying.cookie).await, 200);
    let dir = a.dir();
    a.stop().await;
    b.stop().await;

    // Same password after a restart: the session lives on.
    let a = spawn_app_with(Opts {
        dir: Some(dir.clone()),
        ..opts
    })
    .await;
    assert_eq!(dashboard_status(&a, &staying.cookie).await, 200);
    assert_eq!(dashboard_status(&a, &leaving.cookie).await, 303);
    a.stop().await;

    // A new ADMIN_PASSWORD (here as a hash) ends every session made under the old one.
    let new_password = "another-teacher-password";
    let a = spawn_app_with(Opts {
        dir: Some(dir),
        ..Opts::default().with(|s| {
            s.admin = admin_password_hash(&hash_password(new_password).unwrap());
        })
    })
    .await;
    assert_eq!(dashboard_status(&a, &staying.cookie).await, 303);
    let r = login_form(&a, &client_from(4))
        .await
        .post(&a.address, new_password)
        .await;
    assert_eq!(r.status(), 303, "the new password signs in");
}

/// Student display names reach the CSV export defused and in one cell, whatever delimiter
/// the spreadsheet opening it expects.
#[tokio::test]
async fn the_csv_export_defuses_formulas_in_display_names() {
    let app = spawn_app_with(Opts::default().with(|s| s.admin = admin_password(PASSWORD))).await;
    for name in [
        "=HYPERLINK(\"http://evil.example\",\"x\")",
        "Lin; Bo",
        "@SUM(A1)",
    ] {
        let r = app
            .post_session(json!({"access_code": CODE, "display_name": name}))
            .await;
        assert_eq!(r.status(), 200);
        let s: classchat_shared::SessionResponse = r.json().await.unwrap();
        assert_eq!(
            app.post_chat(&s.token, chat_body("hi", false))
                .await
                .status(),
            200
        );
    }
    app.usage_rows(3).await;
    let t = sign_in_from(&app, &client_from(2)).await;
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::get("Asia/Taipei").unwrap())
        .date();
    let csv = app
        .page_as(
            &format!("/admin/export.csv?from={today}&to={today}"),
            &t.cookie,
        )
        .await;
    for cell in [
        ",\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",",
        ",\"Lin; Bo\",",
        ",'@SUM(A1),",
    ] {
        assert!(csv.contains(cell), "{cell} in {csv}");
    }
    assert_eq!(csv.lines().count(), 4, "{csv}");
}

/// Behind Cloudflare Access, ADMIN_EMAILS match by ASCII case only: an email that Unicode
/// case mapping would turn into a listed one (a Kelvin sign for the `K`) is refused.
#[tokio::test]
async fn access_emails_match_by_ascii_case_only() {
    let access = Access::spawn("Kim@School.example").await;
    let app = &access.app;
    let as_email = |email: &str| {
        let token = access.assertion(email, AUD);
        app.client
            .get(format!("{}/admin", app.address))
            .header("cf-access-jwt-assertion", token)
            .send()
    };
    assert_eq!(as_email("KIM@school.EXAMPLE").await.unwrap().status(), 200);
    let kelvin = as_email("\u{212a}im@school.example").await.unwrap();
    assert_eq!(kelvin.status(), 403);
    assert!(
        kelvin.text().await.unwrap().contains("outside plain ASCII"),
        "the page says why"
    );
}
