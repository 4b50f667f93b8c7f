//! Classes and their access codes, from `ACCESS_CODE` or a `CLASSES_FILE`.
//!
//! Codes are kept only as secrets and as keyed digests: the lookup compares digests in
//! constant time, and no error message ever repeats a code.

use std::path::Path;
use std::time::Duration;

use hmac::Mac;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use classchat_shared::limits::{
    MAX_ACCESS_CODE_CHARS, MAX_STARTER_CHARS, MAX_STARTERS, MIN_ACCESS_CODE_CHARS,
};

use super::access_windows::{AccessWindows, PeriodSpec, WindowsError};
use crate::basics::{HmacSha256, parse_duration};
pub use classchat_shared::Visibility;

/// One class: who it is for, how to reach it, and its limits.
#[derive(Debug, Clone)]
pub struct Class {
    pub id: String,
    pub title: String,
    /// Normalised codes (see [`normalize_code`]), from the configuration.
    pub codes: Vec<SecretString>,
    /// Codes the dashboard set, as the database keeps them: keyed digests
    /// ([`CodeKeys::store`]), never the codes themselves.
    pub stored_codes: Vec<String>,
    /// How many times the dashboard changed this class's codes (see [`code_fingerprint`]).
    pub generation: i64,
    pub model: Option<String>,
    pub system_prompt: Option<String>,
    pub greeting: Option<String>,
    /// Suggested first messages (see [`check_starters`]).
    pub starters: Vec<String>,
    pub token_ttl: Duration,
    pub messages_per_minute: u32,
    /// The whole class's messages per minute.
    pub class_messages_per_minute: u32,
    pub daily_message_quota: u32,
    pub enabled: bool,
    /// The class's own time zone (classes made in the store), else TIMEZONE.
    pub time_zone: jiff::tz::TimeZone,
    /// The values the class names itself; the effective ones above are these, else the
    /// global ones (see [`Class::resolve`]).
    pub own: OwnSettings,
    /// Who can read the class's conversations (`visibility` in the classes file, or the
    /// API's class setting); `off` unless set.
    pub visibility: Visibility,
    /// The class's own days to keep each kind of row (the classes file's `keep_*_days`);
    /// `None` for each the server's setting decides.
    pub keep: KeepDays,
    /// Set on the entry an activity's code signs in to: the class with the activity's
    /// prompt, greeting, starters and model applied. Budgets and usage stay the class's
    /// (`id` is the class's id); tokens name the entry by [`Class::key`].
    pub activity: Option<ActivityInfo>,
    /// When students may sign in and chat, in [`Class::time_zone`]; none: always.
    pub windows: AccessWindows,
}

/// Days to keep stored conversations, usage rows and sessions; 0 keeps them until erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub conversations_days: u32,
    pub usage_days: u32,
    pub sessions_days: u32,
}

/// A class's own retention, field by field (`None`: the server's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeepDays {
    pub conversations_days: Option<u32>,
    pub usage_days: Option<u32>,
    pub sessions_days: Option<u32>,
}

impl KeepDays {
    /// What applies to the class: its own days, else the server's.
    pub fn over(self, server: Retention) -> Retention {
        Retention {
            conversations_days: self.conversations_days.unwrap_or(server.conversations_days),
            usage_days: self.usage_days.unwrap_or(server.usage_days),
            sessions_days: self.sessions_days.unwrap_or(server.sessions_days),
        }
    }
}

/// The global settings a class takes where it has no value of its own. A class's fields
/// hold its effective values, resolved against these when the settings are read and again
/// from the final settings when the server starts (`Settings::resolve_classes`), so
/// handlers read them directly (a change of the global value needs a restart).
#[derive(Debug, Clone)]
pub struct ClassDefaults {
    pub model: Option<String>,
    pub token_ttl: Duration,
    pub messages_per_minute: u32,
    pub class_messages_per_minute: u32,
    pub daily_message_quota: u32,
    pub time_zone: jiff::tz::TimeZone,
}

/// The settings a class gives itself (in the classes file or the store); `None` takes the
/// global value of [`ClassDefaults`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OwnSettings {
    pub model: Option<String>,
    pub token_ttl: Option<Duration>,
    pub messages_per_minute: Option<u32>,
    pub class_messages_per_minute: Option<u32>,
    pub daily_message_quota: Option<u32>,
    pub time_zone: Option<jiff::tz::TimeZone>,
}

