//! Cloudflare Access in front of the admin pages: checks the `Cf-Access-Jwt-Assertion` header
//! Access adds to every request it lets through, so the dashboard trusts only people Access
//! signed in *and* the configured admin list names, even if the origin is reachable directly.
//!
//! The assertion is an RS256 JWT signed with the team's keys, published as a JWKS at
//! `https://<team domain>/cdn-cgi/access/certs`. The keys rotate: [`crate::jwks`] fetches them
//! lazily, caches them by `kid`, and fetches again when a token names a key we have not seen.

use std::collections::HashSet;
use std::fmt;

use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use crate::jwks::{HeaderProblem, KeyError, KeySetCache, clip, decode_segment, header_alg};

/// Forgiven clock skew on `exp` and `nbf`. Access tokens live as long as the Access session
/// (hours), so a minute of slack between our clock and Cloudflare's weakens nothing and
/// matches what Cloudflare's own examples allow.
const LEEWAY_SECS: u64 = 60;

/// Verifies Cloudflare Access assertions for one Access application.
pub struct CfAccess {
    /// `https://<team domain>`: the exact `iss` Access puts in its tokens.
    issuer: String,
    /// The application's AUD tag; tokens for other applications of the same team carry theirs.
    aud: String,
    /// Lower-cased.
    admin_emails: HashSet<String>,
    validation: Validation,
    /// The team's keys, by `kid`.
    keys: KeySetCache,
}

impl fmt::Debug for CfAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CfAccess")
            .field("issuer", &self.issuer)
            .field("certs_url", &self.keys.url())
            .field("admin_emails", &self.admin_emails.len())
            .finish_non_exhaustive()
    }
}

impl CfAccess {
    /// `team_domain` is e.g. `myschool.cloudflareaccess.com` (a leading `https://` or trailing
    /// `/` is tolerated); `aud` is the application's AUD tag. `certs_url`: normally
    /// `format!("https://{team_domain}/cdn-cgi/access/certs")`; tests pass a loopback URL.
    /// `admin_emails` are compared after ASCII lower-casing; blank entries are ignored, and
    /// entries with non-ASCII characters never match (the configuration refuses them).
    pub fn new(
        team_domain: &str,
        aud: &str,
        certs_url: String,
        admin_emails: Vec<String>,
        http: reqwest::Client,
    ) -> Self {
        let domain = team_domain.trim();
        let domain = domain.strip_prefix("https://").unwrap_or(domain);
        let issuer = format!(
            "https://{}",
            domain.trim_end_matches('/').to_ascii_lowercase()
        );
        let aud = aud.trim().to_owned();

        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&aud]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);

        let admin_emails = admin_emails
            .iter()
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty() && e.is_ascii())
            .collect();

        Self {
            issuer,
            aud,
            admin_emails,
            validation,
            keys: KeySetCache::new(certs_url, "Cloudflare Access", http),
        }
    }

    /// Verifies the header value (None = header missing). Ok: the allowed email, lower-cased.
    ///
    /// Only ASCII letters are lower-cased, and an email with any non-ASCII character is
    /// refused: Unicode case mapping turns look-alikes into ASCII (the Kelvin sign `K` into
    /// `k`), so a differently-spelt account could otherwise pass for a listed admin.
    pub async fn verify(&self, assertion: Option<&str>) -> Result<String, CfAccessError> {
        let token = assertion
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(CfAccessError::Missing)?;
        // The algorithm is checked before any key is looked up: `alg: none` and HS256 signed
        // with the public key as an HMAC secret must never reach a verifier.
        let kid = rs256_kid(token)?;
        let key = self.keys.key_for(&kid).await.map_err(|e| match e {
            KeyError::UnknownKey(kid) => CfAccessError::UnknownKey(kid),
            KeyError::Unreachable(reason) => CfAccessError::KeysUnreachable(reason),
        })?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation)
            .map_err(|e| self.map_jwt_error(&e, token))?;

        let email = data.claims.email.unwrap_or_default();
        let email = email.trim();
        if !email.is_ascii() {
            return Err(CfAccessError::EmailNotAscii(clip(email)));
        }
        let email = email.to_ascii_lowercase();
        if !email.is_empty() && self.admin_emails.contains(&email) {
            Ok(email)
        } else {
            Err(CfAccessError::EmailNotAllowed(email))
        }
    }

    /// jsonwebtoken's verdict, one variant per thing the teacher could fix or the person could
    /// retry. Only reached for RS256 tokens whose `kid` we hold.
    fn map_jwt_error(&self, error: &JwtError, token: &str) -> CfAccessError {
        match error.kind() {
            ErrorKind::InvalidSignature => CfAccessError::BadSignature,
            ErrorKind::ExpiredSignature => CfAccessError::Expired,
            ErrorKind::ImmatureSignature => CfAccessError::NotYetValid,
            // The signature was good (claims are checked after it), so the `iss` is Cloudflare's.
            ErrorKind::InvalidIssuer => CfAccessError::WrongIssuer(issuer_of(token)),
            ErrorKind::InvalidAudience => self.wrong_audience(),
            ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => {
                CfAccessError::WrongIssuer(String::new())
            }
            ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => self.wrong_audience(),
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                CfAccessError::WrongAlgorithm(clip(&header_alg(token).unwrap_or_default()))
            }
            // Bad shape, base64 or JSON, a missing `exp`, claims of the wrong type.
            _ => CfAccessError::Malformed,
        }
    }

    fn wrong_audience(&self) -> CfAccessError {
        CfAccessError::WrongAudience {
            expected_prefix: self.aud.chars().take(8).collect(),
        }
    }
}

