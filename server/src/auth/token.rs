//! Widget tokens: HS256 JWTs that let one session chat with one class, briefly.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::basics::{lock, now_secs};
use crate::error::TokenProblem;

/// `aud` of every widget token: they are good for the widget API and nothing else.
pub const AUDIENCE: &str = "classchat-widget";
/// `iss` of every widget token.
pub const ISSUER: &str = "classchat";
/// Clock skew forgiven on `exp`.
pub const LEEWAY_SECS: u64 = 30;

// A revoked session's last token verifies until its end plus the leeway: its revocation
// must be remembered at least that long.
const _: () = assert!(LEEWAY_SECS as i64 <= crate::store::REVOCATION_KEPT_AFTER_END);

/// What a widget token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Session id.
    pub sub: String,
    /// Class id.
    pub cls: String,
    /// Display name the student gave, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Fingerprint of the class's codes when the token was issued.
    pub cfp: String,
    /// Who the student is, when known: `code:<personal code id>` or `lti:<user digest>`
    /// (see `allowances`); their allowance follows this key across sessions. Absent for
    /// class-code students.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stu: Option<String>,
    /// When the session began (Unix seconds): refreshes stop at `sat + max age`.
    pub sat: i64,
    pub iat: i64,
    pub exp: i64,
    pub aud: String,
    pub iss: String,
}

/// One signing secret, ready to sign and verify.
pub struct Key {
    pub secret: SecretString,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    fn new(secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        Self {
            secret: secret.clone(),
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
        }
    }
}

/// The current key, which signs, and the previous one, which still verifies.
#[derive(Debug)]
pub struct TokenKeys {
    pub current: Key,
    pub previous: Option<Key>,
    validation: Validation,
    seen: Seen,
}

/// Tokens whose signature has been checked, with their claims: a student sends every
/// message with the same token, and the HMAC and two JSON decodes were a tenth of the
/// relay's time per chat. Keyed by the whole token, so only the same bytes hit; expiry
/// is checked again on every hit, and everything after the signature (revocation, class,
/// code rotation) is checked by the caller every time as before.
#[derive(Default)]
struct Seen(Mutex<HashMap<Box<str>, (Claims, bool)>>);

/// Entries kept at most; when full, the map is emptied (a burst of new tokens only costs
/// their first check again).
const SEEN_MAX: usize = 4096;

impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seen(..)")
    }
}

impl TokenKeys {
    pub fn new(current: &SecretString, previous: Option<&SecretString>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "aud", "iss"]);
        Self {
            current: Key::new(current),
            previous: previous.map(Key::new),
            validation,
            seen: Seen::default(),
        }
    }

    /// Signs with the current key.
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &self.current.encoding,
        )?)
    }

    /// Verifies with the current key, then the previous one. Returns the claims and the
    /// key that verified them (code fingerprints are keyed by it).
    pub fn verify(&self, token: &str) -> Result<(Claims, &Key), TokenProblem> {
        self.verify_at(token, now_secs())
    }

    fn verify_at(&self, token: &str, now: i64) -> Result<(Claims, &Key), TokenProblem> {
        let hit = lock(&self.seen.0).get(token).cloned();
        if let Some((claims, previous)) = hit {
            if claims.exp < now - LEEWAY_SECS as i64 {
                return Err(TokenProblem::Expired);
            }
            let key = match (previous, &self.previous) {
                (true, Some(p)) => p,
                _ => &self.current,
            };
            return Ok((claims, key));
        }
        let (claims, key) = self.verify_fresh(token)?;
        let previous = !std::ptr::eq(key, &self.current);
        let mut seen = lock(&self.seen.0);
        if seen.len() >= SEEN_MAX {
            seen.clear();
        }
        seen.insert(token.into(), (claims.clone(), previous));
        Ok((claims, key))
    }

    /// Checks the signature and claims without the cache of seen tokens: what a token's
    /// first use costs (the benchmark measures this).
    pub fn verify_fresh(&self, token: &str) -> Result<(Claims, &Key), TokenProblem> {
        let mut last = TokenProblem::Invalid;
        for key in std::iter::once(&self.current).chain(self.previous.as_ref()) {
            match jsonwebtoken::decode::<Claims>(token, &key.decoding, &self.validation) {
                Ok(data) => return Ok((data.claims, key)),
                Err(e) => match e.kind() {
                    ErrorKind::ExpiredSignature => return Err(TokenProblem::Expired),
                    ErrorKind::InvalidSignature => last = TokenProblem::Invalid,
                    _ => return Err(TokenProblem::Invalid),
                },
            }
        }
        Err(last)
    }
}

/// The lifetime of a new token: the class's or the default, cut at the session's end.
pub fn token_expiry(now: i64, session_start: i64, ttl: Duration, max_age: Duration) -> i64 {
    (now + ttl.as_secs() as i64).min(session_start + max_age.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&SecretString::from("a".repeat(40)), None)
    }

    fn claims(exp_in: i64) -> Claims {
        let now = now_secs();
        Claims {
            sub: "s1".into(),
            cls: "class-1".into(),
            name: None,
            cfp: "fp".into(),
            stu: None,
            sat: now,
            iat: now,
            exp: now + exp_in,
            aud: AUDIENCE.into(),
            iss: ISSUER.into(),
        }
    }

    #[test]
    fn round_trips() {
        let k = keys();
        let t = k.sign(&claims(60)).unwrap();
        assert_eq!(k.verify(&t).unwrap().0, claims(60));
    }

    #[test]
    fn expiry_respects_leeway() {
        let k = keys();
        assert!(
            k.verify(&k.sign(&claims(-10)).unwrap()).is_ok(),
            "inside leeway"
        );
        let t = k.sign(&claims(-(LEEWAY_SECS as i64) - 5)).unwrap();
        assert_eq!(k.verify(&t).unwrap_err(), TokenProblem::Expired);
    }

    #[test]
    fn a_seen_token_still_expires_and_a_changed_one_is_checked_afresh() {
        let k = keys();
        let t = k.sign(&claims(60)).unwrap();
        let now = now_secs();
        assert!(k.verify_at(&t, now).is_ok());
        assert!(k.verify_at(&t, now).is_ok(), "second use, from the cache");
        assert_eq!(
            k.verify_at(&t, now + 60 + LEEWAY_SECS as i64 + 1)
                .unwrap_err(),
            TokenProblem::Expired
        );
        // Same claims, signature bytes altered: not a cache hit, and refused.
        let i = t.len() - 5;
        let c = if &t[i..=i] == "A" { "B" } else { "A" };
        let forged = format!("{}{c}{}", &t[..i], &t[i + 1..]);
        assert_eq!(
            k.verify_at(&forged, now).unwrap_err(),
            TokenProblem::Invalid
        );
    }

    #[test]
    fn tokens_signed_with_the_previous_key_keep_that_key_when_seen_again() {
        let old = TokenKeys::new(&SecretString::from("o".repeat(40)), None);
        let t = old.sign(&claims(60)).unwrap();
        let k = TokenKeys::new(
            &SecretString::from("n".repeat(40)),
            Some(&SecretString::from("o".repeat(40))),
        );
        for _ in 0..2 {
            let (_, key) = k.verify(&t).unwrap();
            assert!(std::ptr::eq(key, k.previous.as_ref().unwrap()));
        }
    }

    #[test]
    fn expiry_is_cut_at_the_session_end() {
        let h = Duration::from_secs(3600);
        assert_eq!(token_expiry(1000, 1000, h, 12 * h), 1000 + 3600);
        assert_eq!(token_expiry(40_000, 0, h, 12 * h), 43_200);
    }
}
