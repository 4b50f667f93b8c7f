//! Who the teacher is: a signed session cookie after a password sign-in, or Cloudflare
//! Access's signed assertion. Also the CSRF tokens every dashboard form carries, and the
//! password sign-in's limits: per address, per account, and per known browser.
//!
//! **Lock-out without strangers locking teachers out** (OWASP's "device cookies"): a
//! successful sign-in leaves a signed device cookie naming the account. Attempts from
//! browsers without one spend the address's budget and the account's budget for unknown
//! browsers; a stranger flooding the account exhausts those, and only those. A browser with
//! a valid device cookie for the account is judged by its own small budget
//! ([`DEVICE_FAILURES`]), so the teacher who signed in before keeps signing in. Everything
//! is keyed by an account name, so per-teacher accounts plug in; today the one password's
//! account is [`ADMIN_ACCOUNT`].

use std::time::Duration;

use base64::Engine;
use hmac::Mac;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::basics::HmacSha256;
use crate::config::{PasswordCheck, Rate};
use crate::store::admin::{InWindow, LoginAttempt, LoginWindows};

/// Session cookie name.
pub const COOKIE: &str = "classchat_admin";
/// Pre-sign-in cookie the login form's CSRF token is bound to.
pub const LOGIN_COOKIE: &str = "classchat_admin_login";
/// How long a dashboard sign-in lasts.
pub const SESSION_AGE: Duration = Duration::from_secs(8 * 3600);
/// How long a login form (its pre-sign-in cookie and CSRF token) may be submitted.
pub const LOGIN_FORM_AGE: Duration = Duration::from_secs(3600);
/// Device cookie name: set after a successful password sign-in.
pub const DEVICE_COOKIE: &str = "classchat_admin_device";
/// How long a browser stays known after its last successful sign-in.
pub const DEVICE_AGE: Duration = Duration::from_secs(180 * 86_400);
/// The account of the one dashboard password (teacher accounts get their own names).
pub const ADMIN_ACCOUNT: &str = "admin";
/// Wrong passwords a known browser may make in this period before it, too, waits: a
/// teacher's typos, not a guesser with a stolen device cookie.
pub const DEVICE_FAILURES: Rate = Rate {
    count: 10,
    period: Duration::from_secs(3600),
};
/// How long wrong passwords are kept for "since your last visit".
pub const FAILURES_KEPT: Duration = Duration::from_secs(30 * 86_400);
/// Password checks running at once. argon2 is built to eat CPU and memory; more than this
/// queue, so a flood of sign-ins cannot take every core or blocking thread from open chats.
pub const VERIFY_SLOTS: usize = 2;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Signs and checks cookies and CSRF tokens with a key derived from AUTH_SECRET, so the
/// widget's tokens and the dashboard's cookies can never stand in for each other.
#[derive(Clone)]
pub struct CookieKeys {
    key: [u8; 32],
    /// A keyed fingerprint of the configured password (or its hash), signed into every
    /// session cookie: changing ADMIN_PASSWORD(_HASH) ends every session. Never sent out.
    password: String,
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
            password: String::new(),
        }
    }

    /// These keys with session cookies bound to the password `check` verifies.
    pub fn for_password(mut self, check: &PasswordCheck) -> Self {
        let verifier = match check {
            PasswordCheck::Plain(p) => self.mac(&["password", "plain", p.expose_secret()]),
            PasswordCheck::Argon2(hash) => self.mac(&["password", "argon2", hash]),
        };
        self.password = verifier;
        self
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
        let mac = self.mac(&["session", &nonce, &exp, &self.password]);
        format!("{nonce}.{exp}.{mac}")
    }

    /// The session's nonce if the cookie is ours, intact, not expired and made under the
    /// current password. (Whether it was signed out is the store's to say.)
    pub fn check(&self, value: &str, now: i64) -> Option<String> {
        let mut it = value.split('.');
        let (nonce, exp, mac) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || !eq(&self.mac(&["session", nonce, exp, &self.password]), mac) {
            return None;
        }
        (exp.parse::<i64>().ok()? > now).then(|| nonce.to_owned())
    }

    /// A new session cookie value for a teacher account: `t.id.nonce.expires.mac`. Not
    /// bound to the administrator's password; whether the teacher is still enabled is
    /// looked up on every request.
    pub fn issue_teacher(&self, teacher_id: &str, now: i64) -> String {
        let nonce = random_token();
        let exp = (now + SESSION_AGE.as_secs() as i64).to_string();
        let mac = self.mac(&["teacher", teacher_id, &nonce, &exp]);
        format!("t.{teacher_id}.{nonce}.{exp}.{mac}")
    }

    /// The teacher's id and the session's nonce if the cookie is a teacher's, ours, intact
    /// and not expired.
    pub fn check_teacher(&self, value: &str, now: i64) -> Option<(String, String)> {
        let mut it = value.split('.');
        let (tag, id, nonce, exp, mac) =
            (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
        if tag != "t" || it.next().is_some() || !eq(&self.mac(&["teacher", id, nonce, exp]), mac) {
            return None;
        }
        (exp.parse::<i64>().ok()? > now).then(|| (id.to_owned(), nonce.to_owned()))
    }

    /// A new device cookie value for `account`: `account.nonce.expires.mac`, the account
    /// base64url-encoded (names may hold dots). Not bound to the password: it only says
    /// this browser signed in before; the password is still checked.
    pub fn issue_device(&self, account: &str, now: i64) -> String {
        let acct = B64.encode(account);
        let nonce = random_token();
        let exp = (now + DEVICE_AGE.as_secs() as i64).to_string();
        let mac = self.mac(&["device", &acct, &nonce, &exp]);
        format!("{acct}.{nonce}.{exp}.{mac}")
    }

    /// The device nonce if the cookie is ours, intact, in date and for `account`.
    pub fn check_device(&self, value: &str, account: &str, now: i64) -> Option<String> {
        let mut it = value.split('.');
        let (acct, nonce, exp, mac) = (it.next()?, it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || !eq(&self.mac(&["device", acct, nonce, exp]), mac) {
            return None;
        }
        let named = B64.decode(acct).ok()?;
        (named == account.as_bytes() && exp.parse::<i64>().ok()? > now).then(|| nonce.to_owned())
    }

    /// The CSRF token for a signed-in teacher (bound to the session nonce or the email).
    pub fn csrf(&self, binding: &str) -> String {
        self.mac(&["csrf", binding])
    }

    pub fn csrf_ok(&self, binding: &str, token: &str) -> bool {
        eq(&self.csrf(binding), token)
    }

    /// The login form's CSRF token for the pre-sign-in cookie `pre`: `expires.mac`, the
    /// expiry under the MAC, so an old form (or a token lifted from one) stops working.
    pub fn login_csrf(&self, pre: &str, now: i64) -> String {
        let exp = (now + LOGIN_FORM_AGE.as_secs() as i64).to_string();
        let mac = self.mac(&["login", pre, &exp]);
        format!("{exp}.{mac}")
    }

    /// Whether a login form's token fits its cookie and is still in date.
    pub fn login_csrf_check(&self, pre: &str, token: &str, now: i64) -> Result<(), LoginForm> {
        let (exp, mac) = token.split_once('.').ok_or(LoginForm::Invalid)?;
        if pre.is_empty() || !eq(&self.mac(&["login", pre, exp]), mac) {
            return Err(LoginForm::Invalid);
        }
        match exp.parse::<i64>() {
            Ok(exp) if exp > now => Ok(()),
            _ => Err(LoginForm::Expired),
        }
    }
}

/// The budgets a password sign-in is judged by.
#[derive(Debug, Clone, Copy)]
pub struct LoginBudgets {
    /// Wrong passwords per address key from unknown browsers (LOGIN_FAILURES_PER_ADDRESS,
    /// as for access codes).
    pub address: Rate,
    /// Wrong passwords per account from unknown browsers (ADMIN_LOGIN_FAILURES).
    pub account: Rate,
    /// Wrong passwords per known browser ([`DEVICE_FAILURES`]).
    pub device: Rate,
}

impl LoginBudgets {
    /// From when each budget counts, and what is kept, at `now_ms`.
    pub fn windows(&self, now_ms: i64) -> LoginWindows {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4);
        LoginWindows {
            address_since_ms: now_ms - ms(self.address.period),
            account_since_ms: now_ms - ms(self.account.period),
            device_since_ms: now_ms - ms(self.device.period),
            keep_since_ms: now_ms - ms(FAILURES_KEPT.max(self.account.period)),
        }
    }
}