/// Why an admin request was not let in. Texts name no token, only public facts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CfAccessError {
    /// No `Cf-Access-Jwt-Assertion` header.
    #[error("no Cf-Access-Jwt-Assertion header")]
    Missing,
    /// Not a JWT, no `kid`, or claims that do not parse.
    #[error("malformed Cloudflare Access token")]
    Malformed,
    /// Signed with something other than RS256 (the token's `alg`, shortened).
    #[error("token algorithm {0:?} is not RS256")]
    WrongAlgorithm(String),
    /// The `kid` is not in the team's key set, even after a refetch.
    #[error("token signed with unknown key {0:?}")]
    UnknownKey(String),
    /// The signature does not verify with the team's key of that `kid`.
    #[error("token signature does not verify")]
    BadSignature,
    /// `exp` is more than the leeway in the past.
    #[error("token expired")]
    Expired,
    /// `nbf` is more than the leeway in the future.
    #[error("token not valid yet")]
    NotYetValid,
    /// `iss` is not this team (the token's issuer; empty if it had none).
    #[error("token issued by {0:?}")]
    WrongIssuer(String),
    /// `aud` lacks this application's AUD tag.
    #[error("token audience lacks the AUD tag {expected_prefix}…")]
    WrongAudience {
        /// The first 8 characters of the configured AUD tag.
        expected_prefix: String,
    },
    /// The key set could not be fetched (why, for the log).
    #[error("Cloudflare Access keys unreachable: {0}")]
    KeysUnreachable(String),
    /// A valid token for an address not in the admin list (empty if it carried none).
    #[error("{0:?} is not an admin email")]
    EmailNotAllowed(String),
    /// A valid token whose email has non-ASCII characters (shortened): never an admin, as
    /// admin emails are ASCII and compared without Unicode case mapping.
    #[error("{0:?} is not an ASCII email")]
    EmailNotAscii(String),
}

impl CfAccessError {
    /// 401 for token problems, 403 for an email not allowed, 503 for KeysUnreachable.
    pub fn status(&self) -> u16 {
        match self {
            Self::EmailNotAllowed(_) | Self::EmailNotAscii(_) => 403,
            Self::KeysUnreachable(_) => 503,
            _ => 401,
        }
    }

    /// A sentence for the person at the browser (plain text: escape it for HTML).
    pub fn page_text(&self) -> String {
        match self {
            Self::Missing => "This page is only available through Cloudflare Access, and this \
                request did not come through it."
                .to_owned(),
            Self::Malformed | Self::WrongAlgorithm(_) | Self::BadSignature => {
                "The Cloudflare Access sign-in on this request is not valid. Reload the page to \
                 sign in again."
                    .to_owned()
            }
            Self::UnknownKey(_) => "The Cloudflare Access sign-in on this request was signed \
                with a key this server does not know. Reload the page to sign in again."
                .to_owned(),
            Self::Expired => {
                "Your Cloudflare Access sign-in has expired. Reload the page to sign in again."
                    .to_owned()
            }
            Self::NotYetValid => "Your Cloudflare Access sign-in is not valid yet; this \
                server's clock may be wrong. Try again in a minute."
                .to_owned(),
            Self::WrongIssuer(_) => "This Cloudflare Access sign-in was issued by a different \
                Cloudflare team than the one this server trusts."
                .to_owned(),
            Self::WrongAudience { expected_prefix } => format!(
                "This Cloudflare Access sign-in is for a different Access application; this \
                 server expects the one whose AUD tag starts with {expected_prefix}."
            ),
            Self::KeysUnreachable(_) => "This server could not fetch Cloudflare Access's signing \
                keys to check your sign-in. Try again in a minute."
                .to_owned(),
            Self::EmailNotAllowed(email) if email.is_empty() => "Cloudflare Access let this \
                request in without an email address, and only listed admins may use these pages."
                .to_owned(),
            Self::EmailNotAllowed(email) => format!(
                "You are signed in to Cloudflare Access as {email}, which is not one of this \
                 server's admins."
            ),
            Self::EmailNotAscii(email) => format!(
                "You are signed in to Cloudflare Access as {email}, which has characters \
                 outside plain ASCII; this server's admins sign in with plain ASCII addresses."
            ),
        }
    }

