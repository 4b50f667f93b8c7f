//! Teachers, their roles in a class, and the secrets they hold: personal access tokens and
//! invitations. Pure rules and secret handling; the store keeps only digests of secrets.
//!
//! Tokens look like GitHub's and Gitea's (`cc_pat_` and 43 random characters), so secret
//! scanners can spot a leaked one; they carry 256 random bits, so a plain SHA-256 is a
//! sufficient digest (nobody can guess a preimage), and lookups by digest need no per-row
//! salt.

use std::time::Duration;

use base64::Engine;
use sha2::{Digest, Sha256};

/// Every personal access token starts with this.
pub const TOKEN_PREFIX: &str = "cc_pat_";

/// How many characters of a token lists show (the prefix and four more).
const SHOWN_CHARS: usize = TOKEN_PREFIX.len() + 4;

/// How long an invitation link works.
pub const INVITATION_TTL: Duration = Duration::from_secs(48 * 3600);

/// The shortest password a teacher may set (as for ADMIN_PASSWORD).
pub const MIN_PASSWORD_CHARS: usize = 12;

/// What a member may do in a class. The administrator is not a member: it may do
/// everything in every class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including deleting the class and changing its members.
    Owner,
    /// Everything but deleting the class or changing its members.
    CoTeacher,
    /// Reads the class and its usage; changes nothing.
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::CoTeacher => "co_teacher",
            Self::Assistant => "assistant",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Owner, Self::CoTeacher, Self::Assistant]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// What an action on a class needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// See the class, its activities and usage.
    Read,
    /// Change the class's settings and activities.
    Edit,
    /// Add, change or remove members.
    Members,
    /// Delete the class.
    Delete,
    /// Read the class's audit log.
    Audit,
    /// Set who can read the class's conversations (its visibility): the owner's choice.
    Visibility,
    /// Read the class's stored conversations: owners and co-teachers (an assistant
    /// helps with the class but is not who the students are told reads them).
    Conversations,
}

/// Whether a member with `role` may do what `need` names. Owners may do all of it,
/// co-teachers all but members and deletion, assistants only read.
pub fn allows(role: Role, need: Need) -> bool {
    match need {
        Need::Read => true,
        Need::Edit | Need::Conversations => matches!(role, Role::Owner | Role::CoTeacher),
        Need::Members | Need::Delete | Need::Audit | Need::Visibility => role == Role::Owner,
    }
}

/// Who is making a request to the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The server's operator, through a token made with `classchat admin create-token`.
    Administrator { token_id: String },
    Teacher {
        id: String,
        email: String,
        token_id: String,
    },
}

impl Caller {
    /// How the audit log names the caller: never a secret, only ids and an address.
    pub fn actor(&self) -> String {
        match self {
            Self::Administrator { token_id } => format!("administrator (token {token_id})"),
            Self::Teacher { email, .. } => email.clone(),
        }
    }

    pub fn teacher_id(&self) -> Option<&str> {
        match self {
            Self::Administrator { .. } => None,
            Self::Teacher { id, .. } => Some(id),
        }
    }

    pub fn token_id(&self) -> &str {
        match self {
            Self::Administrator { token_id } | Self::Teacher { token_id, .. } => token_id,
        }
    }

    pub fn is_administrator(&self) -> bool {
        matches!(self, Self::Administrator { .. })
    }
}

/// A new secret: 32 random bytes, URL-safe base64 (43 characters).
fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The digest a secret is stored and looked up by (hex SHA-256).
pub fn secret_digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A freshly made personal access token: shown once, then only its digest is kept.
#[derive(Debug)]
pub struct NewToken {
    pub token: String,
    pub digest: String,
    /// The first characters, for lists (not enough to use it).
    pub prefix: String,
}

pub fn new_token() -> NewToken {
    let token = format!("{TOKEN_PREFIX}{}", random_secret());
    NewToken {
        digest: secret_digest(&token),
        prefix: token[..SHOWN_CHARS].to_owned(),
        token,
    }
}

/// Whether a bearer value looks like one of our tokens (anything else is refused unlooked).
pub fn looks_like_token(s: &str) -> bool {
    s.len() == TOKEN_PREFIX.len() + 43
        && s.starts_with(TOKEN_PREFIX)
        && s[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A fresh invitation secret and its digest.
pub fn new_invitation() -> (String, String) {
    let secret = random_secret();
    let digest = secret_digest(&secret);
    (secret, digest)
}

/// A new record id: a letter for the kind, then 16 random lower-case letters and digits
/// (ids appear in URLs and logs; they are not secrets).
pub fn new_id(kind: char) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    let mut id = String::with_capacity(18);
    id.push(kind);
    id.push('_');
    for _ in 0..16 {
        id.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
    }
    id
}

/// Trimmed and lower-cased, if it is a plausible address (something@domain.tld).
pub fn normalize_email(email: &str) -> Result<String, String> {
    let e = email.trim().to_lowercase();
    let ok = e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && match e.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
            }
            None => false,
        };
    if ok {
        Ok(e)
    } else {
        Err("email is not an email address".into())
    }
}

/// Checks a new password's length; the problem never repeats the password.
pub fn check_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "password is shorter than {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.chars().count() > 1024 {
        return Err("password is longer than 1024 characters".into());
    }
    Ok(())
}

/// An argon2 hash of a password (the PHC string the store keeps). Slow on purpose: call it
/// off the async workers.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// Whether `password` matches a stored hash. Slow on purpose, like [`hash_password`].
pub fn verify_password(hash: &str, password: &str) -> bool {
    use argon2::PasswordVerifier;
    argon2::PasswordHash::new(hash)
        .map(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_do_everything_co_teachers_all_but_members_and_deletion_assistants_read() {
        use Need::*;
        for need in [Read, Edit, Members, Delete, Audit] {
            assert!(allows(Role::Owner, need));
        }
        assert!(allows(Role::CoTeacher, Edit) && allows(Role::CoTeacher, Read));
        for need in [Members, Delete, Audit] {
            assert!(!allows(Role::CoTeacher, need), "{need:?}");
        }
        assert!(allows(Role::Assistant, Read));
        for need in [Edit, Members, Delete, Audit] {
            assert!(!allows(Role::Assistant, need), "{need:?}");
        }
    }

    #[test]
    fn tokens_have_the_prefix_and_are_kept_as_digests() {
        let t = new_token();
        assert!(t.token.starts_with("cc_pat_") && looks_like_token(&t.token));
        assert_eq!(t.digest, secret_digest(&t.token));
        assert!(!t.digest.contains(&t.token[7..]));
        assert!(t.token.starts_with(&t.prefix) && t.prefix.len() < 16);
        assert_ne!(new_token().token, t.token);
        assert!(!looks_like_token("cc_pat_short"));
        assert!(!looks_like_token(&t.token.replace("cc_pat_", "xx_pat_")));
    }

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(
            normalize_email(" Mei@School.EDU ").unwrap(),
            "mei@school.edu"
        );
        for bad in ["", "mei", "mei@", "@school.edu", "mei@school", "m ei@s.edu"] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_round_trip_by_name() {
        for r in [Role::Owner, Role::CoTeacher, Role::Assistant] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("admin"), None);
    }
}
