//! Signing in with a class access code, and the token check every widget route uses.

pub mod token;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::routing::post;
use classchat_shared::limits::MAX_DISPLAY_NAME_CHARS;
use classchat_shared::{ClassInfo, SessionRequest, SessionResponse};

use crate::basics::now_secs;
use crate::classes::{Class, code_fingerprint};
use crate::client_addr::ClientAddr;
use crate::config::access_windows::{Openness, rfc3339};
use crate::error::{AppError, AppJson, Result, TokenProblem};
use crate::limits::Refusal;
use crate::state::AppState;
use crate::store::SessionRow;
use crate::usage::{UsageLog, UsageRecorder};
use token::{AUDIENCE, Claims, ISSUER, token_expiry};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/session",
            post(create_session).delete(delete_session),
        )
        .route("/api/v1/session/refresh", post(refresh_session))
}

/// A request with a valid widget token for an open class, inside its access windows.
/// Being an extractor, a handler that takes it cannot forget to check the token; the
/// windows are checked on every request, so a token issued inside a window stops working
/// for chat and refresh when the window closes.
#[derive(Debug, Clone)]
pub struct AuthSession {
    pub claims: Claims,
    /// The token's class as it was when the token was checked (dashboard changes included).
    pub class: Class,
}

impl AuthSession {
    /// The usage row of one chat request in this session (its class and activity, the
    /// session and the student's name), recorded when the recorder is dropped.
    pub fn usage_recorder(
        &self,
        log: &UsageLog,
        conversation_id: String,
        model: String,
    ) -> UsageRecorder {
        UsageRecorder::new(
            log.clone(),
            self.class.id.clone(),
            self.class.activity.as_ref().map(|a| a.id.clone()),
            self.claims.sub.clone(),
            self.claims.name.clone(),
            conversation_id,
            model,
        )
    }
}

fn bearer(parts: &Parts) -> Result<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(AppError::Token(TokenProblem::Missing))
}

impl FromRequestParts<AppState> for AuthSession {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        verify(state, bearer(parts)?)
    }
}

/// A valid widget token, whether or not the class is inside its windows now: signing out
/// works at any time.
struct SigningOut(AuthSession);

impl FromRequestParts<AppState> for SigningOut {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        verify_token(state, bearer(parts)?).map(Self)
    }
}

/// Every check a widget token must pass, in one place, and the class's access windows.
pub fn verify(state: &AppState, token: &str) -> Result<AuthSession> {
    let session = verify_token(state, token)?;
    check_open(&session.class)?;
    Ok(session)
}

/// `class_closed` with the next opening when `class` is outside its access windows now.
pub fn check_open(class: &Class) -> Result<()> {
    match class.windows.at(jiff::Timestamp::now(), &class.time_zone) {
        Openness::Open => Ok(()),
        Openness::Closed { opens_at } => Err(AppError::ClassClosed {
            opens_at: opens_at.as_ref().map(rfc3339),
        }),
    }
}

/// The token's own checks: signature, expiry, revocation, the class and its code.
fn verify_token(state: &AppState, token: &str) -> Result<AuthSession> {
    let (claims, key) = state.keys.verify(token).map_err(AppError::Token)?;
    if state.revoked.contains(&claims.sub) {
        return Err(AppError::Token(TokenProblem::Revoked));
    }
    let classes = state.classes.current();
    let class = classes
        .get(&claims.cls)
        .ok_or(AppError::Token(TokenProblem::Invalid))?;
    if !class.enabled {
        return Err(AppError::ClassDisabled);
    }
    if class.paused() {
        return Err(AppError::ActivityPaused);
    }
    if code_fingerprint(&key.secret, class) != claims.cfp {
        return Err(AppError::Token(TokenProblem::CodeRotated));
    }
    Ok(AuthSession {
        claims,
        class: class.clone(),
    })
}

/// Bidirectional overrides and isolates, and zero-width characters: in a name they can
/// reorder or hide what the dashboard and the CSV show (a name that reads as another).
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