    /// A sentence for the teacher's log.
    pub fn log_line(&self) -> String {
        match self {
            Self::Missing => "Admin request without a Cf-Access-Jwt-Assertion header: it did not \
                come through Cloudflare Access (is the server reachable around the tunnel?)."
                .to_owned(),
            Self::Malformed => "Admin request with a Cf-Access-Jwt-Assertion that is not a \
                well-formed Access token (bad JWT, no kid, or claims of the wrong type)."
                .to_owned(),
            Self::WrongAlgorithm(alg) => format!(
                "Admin request with a Cf-Access-Jwt-Assertion using algorithm {alg:?}; \
                 Cloudflare Access signs with RS256 only, so it did not issue this."
            ),
            Self::UnknownKey(kid) => format!(
                "Admin request with a Cf-Access-Jwt-Assertion signed by key {kid:?}, which the \
                 team's key set does not contain (keys are refetched at most once a minute)."
            ),
            Self::BadSignature => "Admin request with a Cf-Access-Jwt-Assertion whose signature \
                does not verify with the team's key: forged or altered."
                .to_owned(),
            Self::Expired => format!(
                "Admin request with an expired Cf-Access-Jwt-Assertion (beyond {LEEWAY_SECS} s \
                 of leeway); the person must sign in to Cloudflare Access again."
            ),
            Self::NotYetValid => format!(
                "Admin request with a Cf-Access-Jwt-Assertion not valid for more than \
                 {LEEWAY_SECS} s yet: this server's clock is probably behind (check NTP)."
            ),
            Self::WrongIssuer(iss) if iss.is_empty() => "Admin request with a \
                Cf-Access-Jwt-Assertion that names no issuer."
                .to_owned(),
            Self::WrongIssuer(iss) => format!(
                "Admin request with a Cf-Access-Jwt-Assertion issued by {iss:?}, not by the \
                 configured team domain: check the team domain setting."
            ),
            Self::WrongAudience { expected_prefix } => format!(
                "Admin request with a Cf-Access-Jwt-Assertion for another Access application: \
                 its aud lacks the configured AUD tag {expected_prefix}…; check that the AUD \
                 setting is the tag of the application protecting this host."
            ),
            Self::KeysUnreachable(reason) => {
                format!("Could not fetch the Cloudflare Access signing keys: {reason}.")
            }
            Self::EmailNotAllowed(email) if email.is_empty() => "Cloudflare Access let in a \
                request without an email (a service token?); only listed admin emails may use \
                the dashboard."
                .to_owned(),
            Self::EmailNotAllowed(email) => {
                format!("Cloudflare Access let in {email}, who is not in the admin email list.")
            }
            Self::EmailNotAscii(email) => format!(
                "Cloudflare Access let in {email:?}, an email with non-ASCII characters: refused \
                 without comparing, as admin emails are ASCII and matched by ASCII case only."
            ),
        }
    }
}

/// The claims we use; jsonwebtoken checks `exp`, `nbf`, `iss` and `aud` itself.
#[derive(Deserialize)]
struct AccessClaims {
    #[serde(default)]
    email: Option<String>,
}

/// The `kid` of a token whose header says RS256.
fn rs256_kid(token: &str) -> Result<String, CfAccessError> {
    crate::jwks::rs256_kid(token).map_err(|p| match p {
        HeaderProblem::WrongAlgorithm(alg) => CfAccessError::WrongAlgorithm(alg),
        HeaderProblem::Malformed | HeaderProblem::NoKid => CfAccessError::Malformed,
    })
}

