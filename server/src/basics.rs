//! Small helpers many modules share, each with one home: the clock, durations as the
//! configuration writes them, poison-tolerant locks, the HMAC type and URLs with their
//! secrets cut out (for logs and errors).

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::Hmac;
use sha2::Sha256;

/// HMAC-SHA-256: code digests, dashboard session cookies and the password compare.
pub type HmacSha256 = Hmac<Sha256>;

/// One hour in milliseconds: the usage rollups' bucket and the chart's step.
pub const HOUR_MS: i64 = 3_600_000;

/// Unix seconds now (0 if the clock is before 1970, which no deployment sees).
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Unix milliseconds now, at whole-second precision: the database's timestamps.
pub fn now_ms() -> i64 {
    now_secs() * 1000
}

/// A new secret for AUTH_SECRET: 48 random letters and digits (about 285 bits), safe in a
/// `.env` line and on a command line without quoting.
pub fn random_secret() -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(48)
        .map(char::from)
        .collect()
}

/// Parses `90s`, `60m`, `12h`, `7d` or plain seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(mult).map(Duration::from_secs)
}

// A panic while a guard is held poisons the lock; what these locks guard (counters, maps,
// lists swapped whole) is still consistent, so every caller carries on rather than turning
// one panic into a failure of every later request.

/// Locks `m`, ignoring poison.
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Read-locks `l`, ignoring poison.
pub fn read<T: ?Sized>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

/// Write-locks `l`, ignoring poison.
pub fn write<T: ?Sized>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// An error and its causes on one line (`outer: inner: innermost`), for log lines and the
/// teacher-facing `check` output; no client-facing body carries it.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `url` with any `user:password@` replaced by `…@`, and the value of every query
/// parameter that carries a secret (`password=`, `sslpassword=`, see [`is_secret_param`])
/// replaced by `…`: a DATABASE_URL (or any URL) as it may appear in a log line or an error.
pub fn redact_url(url: &str) -> String {
    let without_user = match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            // `scheme://host…` again, with a mark where the credentials were.
            let s = u.to_string();
            match s.split_once("://") {
                Some((scheme, rest)) => format!("{scheme}://…@{rest}"),
                None => s,
            }
        }
        Ok(_) => url.to_owned(),
        // Not a URL we can parse: cut anything up to an '@' after the scheme (but not one
        // in the query, where it may be part of a value).
        Err(_) => {
            let end = url.find(['?', '#']).unwrap_or(url.len());
            match (url.split_once("://"), url[..end].rfind('@')) {
                (Some((scheme, _)), Some(at)) => format!("{scheme}://…@{}", &url[at + 1..]),
                _ => url.to_owned(),
            }
        }
    };
    redact_query(&without_user)
}

/// Query parameters whose values are secrets: libpq's `password` and `sslpassword`, and
/// anything else named like a password, secret or token.
fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "pwd", "secret", "token"]
        .iter()
        .any(|s| name.contains(s))
}

/// The query string's secret values replaced by `…` (the rest byte for byte as it was).
fn redact_query(url: &str) -> String {
    let Some(q) = url.find('?') else {
        return url.to_owned();
    };
    let end = url[q..].find('#').map_or(url.len(), |f| q + f);
    let pairs: Vec<String> = url[q + 1..end]
        .split('&')
        .map(|pair| {
            let (raw_name, _) = pair.split_once('=').unwrap_or((pair, ""));
            let name: String = url::form_urlencoded::parse(raw_name.as_bytes())
                .map(|(k, _)| k.into_owned())
                .collect();
            if is_secret_param(&name) {
                format!("{raw_name}=…")
            } else {
                pair.to_owned()
            }
        })
        .collect();
    format!("{}?{}{}", &url[..q], pairs.join("&"), &url[end..])
}

/// The secrets a URL carries (its password, and its secret query values), raw and decoded.
fn url_secrets(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(u) = url::Url::parse(url) {
        if let Some(pw) = u.password() {
            out.push(pw.to_owned());
            out.push(percent_decode(pw));
        }
        for (k, v) in u.query_pairs() {
            if is_secret_param(&k) {
                out.push(v.into_owned());
            }
        }
    }
    if let Some(q) = url.split_once('?').map(|(_, q)| q) {
        for pair in q.split(['&', '#']) {
            if let Some((k, v)) = pair.split_once('=')
                && is_secret_param(k)
            {
                out.push(v.to_owned());
            }
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// `%xx` escapes decoded (a `+` stays a `+`, as in a URL's user info).
fn percent_decode(s: &str) -> String {
    let escaped = format!("x={}", s.replace('+', "%2B"));
    url::form_urlencoded::parse(escaped.as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A driver error's text with every secret of the URL (if it appears) cut out.
pub fn redact_error(e: &dyn std::fmt::Display, url: &str) -> String {
    let mut text = e.to_string();
    for secret in url_secrets(url) {
        text = text.replace(&secret, "…");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("60m"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("12h"), Some(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("15"), Some(Duration::from_secs(15)));
        assert_eq!(parse_duration("15x"), None);
        assert_eq!(parse_duration("m"), None);
    }

    #[test]
    fn a_poisoned_lock_still_opens() {
        let m = std::sync::Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("poison it");
        })
        .join();
        assert!(m.is_poisoned());
        *lock(&m) += 1;
        assert_eq!(*lock(&m), 2);
    }

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db.example:5432/classchat?sslmode=require"),
            "postgres://…@db.example:5432/classchat?sslmode=require"
        );
        assert_eq!(redact_url("sqlite://classchat.db"), "sqlite://classchat.db");
        assert!(!redact_url("postgres://app:p%40ss@h/db").contains("p%40ss"));
        assert!(!redact_url("weird://u:pw@").contains("pw"));
    }

    #[test]
    fn secret_query_parameters_lose_their_values() {
        assert_eq!(
            redact_url("postgres://db.example/classchat?user=app&password=s3cret&sslmode=require"),
            "postgres://db.example/classchat?user=app&password=…&sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://app:pw@db/x?sslpassword=k3y-pass&PassWord=x%26y#frag"),
            "postgres://…@db/x?sslpassword=…&PassWord=…#frag"
        );
        // A name spelled with escapes is still recognised.
        assert!(!redact_url("postgres://db/x?pass%77ord=hidden").contains("hidden"));
        // Not a URL the parser takes: the query is still cut.
        let odd = redact_url("postgres://db:99999/x?password=p@ss&user=a");
        assert!(!odd.contains("p@ss") && odd.contains("user=a"), "{odd}");
        let err = redact_error(
            &"connection to db failed: password s3cret%21 rejected (s3cret!)",
            "postgres://db/x?password=s3cret%21",
        );
        assert!(!err.contains("s3cret"), "{err}");
    }
}