/// Which activity of its class an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityInfo {
    pub id: String,
    pub title: String,
    pub paused: bool,
}

impl Class {
    /// Sets the effective values from the class's own, else from `defaults`.
    pub fn resolve(&mut self, defaults: &ClassDefaults) {
        let own = &self.own;
        self.model = own.model.clone().or_else(|| defaults.model.clone());
        self.token_ttl = own.token_ttl.unwrap_or(defaults.token_ttl);
        self.messages_per_minute = own
            .messages_per_minute
            .unwrap_or(defaults.messages_per_minute);
        self.class_messages_per_minute = own
            .class_messages_per_minute
            .unwrap_or(defaults.class_messages_per_minute);
        self.daily_message_quota = own
            .daily_message_quota
            .unwrap_or(defaults.daily_message_quota);
        self.time_zone = own
            .time_zone
            .clone()
            .unwrap_or_else(|| defaults.time_zone.clone());
    }

    /// A class with the given own values, resolved against `defaults`; the rest empty.
    pub(crate) fn with_own(
        id: String,
        title: String,
        own: OwnSettings,
        defaults: &ClassDefaults,
    ) -> Self {
        let mut class = Self {
            id,
            title,
            codes: Vec::new(),
            stored_codes: Vec::new(),
            generation: 0,
            model: None,
            system_prompt: None,
            greeting: None,
            starters: Vec::new(),
            token_ttl: defaults.token_ttl,
            messages_per_minute: 0,
            class_messages_per_minute: 0,
            daily_message_quota: 0,
            enabled: true,
            time_zone: defaults.time_zone.clone(),
            own,
            visibility: Visibility::Off,
            keep: KeepDays::default(),
            activity: None,
            windows: AccessWindows::default(),
        };
        class.resolve(defaults);
        class
    }

    /// What a token names this entry by: the class id, or `<class id>/<activity id>`
    /// (class ids cannot hold a `/`).
    pub fn key(&self) -> String {
        match &self.activity {
            Some(a) => format!("{}/{}", self.id, a.id),
            None => self.id.clone(),
        }
    }

    /// Whether this is an activity its teacher paused.
    pub fn paused(&self) -> bool {
        self.activity.as_ref().is_some_and(|a| a.paused)
    }
}

/// A start-up problem with the classes. Never contains a code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClassesError {
    #[error("{0}")]
    File(String),
    #[error("{0}")]
    Code(String),
}

/// The classes and a digest of every code, for constant-time lookup.
#[derive(Debug, Clone)]
pub struct ClassList {
    pub(crate) classes: Vec<Class>,
    /// Digest keys: the first digests configured codes; stored codes name theirs.
    keys: Vec<[u8; 32]>,
    /// (class index, key index, digest) for every code.
    digests: Vec<(usize, usize, [u8; 32])>,
}

/// Trimmed and lower-cased, so a stray space or caps lock does not fail a student.
pub fn normalize_code(code: &str) -> String {
    code.trim().to_lowercase()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassesFile {
    #[serde(rename = "class", default)]
    classes: Vec<ClassEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassEntry {
    id: String,
    title: String,
    codes: Vec<String>,
    model: Option<String>,
    system_prompt: Option<String>,
    greeting: Option<String>,
    #[serde(default)]
    starters: Vec<String>,
    token_ttl: Option<String>,
    messages_per_minute: Option<u32>,
    class_messages_per_minute: Option<u32>,
    daily_message_quota: Option<u32>,
    #[serde(default = "yes")]
    enabled: bool,
    /// `off` (default), `flagged` or `full`.
    visibility: Option<String>,
    keep_conversations_days: Option<u32>,
    keep_usage_days: Option<u32>,
    keep_sessions_days: Option<u32>,
    /// Weekly access windows, in TIMEZONE.
    #[serde(default)]
    windows: Vec<PeriodSpec>,
    course_start: Option<DateValue>,
    course_end: Option<DateValue>,
}

/// A day, written as a TOML date (`2026-09-01`) or a string (`"2026-09-01"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DateValue {
    Date(toml::value::Datetime),
    Text(String),
}

impl DateValue {
    fn text(&self) -> String {
        match self {
            Self::Date(d) => d.to_string(),
            Self::Text(s) => s.clone(),
        }
    }
}

fn yes() -> bool {
    true
}

/// toml's messages quote values in backticks; a value may be a code, so only field
/// names (in "unknown field" and "missing field") are kept.
fn redact_toml_message(msg: &str) -> String {
    if msg.starts_with("unknown field") || msg.starts_with("missing field") {
        return msg.split(", expected").next().unwrap_or(msg).to_owned();
    }
    let mut out = String::new();
    let mut inside = false;
    for ch in msg.chars() {
        if ch == '`' {
            if !inside {
                out.push_str("`…`");
            }
            inside = !inside;
        } else if !inside {
            out.push(ch);
        }
    }
    out
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Conversation starters as given, trimmed: at most [`MAX_STARTERS`], each non-empty and
/// at most [`MAX_STARTER_CHARS`] characters. The problem says which one is wrong.
pub fn check_starters(starters: &[String]) -> Result<Vec<String>, String> {
    if starters.len() > MAX_STARTERS {
        return Err(format!(
            "{} starters given, at most {MAX_STARTERS} are allowed",
            starters.len()
        ));
    }
    starters
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let s = s.trim();
            let n = i + 1;
            if s.is_empty() {
                Err(format!("starter number {n} is empty"))
            } else if s.chars().count() > MAX_STARTER_CHARS {
                Err(format!(
                    "starter number {n} is longer than {MAX_STARTER_CHARS} characters"
                ))
            } else {
                Ok(s.to_owned())
            }
        })
        .collect()
}

