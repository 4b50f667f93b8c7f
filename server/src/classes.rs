//! The classes in force: the configured classes (parsed with the configuration, see
//! [`crate::config::classes_file`]) with the dashboard's changes and the classes made in
//! the store applied.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::basics::{read, write};
use crate::config::access_windows::AccessWindows;
pub use crate::config::classes_file::{
    ActivityInfo, Class, ClassDefaults, ClassList, ClassesError, CodeKeys, OwnSettings,
    check_starters, code_fingerprint, is_stored_form, normalize_code,
};
use crate::store::dashboard::OverrideRecord;
use crate::store::teachers::{ActivityRecord, ClassRecord};

/// A class made in the store, with its activities.
pub type StoredClass = (ClassRecord, Vec<ActivityRecord>);

/// The classes in force: the configured ones with the dashboard's overrides and code
/// generations applied, then the classes made in the store and their activities. Rebuilt and swapped whole on every change, so readers never see
/// half an update; on PostgreSQL every replica rebuilds from the database when notified.
#[derive(Debug)]
pub struct ClassRegistry {
    configured: Vec<Class>,
    /// What classes made in the store take where they have no value of their own.
    defaults: ClassDefaults,
    keys: CodeKeys,
    state: RwLock<Dashboard>,
    current: RwLock<Arc<ClassList>>,
    /// Held while the classes are read from the database and installed, so reloads apply
    /// in the order they started: one that read before a change cannot land after one
    /// that read after it.
    reloading: tokio::sync::Mutex<()>,
}

/// What the dashboard changed, as loaded from the database.
#[derive(Debug, Clone, Default, PartialEq)]
struct Dashboard {
    overrides: HashMap<String, OverrideRecord>,
    generations: HashMap<String, i64>,
    stored: Vec<StoredClass>,
}

impl ClassRegistry {
    pub fn new(
        configured: &ClassList,
        defaults: ClassDefaults,
        keys: CodeKeys,
        overrides: Vec<OverrideRecord>,
        generations: HashMap<String, i64>,
        stored: Vec<StoredClass>,
    ) -> Result<Self, ClassesError> {
        let reg = Self {
            configured: configured.classes.clone(),
            defaults,
            keys,
            state: RwLock::new(Dashboard::default()),
            current: RwLock::new(Arc::new(configured.clone())),
            reloading: tokio::sync::Mutex::new(()),
        };
        reg.install(reg.dashboard(overrides, generations, stored), true)?;
        Ok(reg)
    }

    /// A snapshot of the classes in force.
    pub fn current(&self) -> Arc<ClassList> {
        read(&self.current).clone()
    }

    /// The keys dashboard codes are stored under.
    pub fn code_keys(&self) -> &CodeKeys {
        &self.keys
    }

    /// What the dashboard changed for a class, if anything.
    pub fn override_of(&self, class_id: &str) -> Option<OverrideRecord> {
        read(&self.state).overrides.get(class_id).cloned()
    }

    /// Applies a stored override (`None`: back to the configuration) and generation.
    pub fn set_override(
        &self,
        class_id: &str,
        record: Option<OverrideRecord>,
        generation: i64,
    ) -> Result<(), ClassesError> {
        let mut next = read(&self.state).clone();
        match record {
            Some(r) => next.overrides.insert(class_id.to_owned(), r),
            None => next.overrides.remove(class_id),
        };
        next.generations.insert(class_id.to_owned(), generation);
        self.install(next, false).map(|_| ())
    }

    /// Replaces everything the dashboard changed with what the database holds now.
    /// Returns whether anything changed.
    pub fn replace_all(
        &self,
        overrides: Vec<OverrideRecord>,
        generations: HashMap<String, i64>,
        stored: Vec<StoredClass>,
    ) -> Result<bool, ClassesError> {
        self.install(self.dashboard(overrides, generations, stored), false)
    }

