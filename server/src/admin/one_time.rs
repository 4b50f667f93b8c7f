//! Secrets a dashboard page shows once after a redirect (a rotated or new access code, an
//! invitation link): sealed into the store under a ticket the redirect's URL carries, so
//! the page works on whichever replica the redirect lands (see `teachers::one_time`).

use super::AdminError;
use crate::basics::now_ms;
use crate::state::AppState;
use crate::teachers::one_time::{TTL_MS, binding_digest, open, seal};
use crate::teachers::secret_digest;

/// A class's new access code (the operator's rotate).
pub(crate) const CLASS_CODE: &str = "class_code";
/// An activity's new access code.
pub(crate) const ACTIVITY_CODE: &str = "activity_code";
/// A teacher's invitation link.
pub(crate) const INVITATION: &str = "invitation";

/// Keeps `secret` for the session `binding` for a few minutes; answers the ticket.
pub(crate) async fn put(
    state: &AppState,
    binding: &str,
    kind: &str,
    subject: &str,
    secret: &str,
) -> Result<String, AdminError> {
    let s = seal(secret, kind, subject);
    let now = now_ms();
    state
        .store
        .put_one_time(
            &s.ticket_digest,
            &binding_digest(binding),
            kind,
            subject,
            &s.sealed,
            now + TTL_MS,
            now,
        )
        .await?;
    Ok(s.ticket)
}

/// The secret behind `ticket`, once, for the session that made it, if it is of `kind` for
/// `subject` and still in date.
pub(crate) async fn take(
    state: &AppState,
    ticket: &str,
    binding: &str,
    kind: &str,
    subject: &str,
) -> Result<Option<String>, AdminError> {
    if ticket.is_empty() || ticket.len() > 100 {
        return Ok(None);
    }
    let Some(row) = state
        .store
        .take_one_time(&secret_digest(ticket), &binding_digest(binding), now_ms())
        .await?
    else {
        return Ok(None);
    };
    if row.kind != kind || row.subject != subject {
        return Ok(None);
    }
    Ok(open(ticket, &row.sealed, kind, subject))
}