pub(crate) fn clean_display_name(name: Option<String>) -> Result<Option<String>> {
    let Some(name) = name else { return Ok(None) };
    let name: String = name
        .chars()
        .filter(|c| !c.is_control() && !is_invisible_format(*c))
        .collect::<String>()
        .trim()
        .to_owned();
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(AppError::BadRequest(format!(
            "display_name is too long (at most {MAX_DISPLAY_NAME_CHARS} characters)."
        )));
    }
    Ok((!name.is_empty()).then_some(name))
}

async fn create_session(
    State(state): State<AppState>,
    client: ClientAddr,
    AppJson(req): AppJson<SessionRequest>,
) -> Result<(StatusCode, AppJson<SessionResponse>)> {
    let display_name = clean_display_name(req.display_name)?;
    // Counted as a wrong code before the code is looked at, and given back if it is right.
    let attempt = match state.limits.attempt(client.0).await {
        Ok(attempt) => attempt,
        Err(refusal) => {
            tracing::warn!(target: "classchat::login", client = %client, outcome = ?refusal, "sign-in refused");
            return Err(refusal.sign_in_error());
        }
    };
    let classes = state.classes.current();
    // A class's code, else a student's personal code (the same field and attempt: the
    // wrong-code limits cover both).
    let (class, student) = match classes.find_by_code(&req.access_code) {
        Some(class) => (Some(class), None),
        None => personal_code(&state, &classes, &req.access_code).await?,
    };
    let Some(class) = class else {
        tracing::info!(target: "classchat::login", client = %client, outcome = "invalid_code", "sign-in refused");
        return Err(AppError::InvalidCode);
    };
    if !class.enabled {
        state
            .limits
            .not_a_guess(attempt)
            .await
            .map_err(Refusal::sign_in_error)?;
        tracing::info!(target: "classchat::login", class = %class.id, client = %client, outcome = "class_disabled", "sign-in refused");
        return Err(AppError::ClassDisabled);
    }
    if class.paused() {
        // A right code for a paused activity is not a guess either.
        state
            .limits
            .not_a_guess(attempt)
            .await
            .map_err(Refusal::sign_in_error)?;
        tracing::info!(target: "classchat::login", class = %class.id, client = %client, outcome = "activity_paused", "sign-in refused");
        return Err(AppError::ActivityPaused);
    }
    if let Err(closed) = check_open(class) {
        // Nor is a right code outside the class's hours.
        state
            .limits
            .not_a_guess(attempt)
            .await
            .map_err(Refusal::sign_in_error)?;
        tracing::info!(target: "classchat::login", class = %class.id, client = %client, outcome = "class_closed", "sign-in refused");
        return Err(closed);
    }
    if let Err(refusal) = state.limits.signed_in(attempt).await {
        tracing::warn!(target: "classchat::login", class = %class.id, client = %client, outcome = ?refusal, "sign-in refused");
        return Err(refusal.sign_in_error());
    }
    let (session_id, response) = match student {
        None => start_session(&state, class, display_name)?,
        Some(code) => {
            // The teacher's name for the student, never a typed one.
            let key = crate::allowances::code_student(&code.id);
            let started = start_session_as(
                &state,
                class,
                clean_display_name(Some(code.name))?,
                Some(key),
            )?;
            let ends = now_secs() + state.settings.session_max_age.as_secs() as i64;
            state
                .store
                .record_personal_code_session(&started.0, &code.id, &class.id, ends, now_secs())
                .await
                .map_err(AppError::DatabaseAway)?;
            started
        }
    };
    tracing::info!(target: "classchat::login", class = %class.id, session = %session_id, client = %client, outcome = "ok", "signed in");
    Ok((StatusCode::OK, AppJson(response)))
}

/// The personal code `input` is, if any, with the class it signs in to (`None` when that
/// class is gone: a wrong code, as far as the student can tell).
async fn personal_code<'a>(
    state: &AppState,
    classes: &'a crate::classes::ClassList,
    input: &str,
) -> Result<(
    Option<&'a Class>,
    Option<crate::store::personal_codes::PersonalCodeRecord>,
)> {
    let found = crate::personal_codes::find(&state.store, state.classes.code_keys(), input)
        .await
        .map_err(AppError::DatabaseAway)?;
    Ok(match found {
        Some(code) => match classes.get(&code.class_id) {
            Some(class) => (Some(class), Some(code)),
            None => (None, None),
        },
        None => (None, None),
    })
}