impl ClassList {
    /// `ACCESS_CODE=a,b,c`: one class per code, ids `class-1`, `class-2`, …
    pub fn from_codes(
        codes: &str,
        title: &str,
        system_prompt: Option<String>,
        greeting: Option<String>,
        starters: Vec<String>,
        defaults: &ClassDefaults,
    ) -> Result<Self, ClassesError> {
        let parts: Vec<&str> = codes.split(',').collect();
        let several = parts.len() > 1;
        let mut classes = Vec::new();
        for (i, code) in parts.iter().enumerate() {
            let n = i + 1;
            let code = normalize_code(code);
            check_code(&code).map_err(|p| ClassesError::Code(format!("code number {n}: {p}")))?;
            let title = if several {
                format!("{title} {n}")
            } else {
                title.to_owned()
            };
            classes.push(Class {
                codes: vec![SecretString::from(code)],
                system_prompt: system_prompt.clone(),
                greeting: greeting.clone(),
                starters: starters.clone(),
                ..Class::with_own(
                    format!("class-{n}"),
                    title,
                    OwnSettings::default(),
                    defaults,
                )
            });
        }
        Self::new(classes).map_err(|e| ClassesError::Code(e.to_string()))
    }

    /// Reads a TOML classes file; errors name the file, the class and the field.
    pub fn from_file(path: &Path, defaults: &ClassDefaults) -> Result<Self, ClassesError> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ClassesError::File(format!("cannot read {shown}: {e}")))?;
        let file: ClassesFile = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
            ClassesError::File(format!("{shown}{at}: {}", redact_toml_message(e.message())))
        })?;
        if file.classes.is_empty() {
            return Err(ClassesError::File(format!("{shown}: no [[class]] tables")));
        }
        let mut classes = Vec::new();
        for (i, c) in file.classes.into_iter().enumerate() {
            let name = if c.id.is_empty() {
                format!("class #{}", i + 1)
            } else {
                format!("class {:?}", c.id)
            };
            let fail = |field: &str, p: String| {
                ClassesError::File(format!("{shown}: {name}, field {field}: {p}"))
            };
            if !valid_id(&c.id) {
                return Err(fail(
                    "id",
                    "use 1-64 lower-case letters, digits, '-' or '_'".into(),
                ));
            }
            if c.title.trim().is_empty() {
                return Err(fail("title", "must not be empty".into()));
            }
            if c.codes.is_empty() {
                return Err(fail("codes", "give at least one code".into()));
            }
            let mut codes = Vec::new();
            for (j, code) in c.codes.iter().enumerate() {
                let code = normalize_code(code);
                check_code(&code)
                    .map_err(|p| fail("codes", format!("code number {}: {p}", j + 1)))?;
                codes.push(SecretString::from(code));
            }
            let token_ttl = match c.token_ttl.as_deref() {
                None => None,
                Some(t) => Some(parse_duration(t).filter(|d| d.as_secs() >= 60).ok_or_else(
                    || {
                        fail(
                            "token_ttl",
                            format!("{t:?} is not a duration of at least 60s"),
                        )
                    },
                )?),
            };
            let starters = check_starters(&c.starters).map_err(|p| fail("starters", p))?;
            let own = OwnSettings {
                model: c.model.filter(|m| !m.trim().is_empty()),
                token_ttl,
                messages_per_minute: c.messages_per_minute,
                class_messages_per_minute: c.class_messages_per_minute,
                daily_message_quota: c.daily_message_quota,
                time_zone: None,
            };
            let visibility = match c.visibility.as_deref().map(str::trim) {
                None => Visibility::Off,
                Some(v) => Visibility::parse(v).ok_or_else(|| {
                    fail(
                        "visibility",
                        format!("{v:?} is not one of \"off\", \"flagged\", \"full\""),
                    )
                })?,
            };
            let (start, end) = (
                c.course_start.as_ref().map(DateValue::text),
                c.course_end.as_ref().map(DateValue::text),
            );
            let windows = AccessWindows::parse(&c.windows, start.as_deref(), end.as_deref())
                .map_err(|e| {
                    let field = match &e {
                        WindowsError::BadDate(m) if m.starts_with("course_end") => "course_end",
                        WindowsError::BadDate(_) => "course_start",
                        WindowsError::EndBeforeStart { .. } => "course_end",
                        _ => "windows",
                    };
                    fail(field, e.to_string())
                })?;
            classes.push(Class {
                codes,
                system_prompt: c.system_prompt.filter(|s| !s.trim().is_empty()),
                greeting: c.greeting.filter(|s| !s.trim().is_empty()),
                starters,
                enabled: c.enabled,
                visibility,
                keep: KeepDays {
                    conversations_days: c.keep_conversations_days,
                    usage_days: c.keep_usage_days,
                    sessions_days: c.keep_sessions_days,
                },
                windows,
                ..Class::with_own(c.id, c.title, own, defaults)
            });
        }
        Self::new(classes).map_err(|e| ClassesError::File(format!("{shown}: {e}")))
    }

    /// Checks ids and codes are unique and builds the digest table (under a random key:
    /// configured codes only need comparing with each other and with what students type).
    pub fn new(classes: Vec<Class>) -> Result<Self, ClassesError> {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        Self::build(classes, None, key)
    }

    /// As [`ClassList::new`], with the keys stored codes were digested under.
    pub(crate) fn with_keys(classes: Vec<Class>, keys: &CodeKeys) -> Result<Self, ClassesError> {
        Self::build(classes, Some(keys), keys.keys[0].0)
    }

    fn build(
        classes: Vec<Class>,
        stored_keys: Option<&CodeKeys>,
        plain_key: [u8; 32],
    ) -> Result<Self, ClassesError> {
        let mut list = Self {
            classes: Vec::new(),
            keys: vec![plain_key],
            digests: Vec::new(),
        };
        if let Some(k) = stored_keys {
            list.keys = k.keys.iter().map(|(key, _)| *key).collect();
        }
        for (i, class) in classes.iter().enumerate() {
            if classes[..i].iter().any(|c| c.key() == class.key()) {
                return Err(ClassesError::File(format!(
                    "class {:?}, field id: used twice",
                    class.id
                )));
            }
            let plain = class
                .codes
                .iter()
                .map(|code| (0, digest(&list.keys[0], code.expose_secret())));
            let stored = class.stored_codes.iter().filter_map(|s| {
                let (kid, d) = parse_stored(s)?;
                let k = stored_keys?.keys.iter().position(|(_, id)| *id == kid);
                if k.is_none() {
                    tracing::warn!(class = %class.id, "a code the dashboard set was made under an AUTH_SECRET no longer configured: rotate the code again");
                }
                Some((k?, d))
            });
            for (k, d) in plain.chain(stored).collect::<Vec<_>>() {
                if let Some((other, _, _)) = list
                    .digests
                    .iter()
                    .find(|(_, ek, e)| *ek == k && bool::from(e.ct_eq(&d)))
                {
                    let other = &classes[*other].id;
                    return Err(ClassesError::Code(if *other == class.id {
                        format!("class {other:?}, field codes: the same code is listed twice")
                    } else {
                        format!(
                            "class {:?}, field codes: a code is also a code of class {other:?}; codes must be unique",
                            class.id
                        )
                    }));
                }
                list.digests.push((i, k, d));
            }
        }
        list.classes = classes;
        Ok(list)
    }

    /// The class whose code this is. Every digest is compared, so the time taken does not
    /// depend on which code (if any) matched.
    pub fn find_by_code(&self, input: &str) -> Option<&Class> {
        let code = normalize_code(input);
        if code.is_empty() || code.chars().count() > MAX_ACCESS_CODE_CHARS {
            return None;
        }
        let mine: Vec<[u8; 32]> = self.keys.iter().map(|k| digest(k, &code)).collect();
        let mut found = None;
        for (i, k, e) in &self.digests {
            if bool::from(e.ct_eq(&mine[*k])) {
                found = Some(*i);
            }
        }
        found.map(|i| &self.classes[i])
    }

    /// A class by its id, or an activity's entry by its [`Class::key`].
    pub fn get(&self, key: &str) -> Option<&Class> {
        if key.contains('/') {
            self.classes.iter().find(|c| c.key() == key)
        } else {
            self.classes
                .iter()
                .find(|c| c.activity.is_none() && c.id == key)
        }
    }

    /// Resolves every class again against `defaults` (see [`Class::resolve`]): the
    /// configured classes, once the final settings are known.
    pub fn resolve(&mut self, defaults: &ClassDefaults) {
        for class in &mut self.classes {
            class.resolve(defaults);
        }
    }

    /// The classes (not their activities' entries).
    pub fn iter(&self) -> impl Iterator<Item = &Class> {
        self.classes.iter().filter(|c| c.activity.is_none())
    }
}

