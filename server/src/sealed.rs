//! Text sealed at rest: what a copied database file or a backup must not show (stored
//! conversations) is encrypted with XChaCha20-Poly1305 under a key derived from
//! `AUTH_SECRET` by HKDF-SHA-256 with a purpose label, so each use has its own key.
//!
//! A sealed value is `version (1 byte) ‖ key id (4 bytes) ‖ nonce (24 bytes) ‖ ciphertext
//! and tag`. The key id (derived from the key, never the key itself) lets [`Sealer::open`]
//! pick the key a row was sealed under: the current `AUTH_SECRET`'s, or while rotating
//! `AUTH_SECRET_PREVIOUS`'s, so older rows stay readable. The version, key id, purpose and
//! the caller's context (e.g. the row's class and conversation ids) are bound in as
//! associated data, so a value cannot be moved to another row or purpose unnoticed.
//! Random 192-bit nonces make nonce reuse under one key negligible without a counter.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// The stored form's first byte; a new format gets a new one.
const VERSION: u8 = 1;
const KID_LEN: usize = 4;
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 1 + KID_LEN + NONCE_LEN;
/// HKDF's salt: fixed, so the same secret gives the same keys on every replica.
const SALT: &[u8] = b"classchat sealed v1";

/// Why a sealed value could not be opened. Names no key and no plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the sealed value is not in a known format")]
    Malformed,
    #[error("the sealed value was made under a key no longer configured (an older AUTH_SECRET)")]
    UnknownKey,
    #[error("the sealed value does not verify: changed, moved, or made under another key")]
    Tampered,
    #[error("the opened value is not UTF-8")]
    NotText,
}

struct SealKey {
    id: [u8; KID_LEN],
    cipher: XChaCha20Poly1305,
}

/// Seals and opens values for one purpose. Cheap to share behind an `Arc`.
pub struct Sealer {
    purpose: &'static str,
    /// The current key first, then the previous secret's.
    keys: Vec<SealKey>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({}, ..)", self.purpose)
    }
}

fn derive(secret: &SecretString, purpose: &str) -> SealKey {
    let hk = Hkdf::<Sha256>::new(Some(SALT), secret.expose_secret().as_bytes());
    let mut key = [0u8; 32];
    let mut id = [0u8; KID_LEN];
    // Output lengths are far below HKDF-SHA-256's limit (255 × 32 bytes): cannot fail.
    hk.expand_multi_info(&[purpose.as_bytes(), b"/key"], &mut key)
        .expect("32 bytes is a valid HKDF length");
    hk.expand_multi_info(&[purpose.as_bytes(), b"/key id"], &mut id)
        .expect("4 bytes is a valid HKDF length");
    let cipher = XChaCha20Poly1305::new(&key.into());
    key.fill(0);
    SealKey { id, cipher }
}

impl Sealer {
    /// Keys for `purpose` (a fixed label such as `"conversations"`) from the current secret
    /// and, while rotating, the previous one.
    pub fn new(
        purpose: &'static str,
        current: &SecretString,
        previous: Option<&SecretString>,
    ) -> Self {
        Self {
            purpose,
            keys: std::iter::once(current)
                .chain(previous)
                .map(|s| derive(s, purpose))
                .collect(),
        }
    }

    fn aad(&self, header: &[u8], context: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(header.len() + self.purpose.len() + context.len() + 2);
        aad.extend_from_slice(&header[..1 + KID_LEN]);
        aad.extend_from_slice(self.purpose.as_bytes());
        aad.push(0);
        aad.extend_from_slice(context);
        aad
    }