    /// A turn to read the classes from the database and install them (see `reloading`).
    pub async fn reload_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.reloading.lock().await
    }

    /// A class made in the store as the registry resolves it (its own settings, else the
    /// global ones), for what is read straight from the store rather than from
    /// [`ClassRegistry::current`].
    pub fn resolve(&self, record: &ClassRecord) -> Class {
        stored_class(record, &self.defaults)
    }

    /// Whether `id` is a class of the configuration (the administrator's, read-only here).
    pub fn is_configured(&self, id: &str) -> bool {
        self.configured.iter().any(|c| c.id == id)
    }

    fn dashboard(
        &self,
        overrides: Vec<OverrideRecord>,
        generations: HashMap<String, i64>,
        stored: Vec<StoredClass>,
    ) -> Dashboard {
        Dashboard {
            overrides: overrides
                .into_iter()
                .filter(|o| {
                    self.configured.iter().any(|c| c.id == o.class_id)
                        || stored.iter().any(|(c, _)| c.id == o.class_id)
                })
                .map(|o| (o.class_id.clone(), o))
                .collect(),
            generations,
            stored,
        }
    }

    fn install(&self, next: Dashboard, force: bool) -> Result<bool, ClassesError> {
        let mut state = write(&self.state);
        if !force && *state == next {
            return Ok(false);
        }
        let mut classes = self.configured.clone();
        for class in &mut classes {
            class.generation = next.generations.get(&class.id).copied().unwrap_or(0);
            let Some(o) = next.overrides.get(&class.id) else {
                continue;
            };
            if let Some(codes) = &o.codes {
                // Older versions stored plain codes; start-up rewrites them, and until then
                // they are digested here.
                class.codes.clear();
                class.stored_codes = codes.iter().map(|c| self.keys.stored_form(c)).collect();
            }
            if let Some(enabled) = o.enabled {
                class.enabled = enabled;
            }
            if let Some(q) = o.daily_quota {
                class.daily_message_quota = q;
            }
        }
        for (record, activities) in &next.stored {
            if self.configured.iter().any(|c| c.id == record.id) {
                tracing::error!(class = %record.id, "a class made in the store has the id of a configured class: ignored");
                continue;
            }
            // The dashboard's switch and quota hold for the class and all its activities; a
            // code it set reaches the class itself (its own settings, no activity's).
            let mut class = stored_class(record, &self.defaults);
            let o = next.overrides.get(&record.id);
            if let Some(enabled) = o.and_then(|o| o.enabled) {
                class.enabled = enabled;
            }
            if let Some(q) = o.and_then(|o| o.daily_quota) {
                class.daily_message_quota = q;
            }
            classes.extend(activities.iter().map(|a| activity_entry(&class, a)));
            class.generation = next.generations.get(&record.id).copied().unwrap_or(0);
            if let Some(codes) = o.and_then(|o| o.codes.as_ref()) {
                class.stored_codes = codes.iter().map(|c| self.keys.stored_form(c)).collect();
            }
            classes.push(class);
        }
        let list = ClassList::with_keys(classes, &self.keys)?;
        *write(&self.current) = Arc::new(list);
        *state = next;
        Ok(true)
    }
}

/// A class made in the store as the registry holds it: no codes of its own (students
/// reach it through its activities), the global settings where it has no value of its own.
fn stored_class(r: &ClassRecord, defaults: &ClassDefaults) -> Class {
    let small = |v: Option<i64>| v.map(|n| n.clamp(0, i64::from(u32::MAX)) as u32);
    let own = OwnSettings {
        model: r.model.clone(),
        token_ttl: r
            .token_ttl_secs
            .map(|s| Duration::from_secs(s.max(60) as u64)),
        messages_per_minute: small(r.messages_per_minute),
        class_messages_per_minute: small(r.class_messages_per_minute),
        daily_message_quota: small(r.daily_quota),
        time_zone: r
            .time_zone
            .as_deref()
            .and_then(|tz| jiff::tz::TimeZone::get(tz).ok()),
    };
    Class {
        system_prompt: r.system_prompt.clone(),
        greeting: r.greeting.clone(),
        starters: r.starters.clone(),
        visibility: r.visibility,
        keep: crate::config::classes_file::KeepDays {
            conversations_days: small(r.keep_conversations_days),
            usage_days: small(r.keep_usage_days),
            sessions_days: small(r.keep_sessions_days),
        },
        windows: AccessWindows::parse(
            &r.windows,
            r.course_start.as_deref(),
            r.course_end.as_deref(),
        )
        .unwrap_or_else(|e| {
            // Checked before it was stored; a row changed by hand is reported, and the
            // class stays open as it was before windows existed.
            tracing::error!(class = %r.id, error = %e, "a class's stored access windows are not valid: ignored");
            AccessWindows::default()
        }),
        ..Class::with_own(r.id.clone(), r.title.clone(), own, defaults)
    }
}

