//! Sealing a secret that the dashboard shows once after a redirect. The redirect's URL
//! carries a random ticket; the store keeps only the ticket's SHA-256 and the secret sealed
//! by [`crate::sealed`] under a key derived from the ticket (not from `AUTH_SECRET`: the
//! ticket is the only key). So any replica can show it, and neither the database nor a log
//! of URLs alone reveals it.

use base64::Engine;
use secrecy::SecretString;

use crate::sealed::Sealer;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// How long a one-time secret waits to be shown.
pub const TTL_MS: i64 = 5 * 60 * 1000;

/// A sealed secret and the ticket that opens it.
#[derive(Debug)]
pub struct Sealed {
    /// Goes into the redirect's URL (random, 256 bits).
    pub ticket: String,
    /// What the store looks the secret up by.
    pub ticket_digest: String,
    /// The secret, sealed: what the store keeps.
    pub sealed: String,
}

fn sealer(ticket: &str) -> Sealer {
    Sealer::new(
        "one-time secret",
        &SecretString::from(ticket.to_owned()),
        None,
    )
}

/// Binds the `kind` and `subject` into the box, so a sealed code cannot be shown as
/// another activity's or as an invitation.
fn context(kind: &str, subject: &str) -> String {
    format!("{kind}\0{subject}")
}

/// Seals `secret` for `kind`/`subject` under a fresh ticket.
pub fn seal(secret: &str, kind: &str, subject: &str) -> Sealed {
    use rand::RngCore;
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let ticket = B64.encode(raw);
    let sealed = sealer(&ticket).seal_str(secret, &context(kind, subject));
    Sealed {
        ticket_digest: super::secret_digest(&ticket),
        ticket,
        sealed: B64.encode(sealed),
    }
}

/// Opens what [`seal`] made, with its ticket; `None` if anything does not fit.
pub fn open(ticket: &str, sealed: &str, kind: &str, subject: &str) -> Option<String> {
    let sealed = B64.decode(sealed).ok()?;
    sealer(ticket)
        .open_str(&sealed, &context(kind, subject))
        .ok()
}

/// The digest a dashboard session's one-time secrets are bound to (never the session's
/// own nonce, which would let the table name a live session).
pub fn binding_digest(binding: &str) -> String {
    super::secret_digest(&format!("one-time binding\0{binding}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_ticket_kind_and_subject() {
        let s = seal("abcd-efgh", "activity_code", "a_1");
        assert!(!s.sealed.contains("abcd"));
        assert_eq!(s.ticket_digest, crate::teachers::secret_digest(&s.ticket));
        assert_eq!(
            open(&s.ticket, &s.sealed, "activity_code", "a_1").as_deref(),
            Some("abcd-efgh")
        );
        assert_eq!(open(&s.ticket, &s.sealed, "activity_code", "a_2"), None);
        assert_eq!(open(&s.ticket, &s.sealed, "invitation", "a_1"), None);
        let other = seal("x", "activity_code", "a_1");
        assert_eq!(open(&other.ticket, &s.sealed, "activity_code", "a_1"), None);
    }
}