fn check_code(code: &str) -> Result<(), String> {
    let n = code.chars().count();
    if n == 0 {
        return Err("is empty".into());
    }
    if n < MIN_ACCESS_CODE_CHARS {
        return Err(format!(
            "is shorter than {MIN_ACCESS_CODE_CHARS} characters"
        ));
    }
    if n > MAX_ACCESS_CODE_CHARS {
        return Err(format!("is longer than {MAX_ACCESS_CODE_CHARS} characters"));
    }
    Ok(())
}

/// A fingerprint of a class's codes and code generation under one signing key. It goes
/// into every token, so changing the codes revokes the old tokens, and so does every later
/// change (the generation only moves forward): going back to the configured codes does
/// not bring back the tokens of before. Keyed, so a token does not leak the code.
pub fn code_fingerprint(secret: &SecretString, class: &Class) -> String {
    use base64::Engine;
    let mut codes: Vec<&str> = class
        .codes
        .iter()
        .map(|c| c.expose_secret())
        .chain(class.stored_codes.iter().map(String::as_str))
        .collect();
    codes.sort_unstable();
    let mut mac = HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC takes any key length");
    mac.update(b"classchat code fingerprint\0");
    mac.update(class.id.as_bytes());
    if class.generation > 0 {
        // Generation 0 adds nothing, so tokens issued before generations existed still verify.
        mac.update(format!("\0generation {}", class.generation).as_bytes());
    }
    for c in codes {
        mac.update(b"\0");
        mac.update(c.as_bytes());
    }
    let bytes = mac.finalize().into_bytes();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..12])
}