    /// `plaintext` sealed under the current key, bound to `context`.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        use rand::RngCore;
        let key = &self.keys[0];
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + 16);
        out.push(VERSION);
        out.extend_from_slice(&key.id);
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        out.extend_from_slice(&nonce);
        let aad = self.aad(&out, context);
        let sealed = key
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 seals any length a process can hold");
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`Sealer::seal`] made with the same `context`, under whichever
    /// configured key it names.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < HEADER_LEN + 16 || sealed[0] != VERSION {
            return Err(SealError::Malformed);
        }
        let kid = &sealed[1..1 + KID_LEN];
        let key = self
            .keys
            .iter()
            .find(|k| k.id == kid)
            .ok_or(SealError::UnknownKey)?;
        let aad = self.aad(sealed, context);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1 + KID_LEN..HEADER_LEN]);
        key.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &sealed[HEADER_LEN..],
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Tampered)
    }

    /// [`Sealer::seal`] for text.
    pub fn seal_str(&self, text: &str, context: &str) -> Vec<u8> {
        self.seal(text.as_bytes(), context.as_bytes())
    }

    /// [`Sealer::open`] for text.
    pub fn open_str(&self, sealed: &[u8], context: &str) -> Result<String, SealError> {
        String::from_utf8(self.open(sealed, context.as_bytes())?).map_err(|_| SealError::NotText)
    }

    /// Whether `sealed` was made under the current key (false: re-seal it when convenient,
    /// before the previous secret is dropped).
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        sealed.get(1..1 + KID_LEN) == Some(&self.keys[0].id[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(c: char) -> SecretString {
        SecretString::from(c.to_string().repeat(40))
    }

    #[test]
    fn a_sealed_text_opens_to_itself_and_hides_it() {
        let s = Sealer::new("conversations", &secret('a'), None);
        let text = "I think osmosis is when water moves 水分子";
        let sealed = s.seal_str(text, "class-1/conv-1");
        assert_eq!(sealed[0], VERSION);
        assert!(
            !sealed.windows(7).any(|w| w == b"osmosis"),
            "the plain text is not in the sealed form"
        );
        assert_eq!(s.open_str(&sealed, "class-1/conv-1").unwrap(), text);
        // A fresh nonce each time: the same text never seals the same twice.
        assert_ne!(s.seal_str(text, "class-1/conv-1"), sealed);
        // The empty text too.
        assert_eq!(s.open_str(&s.seal_str("", "c"), "c").unwrap(), "");
    }

    #[test]
    fn any_changed_byte_or_another_context_is_refused() {
        let s = Sealer::new("conversations", &secret('a'), None);
        let sealed = s.seal_str("a private question", "class-1/conv-1");
        for i in HEADER_LEN..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert_eq!(
                s.open(&t, b"class-1/conv-1"),
                Err(SealError::Tampered),
                "{i}"
            );
        }
        let mut nonce = sealed.clone();
        nonce[1 + KID_LEN] ^= 0x80;
        assert_eq!(s.open(&nonce, b"class-1/conv-1"), Err(SealError::Tampered));
        // Moved to another row: the context no longer matches.
        assert_eq!(s.open(&sealed, b"class-1/conv-2"), Err(SealError::Tampered));
        let mut version = sealed.clone();
        version[0] = 2;
        assert_eq!(
            s.open(&version, b"class-1/conv-1"),
            Err(SealError::Malformed)
        );
        assert_eq!(
            s.open(&sealed[..HEADER_LEN + 15], b"class-1/conv-1"),
            Err(SealError::Malformed)
        );
        // Another purpose derives another key from the same secret.
        let other = Sealer::new("flags", &secret('a'), None);
        assert!(other.open(&sealed, b"class-1/conv-1").is_err());
    }

    #[test]
    fn the_previous_secret_keeps_older_values_readable() {
        let old = Sealer::new("conversations", &secret('a'), None);
        let sealed_before = old.seal_str("sealed before the rotation", "ctx");
        let rotated = Sealer::new("conversations", &secret('b'), Some(&secret('a')));
        assert_eq!(
            rotated.open_str(&sealed_before, "ctx").unwrap(),
            "sealed before the rotation"
        );
        assert!(!rotated.is_current(&sealed_before));
        let sealed_after = rotated.seal_str("sealed after", "ctx");
        assert!(rotated.is_current(&sealed_after));
        // The old configuration cannot read what the new secret sealed.
        assert_eq!(old.open(&sealed_after, b"ctx"), Err(SealError::UnknownKey));
        // Once the previous secret is dropped, the older rows are unreadable.
        let dropped = Sealer::new("conversations", &secret('b'), None);
        assert_eq!(
            dropped.open(&sealed_before, b"ctx"),
            Err(SealError::UnknownKey)
        );
    }

    #[test]
    fn a_wrong_key_under_the_same_key_id_does_not_open() {
        let right = Sealer::new("conversations", &secret('a'), None);
        let wrong = Sealer::new("conversations", &secret('c'), None);
        let mut sealed = right.seal_str("private", "ctx");
        assert_eq!(wrong.open(&sealed, b"ctx"), Err(SealError::UnknownKey));
        // Even with the key id forged to the wrong key's, the tag does not verify.
        sealed[1..1 + KID_LEN].copy_from_slice(&wrong.keys[0].id);
        assert_eq!(wrong.open(&sealed, b"ctx"), Err(SealError::Tampered));
    }

    #[test]
    fn debug_and_errors_show_no_key() {
        let s = Sealer::new("conversations", &secret('z'), None);
        let shown = format!("{s:?}");
        assert_eq!(shown, "Sealer(conversations, ..)");
        for e in [
            SealError::Malformed,
            SealError::UnknownKey,
            SealError::Tampered,
            SealError::NotText,
        ] {
            assert!(!e.to_string().contains("zzzz"));
        }
    }
}