/// The token's `iss`, for the log; only called once the signature has verified.
fn issuer_of(token: &str) -> String {
    #[derive(Deserialize)]
    struct Iss {
        iss: Option<serde_json::Value>,
    }
    match decode_segment::<Iss>(token, 1).and_then(|c| c.iss) {
        Some(serde_json::Value::String(iss)) => clip(&iss),
        Some(other) => clip(&other.to_string()),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, OnceLock};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use axum::Json;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
    use rsa::traits::PublicKeyParts;
    use rsa::{RsaPrivateKey, RsaPublicKey};
    use serde_json::{Value, json};

    use super::*;

    const TEAM: &str = "myschool.cloudflareaccess.com";
    const ISS: &str = "https://myschool.cloudflareaccess.com";
    const AUD: &str = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";
    const ADMIN: &str = "Teacher@School.example";

    /// An RSA key pair in the forms the tests need.
    struct TestKey {
        /// PKCS#1 DER private key, for signing.
        private_der: Vec<u8>,
        /// PKCS#1 DER public key: the "secret" of the HS256 confusion attack.
        public_der: Vec<u8>,
        n: String,
        e: String,
    }

    impl TestKey {
        fn generate() -> Self {
            let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("keygen");
            let public = RsaPublicKey::from(&private);
            Self {
                private_der: private.to_pkcs1_der().expect("der").as_bytes().to_vec(),
                public_der: public.to_pkcs1_der().expect("der").as_bytes().to_vec(),
                n: URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
                e: URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            }
        }

        /// This key as a JWKS entry, the way Cloudflare publishes it.
        fn jwk(&self, kid: &str) -> Value {
            json!({ "kid": kid, "kty": "RSA", "alg": "RS256", "use": "sig", "e": self.e, "n": self.n })
        }

        fn sign(&self, kid: &str, claims: &Value) -> String {
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some(kid.to_owned());
            encode(
                &header,
                claims,
                &EncodingKey::from_rsa_der(&self.private_der),
            )
            .expect("sign")
        }
    }

    /// The team's key. Generated once per test binary: 2048-bit keygen is the slow part.
    fn team_key() -> &'static TestKey {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(TestKey::generate)
    }

    /// Another key: the rotated-in key, or a forger's.
    fn other_key() -> &'static TestKey {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(TestKey::generate)
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    }

    /// The claims of a good Access token for `ADMIN`.
    fn claims() -> Value {
        let now = now();
        json!({
            "aud": [AUD], "email": ADMIN, "exp": now + 3600, "iat": now, "nbf": now,
            "iss": ISS, "type": "app", "identity_nonce": "6ei69kawdKzMIAPF",
            "sub": "7335d417-61da-459d-899c-0a01c76a2f94", "country": "US",
        })
    }

    fn with(mut claims: Value, field: &str, value: Value) -> Value {
        claims[field] = value;
        claims
    }

    /// A token with a hand-made header, for algorithms jsonwebtoken will not sign with.
    fn hand_made(header: &Value, signature: &str) -> String {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"));
        format!("{}.{}.{signature}", part(header), part(&claims()))
    }

    /// A stand-in for `https://<team>/cdn-cgi/access/certs`.
    struct Certs {
        url: String,
        keys: Arc<std::sync::Mutex<Vec<Value>>>,
        /// When set, the endpoint answers 500.
        broken: Arc<std::sync::atomic::AtomicBool>,
        fetches: Arc<AtomicUsize>,
    }

    #[derive(Clone)]
    struct CertsState {
        keys: Arc<std::sync::Mutex<Vec<Value>>>,
        broken: Arc<std::sync::atomic::AtomicBool>,
        fetches: Arc<AtomicUsize>,
    }

    async fn serve_certs(State(state): State<CertsState>) -> Response {
        state.fetches.fetch_add(1, Ordering::SeqCst);
        if state.broken.load(Ordering::SeqCst) {
            return (StatusCode::INTERNAL_SERVER_ERROR, "error code: 500").into_response();
        }
        let keys = state.keys.lock().expect("lock").clone();
        Json(json!({
            "keys": keys,
            "public_cert": { "kid": "k1", "cert": "-----BEGIN CERTIFICATE-----\n..." },
            "public_certs": [{ "kid": "k1", "cert": "-----BEGIN CERTIFICATE-----\n..." }],
        }))
        .into_response()
    }

    impl Certs {
        async fn spawn(keys: Vec<Value>) -> Self {
            let state = CertsState {
                keys: Arc::new(std::sync::Mutex::new(keys)),
                broken: Arc::default(),
                fetches: Arc::default(),
            };
            let app = axum::Router::new()
                .route("/cdn-cgi/access/certs", axum::routing::get(serve_certs))
                .route(
                    "/not-json",
                    axum::routing::get(|| async { "<html>login</html>" }),
                )
                .with_state(state.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move { axum::serve(listener, app).await });
            Self {
                url: format!("http://{addr}/cdn-cgi/access/certs"),
                keys: state.keys,
                broken: state.broken,
                fetches: state.fetches,
            }
        }

        fn fetches(&self) -> usize {
            self.fetches.load(Ordering::SeqCst)
        }

        fn publish(&self, keys: Vec<Value>) {
            *self.keys.lock().expect("lock") = keys;
        }

        fn access(&self) -> CfAccess {
            access_at(self.url.clone())
        }
    }

    fn access_at(certs_url: String) -> CfAccess {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        CfAccess::new(
            TEAM,
            AUD,
            certs_url,
            vec![ADMIN.to_owned(), " ".to_owned()],
            http,
        )
    }

    /// The team's key published as `k1`.
    async fn team_certs() -> Certs {
        Certs::spawn(vec![team_key().jwk("k1")]).await
    }

    #[tokio::test]
    async fn old_keys_are_refreshed_so_a_withdrawn_key_stops_working() {
        let certs = team_certs().await;
        let mut access = certs.access();
        access.keys.max_key_age = Duration::ZERO;
        let token = team_key().sign("k1", &claims());
        assert!(access.verify(Some(&token)).await.is_ok());
        // Cloudflare withdraws k1 and publishes another key; no new kid ever arrives.
        certs.publish(vec![other_key().jwk("k2")]);
        assert_eq!(
            access.verify(Some(&token)).await,
            Err(CfAccessError::UnknownKey("k1".into()))
        );
        assert_eq!(certs.fetches(), 2, "the old cache was refreshed once");
    }

    #[tokio::test]
    async fn old_keys_keep_working_while_cloudflare_is_unreachable() {
        let certs = team_certs().await;
        let mut access = certs.access();
        access.keys.max_key_age = Duration::ZERO;
        let token = team_key().sign("k1", &claims());
        assert!(access.verify(Some(&token)).await.is_ok());
        certs.broken.store(true, Ordering::SeqCst);
        assert!(
            access.verify(Some(&token)).await.is_ok(),
            "cached key still trusted"
        );
        assert!(
            access.verify(Some(&token)).await.is_ok(),
            "and throttled, not refetched"
        );
        assert_eq!(certs.fetches(), 2);
    }

    #[tokio::test]
    async fn valid_token_yields_the_lower_cased_email() {
        let certs = team_certs().await;
        let access = certs.access();
        let token = team_key().sign("k1", &claims());

        assert_eq!(
            access.verify(Some(&token)).await,
            Ok("teacher@school.example".to_owned())
        );
        assert_eq!(
            access.verify(Some(&token)).await,
            Ok("teacher@school.example".to_owned())
        );
        assert_eq!(
            certs.fetches(),
            1,
            "keys are fetched lazily, once, then cached"
        );
    }

    #[tokio::test]
    async fn missing_header_is_rejected_without_fetching_keys() {
        let certs = team_certs().await;
        let access = certs.access();

        for header in [None, Some(""), Some("  ")] {
            let err = access.verify(header).await.expect_err("no token");
            assert_eq!(err, CfAccessError::Missing);
            assert_eq!(err.status(), 401);
            assert!(
                err.page_text().contains("did not come through"),
                "{}",
                err.page_text()
            );
        }
        assert_eq!(certs.fetches(), 0);
    }

    #[tokio::test]
    async fn token_for_another_application_is_rejected_naming_the_aud_prefix() {
        let certs = team_certs().await;
        let access = certs.access();
        let other_app = "9b1d2a7c".repeat(8);

        for aud in [json!([other_app]), json!(other_app), json!([])] {
            let token = team_key().sign("k1", &with(claims(), "aud", aud));
            let err = access.verify(Some(&token)).await.expect_err("wrong aud");
            assert_eq!(
                err,
                CfAccessError::WrongAudience {
                    expected_prefix: "4714c135".to_owned()
                }
            );
            assert_eq!(err.status(), 401);
            assert!(err.page_text().contains("4714c135"), "{}", err.page_text());
            assert!(!err.page_text().contains(AUD) && !err.log_line().contains(AUD));
        }
        let mut no_aud = claims();
        no_aud.as_object_mut().expect("object").remove("aud");
        let err = access.verify(Some(&team_key().sign("k1", &no_aud))).await;
        assert_eq!(
            err,
            Err(CfAccessError::WrongAudience {
                expected_prefix: "4714c135".into()
            })
        );
    }

    #[tokio::test]
    async fn token_from_another_team_is_rejected() {
        let certs = team_certs().await;
        let access = certs.access();

        for iss in [
            "https://evil.cloudflareaccess.com",
            "https://myschool.cloudflareaccess.com/",
        ] {
            let token = team_key().sign("k1", &with(claims(), "iss", json!(iss)));
            let err = access.verify(Some(&token)).await.expect_err("wrong iss");
            assert_eq!(err, CfAccessError::WrongIssuer(iss.to_owned()));
            assert_eq!(err.status(), 401);
            assert!(err.log_line().contains(iss), "{}", err.log_line());
        }
    }

    #[tokio::test]
    async fn expired_token_is_rejected_beyond_the_leeway() {
        let certs = team_certs().await;
        let access = certs.access();

        let stale = team_key().sign("k1", &with(claims(), "exp", json!(now() - 120)));
        let err = access.verify(Some(&stale)).await.expect_err("expired");
        assert_eq!(err, CfAccessError::Expired);
        assert_eq!(err.status(), 401);

        let within_leeway = team_key().sign("k1", &with(claims(), "exp", json!(now() - 30)));
        assert!(access.verify(Some(&within_leeway)).await.is_ok());
    }

    #[tokio::test]
    async fn token_not_valid_yet_is_rejected_beyond_the_leeway() {
        let certs = team_certs().await;
        let access = certs.access();

        let early = team_key().sign("k1", &with(claims(), "nbf", json!(now() + 300)));
        let err = access
            .verify(Some(&early))
            .await
            .expect_err("not yet valid");
        assert_eq!(err, CfAccessError::NotYetValid);
        assert_eq!(err.status(), 401);

        let within_leeway = team_key().sign("k1", &with(claims(), "nbf", json!(now() + 30)));
        assert!(access.verify(Some(&within_leeway)).await.is_ok());
    }

    #[tokio::test]
    async fn tokens_not_signed_with_rs256_are_rejected_before_any_key_is_used() {
        let certs = team_certs().await;
        let access = certs.access();

        let unsigned = hand_made(&json!({ "alg": "none", "typ": "JWT", "kid": "k1" }), "");
        let es256 = hand_made(&json!({ "alg": "ES256", "kid": "k1" }), "c2ln");
        // The classic confusion attack: HMAC keyed with the (public) RSA key.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".to_owned());
        let confused = encode(
            &header,
            &claims(),
            &EncodingKey::from_secret(&team_key().public_der),
        )
        .expect("sign");
        let hs256 = encode(&header, &claims(), &EncodingKey::from_secret(b"secret")).expect("sign");

        for (token, alg) in [
            (&unsigned, "none"),
            (&es256, "ES256"),
            (&confused, "HS256"),
            (&hs256, "HS256"),
        ] {
            let err = access.verify(Some(token)).await.expect_err("wrong alg");
            assert_eq!(err, CfAccessError::WrongAlgorithm(alg.to_owned()));
            assert_eq!(err.status(), 401);
            assert!(
                !err.log_line().contains(token.as_str())
                    && !err.page_text().contains(token.as_str())
            );
        }
        assert_eq!(certs.fetches(), 0, "rejected on the header alone");
    }

    #[tokio::test]
    async fn malformed_tokens_are_rejected() {
        let certs = team_certs().await;
        let access = certs.access();

        let no_kid = encode(
            &Header::new(Algorithm::RS256),
            &claims(),
            &EncodingKey::from_rsa_der(&team_key().private_der),
        )
        .expect("sign");
        let mut no_exp = claims();
        no_exp.as_object_mut().expect("object").remove("exp");
        let no_exp = team_key().sign("k1", &no_exp);
        let numeric_email = team_key().sign("k1", &with(claims(), "email", json!(42)));

        for token in [
            no_kid.as_str(),
            "not-a-jwt",
            "a.b.c",
            "a.b",
            &no_exp,
            &numeric_email,
        ] {
            let err = access.verify(Some(token)).await.expect_err("malformed");
            assert_eq!(err, CfAccessError::Malformed, "{token}");
            assert_eq!(err.status(), 401);
        }
    }

    #[tokio::test]
    async fn token_signed_by_another_key_under_a_known_kid_is_rejected() {
        let certs = team_certs().await;
        let access = certs.access();

        let forged = other_key().sign("k1", &claims());
        let err = access.verify(Some(&forged)).await.expect_err("forged");
        assert_eq!(err, CfAccessError::BadSignature);
        assert_eq!(err.status(), 401);

        // A valid signature over altered claims fails the same way.
        let token = team_key().sign("k1", &claims());
        let mut parts: Vec<&str> = token.split('.').collect();
        let elevated = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&with(claims(), "email", json!("student@school.example")))
                .expect("json"),
        );
        parts[1] = &elevated;
        assert_eq!(
            access.verify(Some(&parts.join("."))).await,
            Err(CfAccessError::BadSignature)
        );
        assert_eq!(certs.fetches(), 1);
    }

    #[tokio::test]
    async fn rotated_in_key_is_accepted_after_one_refetch() {
        let certs = team_certs().await;
        let access = certs.access();
        let old = team_key().sign("k1", &claims());
        assert!(access.verify(Some(&old)).await.is_ok());
        assert_eq!(certs.fetches(), 1);

        certs.publish(vec![team_key().jwk("k1"), other_key().jwk("k2")]);
        let new = other_key().sign("k2", &claims());
        assert_eq!(
            access.verify(Some(&new)).await,
            Ok("teacher@school.example".to_owned())
        );
        assert_eq!(certs.fetches(), 2, "exactly one extra fetch");
        assert!(access.verify(Some(&new)).await.is_ok());
        assert!(access.verify(Some(&old)).await.is_ok());
        assert_eq!(certs.fetches(), 2);
    }

    #[tokio::test]
    async fn unknown_kids_trigger_at_most_one_refetch_a_minute() {
        let certs = team_certs().await;
        let access = certs.access();
        assert!(
            access
                .verify(Some(&team_key().sign("k1", &claims())))
                .await
                .is_ok()
        );

        let junk = team_key().sign("junk-1", &claims());
        let err = access.verify(Some(&junk)).await.expect_err("unknown kid");
        assert_eq!(err, CfAccessError::UnknownKey("junk-1".to_owned()));
        assert_eq!(err.status(), 401);
        assert_eq!(certs.fetches(), 2, "one refetch for the unknown kid");

        for kid in ["junk-2", "junk-3"] {
            let err = access.verify(Some(&team_key().sign(kid, &claims()))).await;
            assert_eq!(err, Err(CfAccessError::UnknownKey(kid.to_owned())));
        }
        assert_eq!(certs.fetches(), 2, "no second refetch within the minute");
        assert!(
            access
                .verify(Some(&team_key().sign("k1", &claims())))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn concurrent_first_requests_share_one_fetch() {
        let certs = team_certs().await;
        let access = Arc::new(certs.access());
        let token = team_key().sign("k1", &claims());

        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (access, token) = (access.clone(), token.clone());
                tokio::spawn(async move { access.verify(Some(&token)).await })
            })
            .collect();
        for task in tasks {
            assert!(task.await.expect("join").is_ok());
        }
        assert_eq!(certs.fetches(), 1);
    }

    #[tokio::test]
    async fn email_not_in_the_list_is_forbidden() {
        let certs = team_certs().await;
        let access = certs.access();

        let student = team_key().sign(
            "k1",
            &with(claims(), "email", json!("Student@School.example")),
        );
        let err = access
            .verify(Some(&student))
            .await
            .expect_err("not an admin");
        assert_eq!(
            err,
            CfAccessError::EmailNotAllowed("student@school.example".to_owned())
        );
        assert_eq!(err.status(), 403);
        assert!(
            err.page_text().contains("student@school.example"),
            "{}",
            err.page_text()
        );

        let mut service_token = claims();
        service_token
            .as_object_mut()
            .expect("object")
            .remove("email");
        let err = access
            .verify(Some(&team_key().sign("k1", &service_token)))
            .await;
        assert_eq!(err, Err(CfAccessError::EmailNotAllowed(String::new())));
        let empty = team_key().sign("k1", &with(claims(), "email", json!("")));
        assert_eq!(
            access.verify(Some(&empty)).await,
            Err(CfAccessError::EmailNotAllowed(String::new()))
        );
    }

    #[tokio::test]
    async fn emails_match_by_ascii_case_only_and_non_ascii_is_refused() {
        let certs = team_certs().await;
        let access = CfAccess::new(
            TEAM,
            AUD,
            certs.url.clone(),
            vec!["Kim@School.example".into(), "zoë@school.example".into()],
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
        );
        let as_email = |e: &str| team_key().sign("k1", &with(claims(), "email", json!(e)));
        assert_eq!(
            access.verify(Some(&as_email("KIM@school.EXAMPLE"))).await,
            Ok("kim@school.example".to_owned())
        );
        // U+212A KELVIN SIGN lower-cases to an ASCII `k` under Unicode rules.
        let kelvin = "\u{212a}im@school.example";
        assert_eq!(kelvin.to_lowercase(), "kim@school.example");
        let err = access
            .verify(Some(&as_email(kelvin)))
            .await
            .expect_err("look-alike");
        assert_eq!(err, CfAccessError::EmailNotAscii(kelvin.to_owned()));
        assert_eq!(err.status(), 403);
        // A non-ASCII entry in the list (the configuration refuses these) never matches.
        assert_eq!(
            access.verify(Some(&as_email("zoë@school.example"))).await,
            Err(CfAccessError::EmailNotAscii("zoë@school.example".into()))
        );
    }

    #[tokio::test]
    async fn unreachable_keys_are_a_503_and_throttled() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let access = access_at(format!("http://127.0.0.1:{port}/cdn-cgi/access/certs"));
        let token = team_key().sign("k1", &claims());

        let err = access.verify(Some(&token)).await.expect_err("no keys");
        let CfAccessError::KeysUnreachable(reason) = &err else {
            panic!("{err:?}")
        };
        assert!(reason.contains(&format!("127.0.0.1:{port}")), "{reason}");
        assert_eq!(err.status(), 503);
        assert!(err.log_line().contains(reason.as_str()));
        assert!(
            !err.page_text().contains(reason.as_str()),
            "no internals on the page"
        );
        // Within the minute the failure is remembered, not retried.
        assert_eq!(access.verify(Some(&token)).await, Err(err));
    }

    #[tokio::test]
    async fn bad_key_set_answers_are_unreachable_keys() {
        let certs = Certs::spawn(vec![]).await;
        let token = team_key().sign("k1", &claims());

        let err = certs
            .access()
            .verify(Some(&token))
            .await
            .expect_err("empty set");
        assert!(
            matches!(&err, CfAccessError::KeysUnreachable(r) if r.contains("no usable RS256 keys")),
            "{err:?}"
        );

        certs.broken.store(true, Ordering::SeqCst);
        let err = certs.access().verify(Some(&token)).await.expect_err("500");
        assert!(
            matches!(&err, CfAccessError::KeysUnreachable(r) if r.contains("HTTP 500")),
            "{err:?}"
        );

        let html = certs.url.replace("/cdn-cgi/access/certs", "/not-json");
        let err = access_at(html)
            .verify(Some(&token))
            .await
            .expect_err("not json");
        assert!(
            matches!(&err, CfAccessError::KeysUnreachable(r) if r.contains("JSON")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn cached_keys_keep_working_when_a_refetch_fails() {
        let certs = team_certs().await;
        let access = certs.access();
        let token = team_key().sign("k1", &claims());
        assert!(access.verify(Some(&token)).await.is_ok());

        certs.broken.store(true, Ordering::SeqCst);
        let err = access
            .verify(Some(&other_key().sign("k2", &claims())))
            .await;
        assert!(
            matches!(err, Err(CfAccessError::KeysUnreachable(_))),
            "{err:?}"
        );
        assert_eq!(
            access.verify(Some(&token)).await,
            Ok("teacher@school.example".to_owned())
        );
        assert_eq!(certs.fetches(), 2);
    }

    #[test]
    fn team_domain_is_normalised_into_the_issuer() {
        let http = reqwest::Client::new();
        for domain in [
            TEAM,
            "https://MySchool.cloudflareaccess.com/",
            " myschool.cloudflareaccess.com ",
        ] {
            let access = CfAccess::new(domain, AUD, String::new(), vec![], http.clone());
            assert_eq!(access.issuer, ISS);
        }
    }

    #[test]
    fn statuses_and_texts_fit_each_error() {
        let all = [
            CfAccessError::Missing,
            CfAccessError::Malformed,
            CfAccessError::WrongAlgorithm("HS256".into()),
            CfAccessError::UnknownKey("k9".into()),
            CfAccessError::BadSignature,
            CfAccessError::Expired,
            CfAccessError::NotYetValid,
            CfAccessError::WrongIssuer("https://x".into()),
            CfAccessError::WrongIssuer(String::new()),
            CfAccessError::WrongAudience {
                expected_prefix: "4714c135".into(),
            },
            CfAccessError::KeysUnreachable("boom".into()),
            CfAccessError::EmailNotAllowed("a@b.c".into()),
            CfAccessError::EmailNotAllowed(String::new()),
            CfAccessError::EmailNotAscii("\u{212a}im@school.example".into()),
        ];
        for err in &all {
            let expected = match err {
                CfAccessError::EmailNotAllowed(_) | CfAccessError::EmailNotAscii(_) => 403,
                CfAccessError::KeysUnreachable(_) => 503,
                _ => 401,
            };
            assert_eq!(err.status(), expected, "{err:?}");
            for text in [err.page_text(), err.log_line()] {
                assert!(text.ends_with('.') && text.len() > 30, "{err:?}: {text}");
            }
        }
        let unknown = CfAccessError::UnknownKey(clip(&"x".repeat(1000)));
        assert!(unknown.log_line().len() < 300);
        assert_eq!(clip("a\nb"), "a?b");
    }
}