fn digest(key: &[u8; 32], normalized: &str) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(normalized.as_bytes());
    mac.finalize().into_bytes().into()
}

/// What a stored code looks like: `hmac-sha256:<key id>:<hex digest>`.
const STORED_PREFIX: &str = "hmac-sha256:";

fn parse_stored(s: &str) -> Option<(String, [u8; 32])> {
    let (kid, hex) = s.strip_prefix(STORED_PREFIX)?.split_once(':')?;
    if hex.len() != 64 {
        return None;
    }
    let mut d = [0u8; 32];
    for (i, byte) in d.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some((kid.to_owned(), d))
}

/// Whether a code from the database is already a keyed digest (older versions stored
/// codes in plain text; start-up rewrites those).
pub fn is_stored_form(s: &str) -> bool {
    parse_stored(s).is_some()
}

/// The keys codes set on the dashboard are digested under before they are stored, derived
/// from AUTH_SECRET (and AUTH_SECRET_PREVIOUS, so stored codes survive a rotation). The
/// database then holds nothing a student could type.
#[derive(Clone)]
pub struct CodeKeys {
    /// (key, key id), the current one first.
    keys: Vec<([u8; 32], String)>,
}

impl std::fmt::Debug for CodeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKeys(..)")
    }
}

impl CodeKeys {
    pub fn new(current: &SecretString, previous: Option<&SecretString>) -> Self {
        let derive = |secret: &SecretString| {
            let mut mac = HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
                .expect("HMAC takes any key length");
            mac.update(b"classchat stored access code v1");
            let key: [u8; 32] = mac.finalize().into_bytes().into();
            let id = digest(&key, "key id");
            let kid: String = id[..4].iter().map(|b| format!("{b:02x}")).collect();
            (key, kid)
        };
        Self {
            keys: std::iter::once(current)
                .chain(previous)
                .map(derive)
                .collect(),
        }
    }

