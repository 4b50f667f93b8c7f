//! The dashboard behind Cloudflare Access, end to end through the real server: an RSA key
//! pair made here, its JWKS served from a loopback port, and Access's header on requests.
//! (Every refusal case of the verifier is tested in `admin::cf_access`.)

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use classchat_server::config::AdminSettings;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::json;

use crate::helpers::*;

const TEAM: &str = "myschool.cloudflareaccess.com";
pub(crate) const AUD: &str = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";

/// The app with its dashboard behind Cloudflare Access for `admin_emails`: a key pair made
/// here, its JWKS served from a loopback port, and assertions signed with it.
pub(crate) struct Access {
    pub(crate) app: TestApp,
    key: jsonwebtoken::EncodingKey,
}

impl Access {
    pub(crate) async fn spawn(admin_emails: &str) -> Self {
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let public = rsa::RsaPublicKey::from(&private);
        let jwks = json!({"keys": [{"kid": "k1", "kty": "RSA", "alg": "RS256", "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()), "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be())}]});
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let certs = format!(
            "http://{}/cdn-cgi/access/certs",
            listener.local_addr().unwrap()
        );
        let app_jwks = axum::Router::new().route(
            "/cdn-cgi/access/certs",
            axum::routing::get(move || {
                let j = jwks.clone();
                async move { axum::Json(j) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app_jwks).await.unwrap() });
        // ADMIN_EMAILS as the configuration holds them: ASCII lower-cased (config's tests).
        let emails = vec![admin_emails.to_ascii_lowercase()];
        let app = spawn_app_with(Opts::default().with(move |s| {
            s.admin = AdminSettings::CfAccess {
                team_domain: TEAM.into(),
                aud: AUD.into(),
                certs_url: certs.clone(),
                emails: emails.clone(),
            };
        }))
        .await;
        let key =
            jsonwebtoken::EncodingKey::from_rsa_der(private.to_pkcs1_der().unwrap().as_bytes());
        Self { app, key }
    }

    /// An Access assertion for `email`, made out to `aud`.
    pub(crate) fn assertion(&self, email: &str, aud: &str) -> String {
        let now = classchat_server::basics::now_secs();
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        h.kid = Some("k1".into());
        let claims = json!({"aud": [aud], "email": email, "exp": now + 300, "iat": now, "nbf": now,
            "iss": format!("https://{TEAM}"), "sub": "u1", "type": "app"});
        jsonwebtoken::encode(&h, &claims, &self.key).unwrap()
    }
}

#[tokio::test]
async fn the_dashboard_trusts_a_valid_access_assertion_and_nothing_else() {
    let access = Access::spawn("teacher@school.example").await;
    let app = &access.app;
    let sign = |email: &str, aud: &str| access.assertion(email, aud);
    let get = |assertion: Option<String>| {
        let mut r = app.client.get(format!("{}/admin", app.address));
        if let Some(a) = assertion {
            r = r.header("cf-access-jwt-assertion", a);
        }
        r.send()
    };
    let ok = get(Some(sign("Teacher@school.example", AUD)))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let html = ok.text().await.unwrap();
    assert!(html.contains("teacher@school.example") && html.contains("admin-class-row"));

    let missing = get(None).await.unwrap();
    assert_eq!(missing.status(), 401);
    assert!(
        missing
            .text()
            .await
            .unwrap()
            .contains("did not come through")
    );
    let wrong_aud = get(Some(sign("teacher@school.example", &"0".repeat(64))))
        .await
        .unwrap();
    assert_eq!(wrong_aud.status(), 401);
    assert!(
        wrong_aud.text().await.unwrap().contains("4714c135"),
        "names the expected AUD prefix"
    );
    let stranger = get(Some(sign("someone@else.example", AUD))).await.unwrap();
    assert_eq!(stranger.status(), 403);
    // A widget token is not an Access assertion.
    let student = app.sign_in().await;
    let r = get(Some(student.token.clone())).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(app.logs().contains("who is not in the admin email list"));
}