/// Which budget refused a sign-in attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockedBy {
    Address,
    Account,
    Device,
}

/// Whether an attempt, counted (its own row included), may have its password checked; if
/// not, which budget refused and for how many seconds. A known browser is judged by its own
/// budget only; an unknown one by its address's and the account's.
pub fn judge(
    a: &LoginAttempt,
    known_browser: bool,
    b: &LoginBudgets,
    now_ms: i64,
) -> Result<(), (LockedBy, u64)> {
    let over = |w: InWindow, r: Rate, by: LockedBy| {
        (w.n > i64::from(r.count)).then(|| {
            let period = i64::try_from(r.period.as_millis()).unwrap_or(i64::MAX / 4);
            let wait = u64::try_from((w.oldest_ms + period - now_ms + 999) / 1000).unwrap_or(1);
            (by, wait.max(1))
        })
    };
    let refusal = if known_browser {
        over(a.device, b.device, LockedBy::Device)
    } else {
        over(a.address, b.address, LockedBy::Address)
            .or_else(|| over(a.account, b.account, LockedBy::Account))
    };
    refusal.map_or(Ok(()), Err)
}

/// Why a login form was refused before its password was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginForm {
    /// No token, or not the one made for this cookie.
    Invalid,
    /// Genuine but older than [`LOGIN_FORM_AGE`].
    Expired,
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

