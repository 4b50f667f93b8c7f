//! Who the teacher is: a signed session cookie after a password sign-in, or Cloudflare
//! Access's signed assertion. Also the CSRF tokens every dashboard form carries.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::PasswordCheck;

type HmacSha256 = Hmac<Sha256>;

/// Session cookie name.
pub const COOKIE: &str = "classchat_admin";
/// Pre-sign-in cookie the login form's CSRF token is bound to.
pub const LOGIN_COOKIE: &str = "classchat_admin_login";
/// How long a dashboard sign-in lasts.
pub const SESSION_AGE: Duration = Duration::from_secs(8 * 3600);

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Signs and checks cookies and CSRF tokens with a key derived from AUTH_SECRET, so the
/// widget's tokens and the dashboard's cookies can never stand in for each other.
#[derive(Clone)]
pub struct CookieKeys {
    key: [u8; 32],
}

impl std::fmt::Debug for CookieKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieKeys(..)")
    }
}

impl CookieKeys {
    pub fn new(auth_secret: &SecretString) -> Self {
        let mut mac = HmacSha256::new_from_slice(auth_secret.expose_secret().as_bytes())
            .expect("any key length");
        mac.update(b"classchat admin cookie v1");
        Self {
            key: mac.finalize().into_bytes().into(),
        }
    }

    fn mac(&self, parts: &[&str]) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("any key length");
        for p in parts {
            mac.update(p.as_bytes());
            mac.update(b"\0");
        }
        B64.encode(mac.finalize().into_bytes())
    }

    /// A new session cookie value: `nonce.expires.mac`.
    pub fn issue(&self, now: i64) -> String {
        let nonce = random_token();
        let exp = (now + SESSION_AGE.as_secs() as i64).to_string();
        let mac = self.mac(&["session", &nonce, &exp]);
        format!("{nonce}.{exp}.{mac}")
    }

    /// The session's nonce if the cookie is ours, intact and not expired.
    pub fn check(&self, value: &str, now: i64) -> Option<String> {
        let mut it = value.split('.');
        let (nonce, exp, mac) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || !eq(&self.mac(&["session", nonce, exp]), mac) {
            return None;
        }
        (exp.parse::<i64>().ok()? > now).then(|| nonce.to_owned())
    }

    /// The CSRF token for a signed-in teacher (bound to the session nonce or the email).
    pub fn csrf(&self, binding: &str) -> String {
        self.mac(&["csrf", binding])
    }

    pub fn csrf_ok(&self, binding: &str, token: &str) -> bool {
        eq(&self.csrf(binding), token)
    }
}

fn eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// 128 random bits, URL-safe.
pub fn random_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    B64.encode(b)
}

/// Checks a password against the configured one (argon2 verification is deliberately slow;
/// sign-in attempts are rate-limited before this runs).
pub fn password_ok(check: &PasswordCheck, given: &str) -> bool {
    match check {
        PasswordCheck::Plain(p) => {
            // Compare digests so the time taken does not depend on the length.
            let d = |s: &str| {
                let mut m = HmacSha256::new_from_slice(b"classchat password compare")
                    .expect("any key length");
                m.update(s.as_bytes());
                m.finalize().into_bytes()
            };
            bool::from(d(p.expose_secret()).ct_eq(&d(given)))
        }
        PasswordCheck::Argon2(hash) => {
            use argon2::PasswordVerifier;
            argon2::PasswordHash::new(hash)
                .map(|h| {
                    argon2::Argon2::default()
                        .verify_password(given.as_bytes(), &h)
                        .is_ok()
                })
                .unwrap_or(false)
        }
    }
}

/// An argon2 hash for ADMIN_PASSWORD_HASH.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// A cookie value from a `Cookie` header.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_verify_and_resist_tampering_and_age() {
        let k = CookieKeys::new(&SecretString::from("x".repeat(40)));
        let c = k.issue(1000);
        let nonce = k.check(&c, 1001).unwrap();
        assert_eq!(
            k.check(&c, 1000 + SESSION_AGE.as_secs() as i64),
            None,
            "expired"
        );
        let mut tampered = c.clone();
        tampered.replace_range(0..1, if c.starts_with('A') { "B" } else { "A" });
        assert_eq!(k.check(&tampered, 1001), None);
        let other = CookieKeys::new(&SecretString::from("y".repeat(40)));
        assert_eq!(other.check(&c, 1001), None, "another secret");
        assert!(k.csrf_ok(&nonce, &k.csrf(&nonce)));
        assert!(!k.csrf_ok(&nonce, &k.csrf("someone else")));
    }

    #[test]
    fn passwords_check_plain_and_argon2() {
        let plain = PasswordCheck::Plain(SecretString::from("correct horse battery"));
        assert!(password_ok(&plain, "correct horse battery"));
        assert!(!password_ok(&plain, "correct horse"));
        let hashed = PasswordCheck::Argon2(hash_password("staple-it-now").unwrap());
        assert!(password_ok(&hashed, "staple-it-now"));
        assert!(!password_ok(&hashed, "staple-it-later"));
    }
}
