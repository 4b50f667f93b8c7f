//! Alerts: email through a real SMTP server on loopback (`python3 -m aiosmtpd`, Debian's
//! `python3-aiosmtpd`), a signed webhook retried after a 500, the durable outbox across a
//! restart, safety contacts through the admin API (a member of another class gets
//! nothing), and the dashboard's Alerts page. Runs on SQLite, and on PostgreSQL with
//! `CLASSCHAT_TEST_DB=postgres`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::admin_api::{admin_token, api, teacher};
use crate::helpers::*;
use classchat_server::config::Settings;

use crate::safety::{chat, safety, wait_for_flags, watched};

const WEBHOOK_SECRET: &str = "webhook-secret-0123456789-0123456789-abc";

/// A free loopback port (bound, then let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real SMTP server on loopback writing each message into a Maildir.
pub(crate) struct SmtpServer {
    pub(crate) port: u16,
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl SmtpServer {
    pub(crate) async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    pub(crate) async fn start_on(port: u16) -> Self {
        Self::start_with(port, None).await
    }

    /// With `tls` (certificate and key PEM), the server offers STARTTLS and requires it.
    pub(crate) async fn start_with(port: u16, tls: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = std::process::Command::new("/usr/bin/python3");
        cmd.args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"));
        if let Some((cert, key)) = tls {
            let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&c, cert).unwrap();
            std::fs::write(&k, key).unwrap();
            cmd.arg("--tlscert").arg(c).arg("--tlskey").arg(k);
        }
        let child = cmd
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("mail"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd is installed (scripts/setup)");
        wait_for("the SMTP server listens", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        Self { port, dir, child }
    }

    /// `SMTP_URL` for it.
    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// Every message received: (raw headers, decoded body).
    pub(crate) fn messages(&self) -> Vec<(String, String)> {
        let new: PathBuf = self.dir.path().join("mail").join("new");
        let Ok(entries) = std::fs::read_dir(new) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .map(|raw| {
                let raw = raw.replace("\r\n", "\n");
                let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
                let b64: String = body.split_whitespace().collect();
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_else(|_| body.to_owned());
                (head.to_owned(), decoded)
            })
            .collect()
    }

    pub(crate) async fn wait_for_messages(&self, n: usize) -> Vec<(String, String)> {
        wait_for(&format!("{n} email(s) received"), || async {
            self.messages().len() >= n
        })
        .await;
        self.messages()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A webhook receiver that answers 500 to the first `failures` posts, then 204.
#[derive(Clone, Default)]
struct Hook {
    got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    failures: usize,
}

impl Hook {
    async fn start(failures: usize) -> (Self, String) {
        let hook = Hook {
            failures,
            ..Default::default()
        };
        let h = hook.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let h = h.clone();
                async move {
                    let mut got = h.got.lock().unwrap();
                    got.push((headers, body));
                    if got.len() <= h.failures {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/hook?token=receiver-token",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        (hook, url)
    }

    fn got(&self) -> Vec<(HeaderMap, Bytes)> {
        self.got.lock().unwrap().clone()
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn the_email_reaches_a_real_smtp_server_after_the_flag_is_stored_and_without_the_message() {
    let smtp = SmtpServer::start().await;
    let app =
        spawn_app_with(watched().with(mail(&smtp.url(), Some("counsellor@school.example")))).await;
    let token = app.sign_in().await.token;
    let sentence = "Nobody notices me, I want to kill myself tonight";
    chat(&app, &token, sentence).await;
    let mails = smtp.wait_for_messages(1).await;
    // By the time the email is there, the flag is stored with its sent notification.
    let flag = &wait_for_flags(&app, 1).await[0];
    let (head, body) = &mails[0];
    assert!(head.contains("counsellor@school.example"), "{head}");
    assert!(
        head.contains("classchat safety alert: self-harm or suicide"),
        "{head}"
    );
    assert!(
        body.contains("self-harm or suicide") && body.contains("自我傷害或自殺"),
        "{body}"
    );
    assert!(
        body.contains(&format!("/admin/alerts#{}", flag.id)),
        "{body}"
    );
    for secret in ["kill myself", "Nobody notices", "tonight", "Mei"] {
        assert!(
            !body.contains(secret) && !head.contains(secret),
            "{secret:?} in the email"
        );
    }
    wait_for("the notification recorded as sent", || async {
        let f = app.state.store.flag(&flag.id).await.unwrap().unwrap();
        f.sent == 1 && f.pending == 0
    })
    .await;
    // The outbox row was written with the flag, so it cannot predate it.
    let notes = app.state.store.notifications_of(&flag.id).await.unwrap();
    assert_eq!(notes.len(), 1);
    assert!(notes[0].3.unwrap() >= flag.created_ms);
}

/// A throwaway CA and a certificate it signed for 127.0.0.1: (CA PEM, cert PEM, key PEM).
fn throwaway_ca() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn the_email_goes_over_starttls_verified_against_the_schools_ca_and_not_without_it() {
    let (ca, cert, key) = throwaway_ca();
    let smtp = SmtpServer::start_with(free_port(), Some((&cert, &key))).await;
    let ca_dir = tempfile::tempdir().unwrap();
    let ca_file = ca_dir.path().join("school-ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    // No tls parameter: STARTTLS is required.
    let url = format!("smtp://127.0.0.1:{}", smtp.port);
    let opts = watched().with(mail(&url, Some("counsellor@school.example")));

    // Without the school's CA, the server's certificate is not trusted: nothing is sent.
    let app = spawn_app_with(opts.clone()).await;
    let token = app.sign_in().await.token;
    chat(&app, &token, "I want to die").await;
    let flag = wait_for_flags(&app, 1).await.remove(0);
    wait_for("the untrusted server refused", || async {
        let n = app.state.store.notifications_of(&flag.id).await.unwrap();
        n[0].2 >= 1 && n[0].3.is_none()
    })
    .await;
    assert!(smtp.messages().is_empty());
    app.stop().await;

    let app = spawn_app_with(opts.with({
        let (url, ca) = (url.clone(), ca_file.clone());
        safety(move |c| {
            c.smtp_url = Some(url.clone().into());
            c.alert_email_from = Some("classchat@school.example".into());
            c.alert_email_to = Some("counsellor@school.example".into());
            c.smtp_ca_file = Some(ca.clone());
        })
    }))
    .await;
    let token = app.sign_in().await.token;
    chat(&app, &token, "I want to die").await;
    let mails = smtp.wait_for_messages(1).await;
    assert!(mails[0].0.contains("counsellor@school.example"));
}

#[tokio::test]
async fn the_webhook_body_verifies_with_its_hmac_and_is_retried_after_a_500() {
    let (hook, url) = Hook::start(1).await;
    let app = spawn_app_with(watched().with({
        let url = url.clone();
        safety(move |c| {
            c.alert_webhook_url = Some(url.clone().into());
            c.alert_webhook_secret = Some(WEBHOOK_SECRET.to_owned().into());
        })
    }))
    .await;
    let token = app.sign_in().await.token;
    chat(&app, &token, "my dad hits me when he is angry").await;
    let flag = wait_for_flags(&app, 1).await.remove(0);
    // The first post is answered 500: the notification stays pending, with why.
    wait_for("the first attempt failed", || async {
        hook.got().len() == 1
    })
    .await;
    wait_for("the failure recorded", || async {
        let notes = app.state.store.notifications_of(&flag.id).await.unwrap();
        notes[0].2 == 1 && notes[0].3.is_none()
    })
    .await;
    let notes = app.state.store.notifications_of(&flag.id).await.unwrap();
    assert_eq!(notes[0].4.as_deref(), Some("the webhook answered 500"));
    assert!(!notes[0].4.as_deref().unwrap().contains("receiver-token"));
    // Then it is retried after its back-off, and goes.
    wait_for("the retry", || async { hook.got().len() == 2 }).await;
    wait_for("the notification recorded as sent", || async {
        app.state.store.notifications_of(&flag.id).await.unwrap()[0]
            .3
            .is_some()
    })
    .await;
    for (headers, body) in hook.got() {
        let ts: i64 = header(&headers, "x-classchat-timestamp").parse().unwrap();
        let want =
            classchat_server::alerts::webhook_signature(WEBHOOK_SECRET.as_bytes(), ts, &body);
        assert_eq!(header(&headers, "x-classchat-signature"), want);
        // A body changed on the way does not verify.
        let mut forged = body.to_vec();
        forged[0] = b' ';
        assert_ne!(
            classchat_server::alerts::webhook_signature(WEBHOOK_SECRET.as_bytes(), ts, &forged),
            want
        );
        assert_eq!(header(&headers, "x-classchat-event"), "safety_flag");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["flag_id"], json!(flag.id));
        assert_eq!(v["category"], "abuse");
        assert_eq!(v["source"], "phrase");
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("hits me") && !text.contains("Mei"), "{text}");
    }
    // Both posts were the same delivery (a receiver can drop the repeat).
    let got = hook.got();
    assert_eq!(
        header(&got[0].0, "x-classchat-delivery"),
        header(&got[1].0, "x-classchat-delivery")
    );
}

#[tokio::test]
async fn an_alert_pending_when_the_server_stops_is_sent_after_it_starts_again() {
    let port = free_port();
    let opts = watched()
        .with(mail(
            &format!("smtp://127.0.0.1:{port}?tls=none"),
            Some("counsellor@school.example"),
        ))
        .with(|s| s.admin = admin_password(crate::admin::PASSWORD));
    let app = spawn_app_with(opts.clone()).await;
    let token = app.sign_in().await.token;
    chat(&app, &token, "I want to end my life").await;
    let flag = wait_for_flags(&app, 1).await.remove(0);
    // No mail server yet: the email fails and waits.
    wait_for("a failed attempt", || async {
        let notes = app.state.store.notifications_of(&flag.id).await.unwrap();
        notes[0].2 >= 1 && notes[0].3.is_none()
    })
    .await;
    // The dashboard shows it pending.
    let t = crate::admin::sign_in_teacher(&app).await;
    let page = app.page_as("/admin/alerts", &t.cookie).await;
    assert!(page.contains("1 pending"), "{page}");
    let detail = app
        .page_as(&format!("/admin/alerts/{}", flag.id), &t.cookie)
        .await;
    assert!(detail.contains("counsellor@school.example") && detail.contains("pending"));
    let dir = app.dir();
    app.stop().await;

    let smtp = SmtpServer::start_on(port).await;
    let again = spawn_app_with(Opts {
        dir: Some(dir),
        ..opts
    })
    .await;
    let mails = smtp.wait_for_messages(1).await;
    assert!(mails[0].0.contains("counsellor@school.example"));
    wait_for("recorded as sent after the restart", || async {
        again.state.store.notifications_of(&flag.id).await.unwrap()[0]
            .3
            .is_some()
    })
    .await;
}

// The admin API, with classes made in the store.

/// A class (owned by the token's teacher) with one activity, its messages checked:
/// (class id, the activity's code).
async fn watched_class(app: &TestApp, token: &str, title: &str) -> (String, String) {
    let (s, class) = api(
        app,
        Method::POST,
        "/api/v1/admin/classes",
        token,
        Some(json!({"title": title})),
    )
    .await;
    assert_eq!(s, 201, "{class}");
    let id = class["id"].as_str().unwrap().to_owned();
    let (s, v) = api(
        app,
        Method::PATCH,
        &format!("/api/v1/admin/classes/{id}"),
        token,
        Some(json!({"visibility": "flagged"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, act) = api(
        app,
        Method::POST,
        &format!("/api/v1/admin/classes/{id}/activities"),
        token,
        Some(json!({"title": "Homework"})),
    )
    .await;
    assert_eq!(s, 201, "{act}");
    (id, act["code"].as_str().unwrap().to_owned())
}

async fn student_token(app: &TestApp, code: &str) -> String {
    let r = app
        .post_session(json!({"access_code": code, "display_name": "Kai"}))
        .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn safety_contacts_see_and_dismiss_their_class_alerts_and_a_member_of_another_class_gets_nothing()
 {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(watched().with(mail(&smtp.url(), None))).await;
    let admin = admin_token(&app).await;
    let (lin_id, lin) = teacher(&app, &admin, "lin@school.example").await;
    let (chen_id, chen) = teacher(&app, &admin, "chen@school.example").await;
    let (wu_id, wu) = teacher(&app, &admin, "wu@school.example").await;
    let (bio, bio_code) = watched_class(&app, &lin, "Biology 7A").await;
    let (_art, _) = watched_class(&app, &wu, "Art 8B").await;
    // Chen co-teaches Biology; Wu owns Art only.
    let (s, _) = api(
        &app,
        Method::PUT,
        &format!("/api/v1/admin/classes/{bio}/members/{chen_id}"),
        &lin,
        Some(json!({"role": "co_teacher"})),
    )
    .await;
    assert_eq!(s, 204);

    // Only the owner names contacts, and only members.
    let path = format!("/api/v1/admin/classes/{bio}/safety");
    let (s, e) = api(
        &app,
        Method::PUT,
        &path,
        &chen,
        Some(json!({"contacts": [chen_id]})),
    )
    .await;
    assert_eq!(s, 403, "{e}");
    let (s, e) = api(
        &app,
        Method::PUT,
        &path,
        &lin,
        Some(json!({"contacts": [lin_id, wu_id]})),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a member")
    );
    let (s, v) = api(&app, Method::GET, &path, &lin, None).await;
    assert_eq!(
        (s, v["contacts"].as_array().unwrap().len()),
        (200, 0),
        "nothing changed"
    );
    let (s, v) = api(
        &app,
        Method::PUT,
        &path,
        &lin,
        Some(json!({"contacts": [lin_id], "help": "School counsellor: room 204\n1925 安心專線"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["contacts"][0]["email"], "lin@school.example");
    // Another class's owner cannot even see Biology's settings.
    let (s, _) = api(&app, Method::GET, &path, &wu, None).await;
    assert_eq!(s, 404);

    let student = student_token(&app, &bio_code).await;
    let events = chat(&app, &student, "I keep thinking about suicide").await;
    // The class's own help resources.
    assert!(
        events.iter().any(
            |e| matches!(e, classchat_shared::ChatEvent::Help { text } if text.contains("room 204"))
        ),
        "{events:?}"
    );
    let mails = smtp.wait_for_messages(1).await;
    assert!(mails[0].0.contains("lin@school.example"), "{}", mails[0].0);
    // The student's name comes from the session row the usage log writes after the reply.
    app.usage_rows(1).await;

    let (s, list) = api(&app, Method::GET, "/api/v1/admin/alerts", &lin, None).await;
    assert_eq!(s, 200);
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    let alert = &list[0];
    assert_eq!(
        (
            alert["class_title"].as_str(),
            alert["category"].as_str(),
            alert["status"].as_str()
        ),
        (Some("Biology 7A"), Some("self_harm"), Some("open"))
    );
    assert_eq!(alert["student"], "Kai");
    assert!(
        !alert.to_string().contains("keep thinking"),
        "no message text: {alert}"
    );
    let id = alert["id"].as_str().unwrap().to_owned();

    // Not a contact (co-teacher Chen) or another class's owner (Wu): nothing, and 404.
    for other in [&chen, &wu] {
        let (s, l) = api(&app, Method::GET, "/api/v1/admin/alerts", other, None).await;
        assert_eq!((s, l), (200, json!([])));
        let (s, _) = api(
            &app,
            Method::GET,
            &format!("/api/v1/admin/alerts/{id}"),
            other,
            None,
        )
        .await;
        assert_eq!(s, 404);
        let (s, _) = api(
            &app,
            Method::POST,
            &format!("/api/v1/admin/alerts/{id}/dismiss"),
            other,
            None,
        )
        .await;
        assert_eq!(s, 404);
    }
    assert_eq!(smtp.messages().len(), 1, "one email, to the contact alone");

    let (s, opened) = api(
        &app,
        Method::GET,
        &format!("/api/v1/admin/alerts/{id}"),
        &lin,
        None,
    )
    .await;
    assert_eq!(s, 200);
    wait_for("sent", || async {
        api(
            &app,
            Method::GET,
            &format!("/api/v1/admin/alerts/{id}"),
            &lin,
            None,
        )
        .await
        .1["notifications"][0]["status"]
            == "sent"
    })
    .await;
    assert_eq!(
        opened["notifications"][0]["recipient"],
        "lin@school.example"
    );
    // Opened, the contact reads the flagged exchange; the opening is in the audit log.
    assert_eq!(
        opened["exchange"][0]["content"],
        "I keep thinking about suicide"
    );
    assert_eq!(opened["exchange"][0]["role"], "user");

    let (s, dismissed) = api(
        &app,
        Method::POST,
        &format!("/api/v1/admin/alerts/{id}/dismiss"),
        &lin,
        None,
    )
    .await;
    assert_eq!(s, 200, "{dismissed}");
    assert_eq!(
        (
            dismissed["status"].as_str(),
            dismissed["dismissed_by"].as_str()
        ),
        (Some("dismissed"), Some("lin@school.example"))
    );
    assert!(dismissed["dismissed_at_ms"].as_i64().is_some());
    let (s, _) = api(
        &app,
        Method::POST,
        &format!("/api/v1/admin/alerts/{id}/dismiss"),
        &lin,
        None,
    )
    .await;
    assert_eq!(s, 409);
    // A dismissed alert stays listed; the administrator sees every class's.
    let (_, list) = api(&app, Method::GET, "/api/v1/admin/alerts", &lin, None).await;
    assert_eq!(list[0]["status"], "dismissed");
    let (_, all) = api(
        &app,
        Method::GET,
        "/api/v1/admin/alerts?status=dismissed",
        &admin,
        None,
    )
    .await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    let (_, audit) = api(&app, Method::GET, "/api/v1/admin/audit", &admin, None).await;
    assert!(audit.to_string().contains("dismiss_alert"), "{audit}");
    assert!(audit.to_string().contains("open_alert"), "{audit}");
}

#[tokio::test]
async fn the_dashboard_lists_alerts_in_both_languages_and_dismisses_one_that_stays_listed() {
    let app =
        spawn_app_with(watched().with(|s| s.admin = admin_password(crate::admin::PASSWORD))).await;
    let token = app.sign_in().await.token;
    chat(&app, &token, "he said he will bring a knife to school").await;
    let flag = wait_for_flags(&app, 1).await.remove(0);
    app.usage_rows(1).await;
    let t = crate::admin::sign_in_teacher(&app).await;
    let en = app.page_as("/admin/alerts", &t.cookie).await;
    assert!(
        en.contains("Safety alerts") && en.contains("violence") && en.contains("Mei"),
        "{en}"
    );
    assert!(!en.contains("knife"), "no message text on the page");
    let zh = app.page_as("/admin/alerts?lang=zh-TW", &t.cookie).await;
    assert!(
        zh.contains("安全警示") && zh.contains("暴力") && zh.contains("lang=\"zh-TW\""),
        "{zh}"
    );
    let r = crate::admin::act(&app, &t, &format!("/admin/alerts/{}/dismiss", flag.id), &[]).await;
    assert_eq!(r.status(), 303);
    let after = app.page_as("/admin/alerts", &t.cookie).await;
    assert!(
        after.contains("Dismissed by") && after.contains("admin"),
        "{after}"
    );
    let f = app.state.store.flag(&flag.id).await.unwrap().unwrap();
    assert_eq!(f.dismissed_by.as_deref(), Some("admin"));
    // A form without its CSRF token changes nothing.
    let r = app
        .client
        .post(format!("{}/admin/alerts/{}/dismiss", app.address, flag.id))
        .header("cookie", &t.cookie)
        .form(&[("csrf", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// Always on PostgreSQL (a database of the shared throwaway cluster): two replicas, both
/// sending from one outbox, send each notification once.
#[tokio::test]
async fn two_replicas_send_each_alert_once() {
    let url = crate::pg_cluster::shared().create_database().await;
    let port = free_port();
    let opts = || {
        watched().with(database(&url)).with(mail(
            &format!("smtp://127.0.0.1:{port}?tls=none"),
            Some("counsellor@school.example"),
        ))
    };
    let a = spawn_app_with(opts()).await;
    let b = spawn_app_with(opts()).await;
    // The mail server is down at first: every notification fails once and comes due again
    // at about the same moment on both replicas, which then race to claim them.
    let mut tokens = Vec::new();
    for app in [&a, &b] {
        tokens.push((app, app.sign_in().await.token));
    }
    for (app, token) in &tokens {
        for i in 0..5 {
            chat(app, token, &format!("I want to die ({i})")).await;
        }
    }
    let flags = wait_for_flags(&a, 10).await;
    wait_for("every notification failed once", || async {
        let mut all = true;
        for f in &flags {
            let n = a.state.store.notifications_of(&f.id).await.unwrap();
            all &= n[0].2 >= 1;
        }
        all
    })
    .await;
    let smtp = SmtpServer::start_on(port).await;
    wait_for("every notification sent", || async {
        let mut all = true;
        for f in &flags {
            all &= a.state.store.notifications_of(&f.id).await.unwrap()[0]
                .3
                .is_some();
        }
        all
    })
    .await;
    let mails = smtp.wait_for_messages(10).await;
    let mut ids: Vec<String> = mails
        .iter()
        .map(|(_, body)| {
            body.split("/admin/alerts#")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!((mails.len(), ids.len()), (10, 10), "one email per flag");
}

/// Mail through `url` from classchat@school.example, also to `to` when given.
fn mail(url: &str, to: Option<&'static str>) -> impl Fn(&mut Settings) + Send + Sync + 'static {
    let url = url.to_owned();
    safety(move |c| {
        c.smtp_url = Some(url.clone().into());
        c.alert_email_from = Some("classchat@school.example".into());
        c.alert_email_to = to.map(Into::into);
    })
}