/// Runs password checks on the blocking pool, at most [`VERIFY_SLOTS`] at once: the async
/// workers that carry open chats never run argon2, and a flood waits its turn in line.
#[derive(Debug)]
pub struct Verifier {
    slots: tokio::sync::Semaphore,
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            slots: tokio::sync::Semaphore::new(VERIFY_SLOTS),
        }
    }
}

impl Verifier {
    /// Waits for a slot, then runs `work` (a password check, and whatever must not race
    /// with other checks) while holding it.
    pub async fn with_slot<T>(&self, work: impl Future<Output = T>) -> T {
        // Never closed, so acquiring cannot fail; if it somehow did, run unthrottled
        // rather than refuse every sign-in.
        let _permit = self.slots.acquire().await.ok();
        work.await
    }

    /// `password_ok` off the async workers.
    pub async fn check(check: &PasswordCheck, given: String) -> bool {
        let check = check.clone();
        tokio::task::spawn_blocking(move || password_ok(&check, &given))
            .await
            .unwrap_or(false)
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
        let pw = |p: &str| {
            CookieKeys::new(&SecretString::from("x".repeat(40)))
                .for_password(&PasswordCheck::Plain(SecretString::from(p)))
        };
        let old = pw("first-password-123").issue(1000);
        assert!(pw("first-password-123").check(&old, 1001).is_some());
        assert_eq!(
            pw("second-password-456").check(&old, 1001),
            None,
            "a new password ends the session"
        );
        assert_eq!(k.check(&old, 1001), None);
        assert!(k.csrf_ok(&nonce, &k.csrf(&nonce)));
        assert!(!k.csrf_ok(&nonce, &k.csrf("someone else")));
    }

    #[test]
    fn device_cookies_name_their_account_and_resist_tampering_and_age() {
        let k = CookieKeys::new(&SecretString::from("x".repeat(40)));
        let c = k.issue_device("teacher.one@school.example", 1000);
        let nonce = k
            .check_device(&c, "teacher.one@school.example", 1001)
            .unwrap();
        assert!(!nonce.is_empty());
        assert_eq!(k.check_device(&c, "admin", 1001), None, "another account");
        let end = 1000 + DEVICE_AGE.as_secs() as i64;
        assert_eq!(
            k.check_device(&c, "teacher.one@school.example", end),
            None,
            "expired"
        );
        let mut parts: Vec<&str> = c.split('.').collect();
        let admin = B64.encode("admin");
        parts[0] = &admin;
        assert_eq!(k.check_device(&parts.join("."), "admin", 1001), None);
        let other = CookieKeys::new(&SecretString::from("y".repeat(40)));
        assert_eq!(
            other.check_device(&c, "teacher.one@school.example", 1001),
            None
        );
        // A session cookie is no device cookie, and the other way round.
        assert_eq!(k.check_device(&k.issue(1000), "admin", 1001), None);
        assert_eq!(k.check(&k.issue_device("admin", 1000), 1001), None);
    }