/// A new widget session in `class` for someone already admitted (a right access code, or
/// a verified LTI launch): its token and its row for the dashboard. Returns the session id.
pub(crate) fn start_session(
    state: &AppState,
    class: &Class,
    display_name: Option<String>,
) -> Result<(String, SessionResponse)> {
    start_session_as(state, class, display_name, None)
}

/// [`start_session`] for a student known by identity: `student` is their key (see
/// `allowances::code_student`, `allowances::lti_student`), which their allowance follows
/// across sessions, devices and replicas.
pub(crate) fn start_session_as(
    state: &AppState,
    class: &Class,
    display_name: Option<String>,
    student: Option<String>,
) -> Result<(String, SessionResponse)> {
    let now = now_secs();
    let session_id = uuid::Uuid::new_v4().to_string();
    let claims = Claims {
        sub: session_id.clone(),
        cls: class.key(),
        name: display_name,
        cfp: code_fingerprint(&state.keys.current.secret, class),
        stu: student,
        sat: now,
        iat: now,
        exp: token_expiry(now, now, class.token_ttl, state.settings.session_max_age),
        aud: AUDIENCE.into(),
        iss: ISSUER.into(),
    };
    let response = issue(state, class, &claims)?;
    state.usage.session(SessionRow {
        session_id: session_id.clone(),
        class_id: class.id.clone(),
        display_name: claims.name.clone(),
        started_at_ms: now * 1000,
    });
    Ok((session_id, response))
}

fn issue(state: &AppState, class: &Class, claims: &Claims) -> Result<SessionResponse> {
    Ok(SessionResponse {
        token: state.keys.sign(claims)?,
        expires_at: claims.exp,
        session_expires_at: claims.sat + state.settings.session_max_age.as_secs() as i64,
        class: ClassInfo {
            id: class.id.clone(),
            title: class.title.clone(),
            greeting: class.greeting.clone(),
            starters: class.starters.clone(),
        },
        visibility: class.visibility,
    })
}

async fn refresh_session(
    State(state): State<AppState>,
    session: AuthSession,
) -> Result<AppJson<SessionResponse>> {
    let AuthSession { claims, class } = session;
    let now = now_secs();
    let exp = token_expiry(
        now,
        claims.sat,
        class.token_ttl,
        state.settings.session_max_age,
    );
    if exp <= now {
        return Err(AppError::Token(TokenProblem::Expired));
    }
    let claims = Claims {
        iat: now,
        exp,
        cfp: code_fingerprint(&state.keys.current.secret, &class),
        ..claims
    };
    Ok(AppJson(issue(&state, &class, &claims)?))
}

async fn delete_session(
    State(state): State<AppState>,
    SigningOut(session): SigningOut,
) -> Result<StatusCode> {
    let c = &session.claims;
    let ends = c.sat + state.settings.session_max_age.as_secs() as i64;
    state
        .store
        .revoke_session(&c.sub, &c.cls, ends, "logout", now_secs())
        .await?;
    state.revoked.insert_until(c.sub.clone(), ends);
    state
        .store
        .notify(&crate::sync::revoked_event(&c.sub, ends))
        .await;
    tracing::info!(target: "classchat::login", class = %c.cls, session = %c.sub, outcome = "signed_out", "signed out");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_lose_bidi_and_zero_width_characters() {
        // "Mei" with a right-to-left override that would show "ieM ..." reversed, a
        // zero-width space and a byte-order mark.
        let name = clean_display_name(Some(
            "\u{202E}Mei\u{200B} \u{2066}Lin\u{2069}\u{FEFF}".into(),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(name, "Mei Lin");
        assert_eq!(
            clean_display_name(Some("\u{200D}\u{200F}".into())).unwrap(),
            None
        );
        // Letters of right-to-left scripts stay: only the invisible controls go.
        assert_eq!(
            clean_display_name(Some("مريم".into())).unwrap().as_deref(),
            Some("مريم")
        );
    }
}
