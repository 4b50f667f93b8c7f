//! JSON Web Key Sets of the parties whose RS256 tokens classchat checks: Cloudflare Access
//! in front of the dashboard, and the LMS platforms that launch classchat (LTI 1.3). Both
//! publish their keys at a URL, rotate them, and name the signing key by `kid`.
//!
//! One [`KeySetCache`] per URL: fetched lazily, cached by `kid`, fetched again when a
//! token names a key we have not seen (at most once per [`REFETCH_INTERVAL`]), refreshed
//! when older than an hour, and kept through an outage (stale keys over no keys). The
//! helpers read a compact JWS header by hand, so `alg: none` and HS256 are refused before
//! any key is looked up.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;

/// At most one key-set fetch per this interval after the first successful load, so a stream
/// of tokens with made-up `kid`s (or an outage) cannot make us hammer the publisher.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// A key fetch sits in front of a person's page load; give up quickly.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Cached keys older than this are refreshed on the next request, so a withdrawn key stops
/// being trusted even when no new `kid` ever shows up. If the publisher cannot be reached
/// then, the cached keys keep working (availability over an hour's strictness).
pub const MAX_KEY_AGE: Duration = Duration::from_secs(3600);
/// Attacker-chosen strings (`alg`, `kid`) are cut to this many characters before they reach
/// an error, so a huge header cannot flood the log.
const ECHO_MAX_CHARS: usize = 64;

/// The RS256 keys published at one URL.
pub struct KeySetCache {
    url: String,
    /// Who publishes the keys, for the log ("Cloudflare Access", an LMS issuer).
    label: String,
    http: reqwest::Client,
    /// `kid` → key and when the set was fetched. Read on every request; written only after
    /// a successful fetch.
    keys: RwLock<KeySet>,
    /// Tests shorten it to see a refresh.
    pub(crate) max_key_age: Duration,
    /// Held while fetching, so concurrent requests with the same new `kid` wait for one fetch
    /// instead of each starting their own.
    fetch: Mutex<FetchState>,
}

impl std::fmt::Debug for KeySetCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySetCache")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The cached keys and when they were fetched.
#[derive(Default)]
struct KeySet {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

impl KeySet {
    /// The key for `kid`, and whether it is still fresh.
    fn get(&self, kid: &str, max_age: Duration) -> Option<(DecodingKey, bool)> {
        let fresh = self.fetched.is_some_and(|t| t.elapsed() < max_age);
        self.keys.get(kid).map(|k| (k.clone(), fresh))
    }
}

/// What the fetch throttle remembers.
#[derive(Debug, Default)]
struct FetchState {
    /// A key set has been loaded at least once. The first load is not throttled.
    loaded: bool,
    /// When the last throttled fetch started (every fetch but the first successful load).
    last_fetch: Option<Instant>,
    /// Why the last fetch failed, cleared by a success: repeated while throttled.
    last_error: Option<String>,
}

/// Why no key could be had for a `kid`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The `kid` (shortened) is not in the set, even after a refetch.
    #[error("unknown key {0:?}")]
    UnknownKey(String),
    /// The key set could not be fetched (why, for the log).
    #[error("keys unreachable: {0}")]
    Unreachable(String),
}