    #[test]
    fn unknown_browsers_spend_the_address_and_account_budgets_known_ones_their_own() {
        let budgets = LoginBudgets {
            address: Rate {
                count: 3,
                period: Duration::from_secs(60),
            },
            account: Rate {
                count: 5,
                period: Duration::from_secs(600),
            },
            device: DEVICE_FAILURES,
        };
        let w = |n, oldest_ms| InWindow { n, oldest_ms };
        let at = |address, account, device| LoginAttempt {
            id: 1,
            address,
            account,
            device,
        };
        let now = 100_000;
        let fine = at(w(3, 90_000), w(5, 90_000), w(0, now));
        assert_eq!(judge(&fine, false, &budgets, now), Ok(()));
        let address = at(w(4, 90_000), w(4, 90_000), w(0, now));
        assert_eq!(
            judge(&address, false, &budgets, now),
            Err((LockedBy::Address, 50))
        );
        let flooded = at(w(1, now), w(60, 40_000), w(1, now));
        assert_eq!(
            judge(&flooded, false, &budgets, now),
            Err((LockedBy::Account, 540))
        );
        assert_eq!(
            judge(&flooded, true, &budgets, now),
            Ok(()),
            "a known browser is not locked out by the flood"
        );
        let typos = at(w(0, now), w(60, 40_000), w(11, 99_000));
        assert_eq!(
            judge(&typos, true, &budgets, now),
            Err((LockedBy::Device, 3599))
        );
    }

    #[test]
    fn login_form_tokens_fit_their_cookie_and_expire() {
        let k = CookieKeys::new(&SecretString::from("x".repeat(40)));
        let t = k.login_csrf("pre-1", 1000);
        let end = 1000 + LOGIN_FORM_AGE.as_secs() as i64;
        assert_eq!(k.login_csrf_check("pre-1", &t, end - 1), Ok(()));
        assert_eq!(
            k.login_csrf_check("pre-1", &t, end),
            Err(LoginForm::Expired)
        );
        assert_eq!(
            k.login_csrf_check("pre-2", &t, 1001),
            Err(LoginForm::Invalid)
        );
        assert_eq!(k.login_csrf_check("", &t, 1001), Err(LoginForm::Invalid));
        assert_eq!(
            k.login_csrf_check("pre-1", "", 1001),
            Err(LoginForm::Invalid)
        );
        // Pushing the expiry forward breaks the MAC.
        let (_, mac) = t.split_once('.').unwrap();
        let later = format!("{}.{mac}", end + 3600);
        assert_eq!(
            k.login_csrf_check("pre-1", &later, end),
            Err(LoginForm::Invalid)
        );
        let other = CookieKeys::new(&SecretString::from("y".repeat(40)));
        assert_eq!(
            other.login_csrf_check("pre-1", &t, 1001),
            Err(LoginForm::Invalid)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_the_slots_run_at_once_and_the_rest_wait() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let v = Arc::new(Verifier::default());
        let (inside, most, done) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let (v, inside, most, done, gate) = (
                    v.clone(),
                    inside.clone(),
                    most.clone(),
                    done.clone(),
                    gate.clone(),
                );
                tokio::spawn(async move {
                    v.with_slot(async {
                        let now = inside.fetch_add(1, SeqCst) + 1;
                        most.fetch_max(now, SeqCst);
                        gate.acquire().await.unwrap().forget();
                        inside.fetch_sub(1, SeqCst);
                        done.fetch_add(1, SeqCst);
                    })
                    .await
                })
            })
            .collect();
        /// Polls until `cond` holds, for a generous while.
        async fn wait_for(what: &str, cond: impl Fn() -> bool) {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while !cond() {
                assert!(std::time::Instant::now() < deadline, "never: {what}");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        // Let them through one by one; each time the next waiter takes the freed slot.
        for n in 1..=6 {
            let busy = VERIFY_SLOTS.min(7 - n);
            wait_for("slots taken", || inside.load(SeqCst) == busy).await;
            gate.add_permits(1);
            wait_for("one more done", || done.load(SeqCst) == n).await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(most.load(SeqCst), VERIFY_SLOTS);
    }

    #[tokio::test]
    async fn verifier_checks_like_password_ok() {
        let hashed = PasswordCheck::Argon2(hash_password("staple-it-now").unwrap());
        assert!(Verifier::check(&hashed, "staple-it-now".into()).await);
        assert!(!Verifier::check(&hashed, "staple-it-later".into()).await);
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