/// The entry an activity's code signs in to: its class with the activity's own settings
/// where it has them, its code (a stored digest) and its code generation.
fn activity_entry(class: &Class, a: &ActivityRecord) -> Class {
    let mut e = class.clone();
    e.title = format!("{} · {}", class.title, a.title);
    e.stored_codes = vec![a.code_digest.clone()];
    e.generation = a.code_generation;
    if a.system_prompt.is_some() {
        e.system_prompt = a.system_prompt.clone();
    }
    if a.greeting.is_some() {
        e.greeting = a.greeting.clone();
    }
    if let Some(s) = &a.starters {
        e.starters = s.clone();
    }
    if a.model.is_some() {
        e.model = a.model.clone();
    }
    e.activity = Some(ActivityInfo {
        id: a.id.clone(),
        title: a.title.clone(),
        paused: a.paused,
    });
    e
}

/// A new access code that reads well aloud and on a board: 8 characters without the
/// look-alikes (0/o, 1/l/i), as two groups of four. About 40 bits.
pub fn generate_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
    let mut rng = rand::thread_rng();
    let mut code = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            code.push('-');
        }
        code.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn defaults() -> ClassDefaults {
        ClassDefaults {
            model: Some("global-model".into()),
            token_ttl: Duration::from_secs(900),
            messages_per_minute: 10,
            class_messages_per_minute: 100,
            daily_message_quota: 50,
            time_zone: jiff::tz::TimeZone::get("Asia/Taipei").unwrap(),
        }
    }

    fn record(id: &str) -> ClassRecord {
        ClassRecord {
            id: id.into(),
            title: id.into(),
            greeting: None,
            system_prompt: None,
            starters: Vec::new(),
            model: None,
            time_zone: None,
            messages_per_minute: None,
            class_messages_per_minute: None,
            daily_quota: None,
            token_ttl_secs: None,
            visibility: Default::default(),
            windows: Vec::new(),
            course_start: None,
            course_end: None,
            keep_conversations_days: None,
            keep_usage_days: None,
            keep_sessions_days: None,
            created_ms: 0,
            updated_ms: 0,
        }
    }

    #[test]
    fn stored_classes_hold_their_own_values_else_the_global_ones_and_overrides_win() {
        let configured =
            ClassList::from_codes("bio-2026", "Bio", None, None, Vec::new(), &defaults()).unwrap();
        let own = ClassRecord {
            model: Some("own-model".into()),
            time_zone: Some("Europe/Berlin".into()),
            messages_per_minute: Some(3),
            class_messages_per_minute: Some(30),
            daily_quota: Some(7),
            token_ttl_secs: Some(120),
            ..record("own")
        };
        let keys = CodeKeys::new(&SecretString::from("k".repeat(32)), None);
        let reg = ClassRegistry::new(
            &configured,
            defaults(),
            keys,
            Vec::new(),
            HashMap::new(),
            vec![(record("bare"), Vec::new()), (own, Vec::new())],
        )
        .unwrap();
        let list = reg.current();
        let bare = list.get("bare").unwrap();
        assert_eq!(bare.model.as_deref(), Some("global-model"));
        assert_eq!(bare.token_ttl, Duration::from_secs(900));
        assert_eq!(
            (
                bare.messages_per_minute,
                bare.class_messages_per_minute,
                bare.daily_message_quota
            ),
            (10, 100, 50)
        );
        assert_eq!(bare.time_zone.iana_name(), Some("Asia/Taipei"));
        let own = list.get("own").unwrap();
        assert_eq!(own.model.as_deref(), Some("own-model"));
        assert_eq!(own.token_ttl, Duration::from_secs(120));
        assert_eq!(
            (
                own.messages_per_minute,
                own.class_messages_per_minute,
                own.daily_message_quota
            ),
            (3, 30, 7)
        );
        assert_eq!(own.time_zone.iana_name(), Some("Europe/Berlin"));
        assert_eq!(list.get("class-1").unwrap().daily_message_quota, 50);

        let quota = |id: &str, q| OverrideRecord {
            class_id: id.into(),
            codes: None,
            enabled: None,
            daily_quota: Some(q),
            updated_by: "t".into(),
            updated_ms: 0,
        };
        reg.set_override("bare", Some(quota("bare", 2)), 0).unwrap();
        reg.set_override("class-1", Some(quota("class-1", 3)), 0)
            .unwrap();
        assert_eq!(reg.current().get("bare").unwrap().daily_message_quota, 2);
        assert_eq!(reg.current().get("class-1").unwrap().daily_message_quota, 3);
        reg.set_override("class-1", None, 0).unwrap();
        assert_eq!(
            reg.current().get("class-1").unwrap().daily_message_quota,
            50
        );
    }
}