    /// `code` as it is stored: unchanged if it is a stored digest already.
    pub fn stored_form(&self, code: &str) -> String {
        if is_stored_form(code) {
            code.to_owned()
        } else {
            self.store(code)
        }
    }

    /// `code`'s stored form under each key, the current one first: what a code stored
    /// before an AUTH_SECRET rotation is found by (personal codes are looked up by it).
    pub fn stored_forms(&self, code: &str) -> Vec<String> {
        let code = normalize_code(code);
        self.keys
            .iter()
            .map(|(key, kid)| {
                let d = digest(key, &code);
                let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
                format!("{STORED_PREFIX}{kid}:{hex}")
            })
            .collect()
    }

    /// The form a normalised code is stored in.
    pub fn store(&self, code: &str) -> String {
        let (key, kid) = &self.keys[0];
        let d = digest(key, &normalize_code(code));
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        format!("{STORED_PREFIX}{kid}:{hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> ClassDefaults {
        ClassDefaults {
            model: None,
            token_ttl: Duration::from_secs(900),
            messages_per_minute: 10,
            class_messages_per_minute: 100,
            daily_message_quota: 0,
            time_zone: jiff::tz::TimeZone::UTC,
        }
    }

    #[test]
    fn codes_match_trimmed_and_case_insensitively() {
        let list = ClassList::from_codes(
            "Bio-2026,chem-lab-7",
            "Class",
            None,
            None,
            Vec::new(),
            &defaults(),
        )
        .unwrap();
        assert_eq!(list.find_by_code("  BIO-2026 ").unwrap().id, "class-1");
        assert_eq!(list.find_by_code("chem-lab-7").unwrap().id, "class-2");
        assert!(list.find_by_code("bio-2027").is_none());
        assert!(list.find_by_code("").is_none());
    }

    #[test]
    fn short_empty_and_duplicate_codes_are_refused_without_echo() {
        for (codes, want) in [
            ("abc", "shorter than 6"),
            ("abcdefg,,hijklmn", "code number 2: is empty"),
            ("secret-one,SECRET-ONE", "codes must be unique"),
        ] {
            let e = ClassList::from_codes(codes, "C", None, None, Vec::new(), &defaults())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
            assert!(
                !e.to_lowercase().contains("secret-one") && !e.contains("abcdefg"),
                "{e}"
            );
        }
    }

    #[test]
    fn starters_are_trimmed_and_each_problem_is_named() {
        let ok = check_starters(&[" What is a cell? ".into(), "Quiz me".into()]).unwrap();
        assert_eq!(ok, vec!["What is a cell?", "Quiz me"]);
        let five: Vec<String> = (1..=5).map(|i| format!("q{i}")).collect();
        assert!(check_starters(&five).unwrap_err().contains("at most 4"));
        let empty = check_starters(&["a".into(), "  ".into()]).unwrap_err();
        assert_eq!(empty, "starter number 2 is empty");
        let long = check_starters(&["x".repeat(MAX_STARTER_CHARS + 1)]).unwrap_err();
        assert!(long.contains("longer than 200"), "{long}");
        assert!(check_starters(&["x".repeat(MAX_STARTER_CHARS)]).is_ok());
    }

    #[test]
    fn toml_messages_lose_quoted_values() {
        assert_eq!(
            redact_toml_message("invalid type: integer `123456`, expected a string"),
            "invalid type: integer `…`, expected a string"
        );
        assert_eq!(
            redact_toml_message("unknown field `cdes`, expected one of `id`, `title`"),
            "unknown field `cdes`"
        );
    }
}