impl KeySetCache {
    /// `url` is where the keys are published; `label` names the publisher in log lines.
    pub fn new(url: String, label: impl Into<String>, http: reqwest::Client) -> Self {
        Self {
            url,
            label: label.into(),
            http,
            keys: RwLock::new(KeySet::default()),
            max_key_age: MAX_KEY_AGE,
            fetch: Mutex::new(FetchState::default()),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key named `kid`, from the cache or, if unknown or the cache is old, from a
    /// (throttled) refetch.
    pub async fn key_for(&self, kid: &str) -> Result<DecodingKey, KeyError> {
        if let Some((key, true)) = self.keys.read().await.get(kid, self.max_key_age) {
            return Ok(key);
        }
        let mut state = self.fetch.lock().await;
        // Another request may have fetched the key set while we waited for the lock.
        let stale = match self.keys.read().await.get(kid, self.max_key_age) {
            Some((key, true)) => return Ok(key),
            Some((key, false)) => Some(key),
            None => None,
        };
        if let Some(at) = state.last_fetch
            && at.elapsed() < REFETCH_INTERVAL
        {
            if let Some(key) = stale {
                return Ok(key);
            }
            return Err(match &state.last_error {
                Some(reason) => KeyError::Unreachable(reason.clone()),
                None => KeyError::UnknownKey(clip(kid)),
            });
        }

        let first_load = !state.loaded;
        let started = Instant::now();
        match self.fetch_keys().await {
            Ok(fresh) => {
                let found = fresh.get(kid).cloned();
                tracing::info!(keys = fresh.len(), "loaded the {} signing keys", self.label);
                // Replaced, not merged: a key no longer published is no longer trusted.
                *self.keys.write().await = KeySet {
                    keys: fresh,
                    fetched: Some(started),
                };
                if !first_load {
                    state.last_fetch = Some(started);
                }
                state.loaded = true;
                state.last_error = None;
                found.ok_or_else(|| KeyError::UnknownKey(clip(kid)))
            }
            Err(reason) => {
                // Cached keys stay: requests with known `kid`s keep working through an outage.
                state.last_fetch = Some(started);
                state.last_error = Some(reason.clone());
                match stale {
                    Some(key) => {
                        tracing::warn!(
                            "could not refresh the {} keys ({reason}); still using the cached ones",
                            self.label
                        );
                        Ok(key)
                    }
                    None => Err(KeyError::Unreachable(reason)),
                }
            }
        }
    }

    /// Fetches the JWKS and keeps its usable RS256 signing keys.
    async fn fetch_keys(&self) -> Result<HashMap<String, DecodingKey>, String> {
        let url = &self.url;
        let response = self
            .http
            .get(url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("could not reach {url}: {}", error_chain(e)))?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(format!("{url} answered HTTP {status}"));
        }
        let jwks: Jwks = response
            .json()
            .await
            .map_err(|e| format!("{url} did not return a JSON key set: {}", error_chain(e)))?;

        // Entries we cannot use (other key types, odd fields) are skipped, not fatal.
        let keys: HashMap<String, DecodingKey> = jwks
            .keys
            .into_iter()
            .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
            .filter(|jwk| {
                jwk.kty == "RSA"
                    && jwk.alg.as_deref().is_none_or(|a| a == "RS256")
                    && jwk.usage.as_deref().is_none_or(|u| u == "sig")
            })
            .filter_map(|jwk| {
                let key = DecodingKey::from_rsa_components(jwk.n.as_deref()?, jwk.e.as_deref()?);
                Some((jwk.kid?, key.ok()?))
            })
            .collect();
        if keys.is_empty() {
            return Err(format!("{url} returned no usable RS256 keys"));
        }
        Ok(keys)
    }
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: String,
    alg: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

/// What is wrong with a token's header, found before any key is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderProblem {
    /// Not three base64url parts, or a header that is not JSON, or no `alg`.
    Malformed,
    /// An `alg` other than RS256 (shortened).
    WrongAlgorithm(String),
    /// RS256, but no `kid` (or an empty one).
    NoKid,
}

/// The JOSE header fields we look at, read by hand: jsonwebtoken's own `decode_header` fails on
/// algorithms it does not know (`none`), which would hide an attack behind "malformed".
#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
    kid: Option<String>,
}

/// The `kid` of a token whose header says RS256.
pub fn rs256_kid(token: &str) -> Result<String, HeaderProblem> {
    let header: RawHeader = decode_segment(token, 0).ok_or(HeaderProblem::Malformed)?;
    match header.alg.as_deref() {
        Some("RS256") => {}
        Some(other) => return Err(HeaderProblem::WrongAlgorithm(clip(other))),
        None => return Err(HeaderProblem::Malformed),
    }
    header
        .kid
        .filter(|k| !k.is_empty())
        .ok_or(HeaderProblem::NoKid)
}

/// The header's `alg`, unchecked.
pub fn header_alg(token: &str) -> Option<String> {
    decode_segment::<RawHeader>(token, 0)?.alg
}

/// Part `index` (0 header, 1 claims) of a three-part compact JWS, base64url-decoded and parsed.
pub fn decode_segment<T: serde::de::DeserializeOwned>(token: &str, index: usize) -> Option<T> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(parts[index]).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// At most `ECHO_MAX_CHARS` characters, control characters replaced: for echoing
/// attacker-chosen strings in errors and logs.
pub fn clip(s: &str) -> String {
    s.chars()
        .take(ECHO_MAX_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// "error sending request: tcp connect error: Connection refused": reqwest's top-level message
/// alone rarely says what went wrong. The URL is left out; the caller's sentence names it.
fn error_chain(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("no answer within {} s", FETCH_TIMEOUT.as_secs());
    }
    crate::basics::error_chain(&error.without_url())
}
