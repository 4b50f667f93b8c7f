//! Widget tokens: HS256 JWTs that let one session chat with one class, briefly.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::TokenProblem;

/// `aud` of every widget token: they are good for the widget API and nothing else.
pub const AUDIENCE: &str = "classchat-widget";
/// `iss` of every widget token.
pub const ISSUER: &str = "classchat";
/// Clock skew forgiven on `exp`.
pub const LEEWAY_SECS: u64 = 30;

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
}

/// Unix seconds now.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
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
    fn expiry_is_cut_at_the_session_end() {
        let h = Duration::from_secs(3600);
        assert_eq!(token_expiry(1000, 1000, h, 12 * h), 1000 + 3600);
        assert_eq!(token_expiry(40_000, 0, h, 12 * h), 43_200);
    }
}
