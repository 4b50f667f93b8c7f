//! The admin JSON API under `/api/v1/admin/` (and `/api/v1/invitations/accept`): what the
//! dashboard does, for scripts. Authenticated by personal access tokens
//! (`Authorization: Bearer cc_pat_…`); errors in the widget's shape
//! (`{"error": {"code", "message"}}`). The OpenAPI document at `/api/v1/openapi.json` is
//! collected from the handlers themselves (utoipa-axum), so it cannot drift from the routes.
//!
//! Who may do what is decided by extractors: [`ApiCaller`] (a token in force of an enabled
//! teacher or of the administrator) and [`ClassAccess`] / [`ActivityAccess`] (the caller's
//! role in the class the path names; a class the caller is not a member of is 404, as if
//! it did not exist). Every change goes through one store call that also writes its audit
//! line, then reaches every replica's class registry (see [`crate::sync::classes_changed`]).

mod alerts;
mod classes;
mod conversations;
mod error;
mod lti;
mod models;
mod students;
mod teachers;

pub(crate) use teachers::accept as accept_invitation;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::basics::now_ms;
use crate::client_addr::ClientAddr;
use crate::state::AppState;
use crate::store::teachers::{ActivityRecord, Audit, ClassRecord};
use crate::teachers::{Caller, Need, Role, allows, looks_like_token, secret_digest};
pub use error::{ApiFailure, ApiJson, ApiQuery, ErrorBody};

/// The document's frame; the paths come from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "classchat admin API",
        description = "Classes, activities, members, teachers and usage, for scripts. \
            Authenticate with `Authorization: Bearer cc_pat_…` (a personal access token)."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "teachers", description = "Teachers, invitations and tokens"),
        (name = "classes", description = "Classes, members, activities and usage"),
        (name = "conversations", description = "Stored conversations and who read them"),
        (name = "alerts", description = "Safety alerts, safety contacts and help resources"),
        (name = "lti", description = "LTI 1.3 platforms (administrator)"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "password",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    }
}

/// Every route of the API and the document that describes them.
pub(crate) fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(teachers::list_teachers, teachers::invite_teacher))
        .routes(routes!(teachers::update_teacher))
        .routes(routes!(teachers::accept_invitation))
        .routes(routes!(teachers::list_tokens, teachers::create_token))
        .routes(routes!(teachers::delete_token))
        .routes(routes!(teachers::read_audit))
        .routes(routes!(classes::list_classes, classes::create_class))
        .routes(routes!(
            classes::get_class,
            classes::update_class,
            classes::delete_class
        ))
        .routes(routes!(classes::list_members))
        .routes(routes!(classes::put_member, classes::delete_member))
        .routes(routes!(classes::create_activity))
        .routes(routes!(classes::update_activity))
        .routes(routes!(classes::rotate_activity_code))
        .routes(routes!(classes::class_usage))
        .routes(routes!(conversations::list_conversations))
        .routes(routes!(conversations::open_one))
        .routes(routes!(conversations::list_reads))
        .routes(routes!(conversations::export_session))
        .routes(routes!(conversations::erase_session))
        .routes(routes!(conversations::end_of_term))
        .routes(routes!(alerts::list_alerts))
        .routes(routes!(alerts::get_alert))
        .routes(routes!(alerts::dismiss_alert))
        .routes(routes!(alerts::get_safety, alerts::put_safety))
        .routes(routes!(lti::list_platforms, lti::create_platform))
        .routes(routes!(lti::put_deployments))
        .routes(routes!(lti::delete_platform))
        .routes(routes!(lti::tool_values))
        .routes(routes!(lti::rotate_tool_key))
        .routes(routes!(
            students::list_personal_codes,
            students::create_personal_codes
        ))
        .routes(routes!(students::revoke_personal_code))
        .routes(routes!(students::reissue_personal_code))
        .routes(routes!(students::get_allowance, students::put_allowance))
        .routes(routes!(students::reset_allowance))
        .routes(routes!(models::list_models))
        .split_for_parts()
}

pub(crate) fn router() -> Router<AppState> {
    let (router, doc) = routes();
    let doc = Arc::new(doc);
    router.route(
        "/api/v1/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { axum::Json(doc.as_ref().clone()) }
        }),
    )
}

/// The OpenAPI document, as `GET /api/v1/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}

/// A request with a personal access token in force, of the administrator or of an
/// enabled teacher. The token is looked up on every request, so a revoked token or a
/// disabled teacher stops at once on every replica.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub caller: Caller,
    /// The client's address, for the audit log.
    pub address: Option<String>,
}

impl ApiCaller {
    /// The audit columns for a change made now by this caller.
    fn audit<'a>(&'a self, actor: &'a str) -> Audit<'a> {
        Audit {
            actor,
            address: self.address.as_deref(),
            now_ms: now_ms(),
        }
    }

    fn require_administrator(&self) -> Result<(), ApiFailure> {
        if self.caller.is_administrator() {
            Ok(())
        } else {
            Err(ApiFailure::Forbidden(
                "Only the administrator may do this.".into(),
            ))
        }
    }
}

pub(crate) async fn client_address(parts: &mut Parts, state: &AppState) -> Option<String> {
    let Ok(ClientAddr(ip)) = ClientAddr::from_request_parts(parts, state).await;
    ip.map(|ip| ip.to_string())
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiFailure> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or(ApiFailure::Unauthorized(
                "Send a personal access token: Authorization: Bearer cc_pat_….",
            ))?;
        if !looks_like_token(token) {
            return Err(ApiFailure::Unauthorized(
                "That is not a valid personal access token.",
            ));
        }
        let owner = state
            .store
            .token_owner(&secret_digest(token), now_ms())
            .await?
            .ok_or(ApiFailure::Unauthorized(
                "That token is not valid (it may have been revoked).",
            ))?;
        if owner.disabled != 0 {
            return Err(ApiFailure::Unauthorized(
                "This teacher account is disabled.",
            ));
        }
        let caller = match (owner.teacher_id, owner.email) {
            (Some(id), Some(email)) => Caller::Teacher {
                id,
                email,
                token_id: owner.id,
            },
            (None, _) => Caller::Administrator { token_id: owner.id },
            // A token whose teacher was removed.
            (Some(_), None) => {
                return Err(ApiFailure::Unauthorized("That token is not valid."));
            }
        };
        Ok(Self {
            caller,
            address: client_address(parts, state).await,
        })
    }
}

/// The caller and what they may do in the class the path's `{id}` names. A teacher who is
/// not a member gets 404, the same as for a class that does not exist.
#[derive(Debug, Clone)]
pub struct ClassAccess {
    pub who: ApiCaller,
    pub class: ClassRecord,
    /// `None`: the administrator (everything, everywhere).
    pub role: Option<Role>,
}

impl ClassAccess {
    /// Refuses (403) what the caller's role does not allow.
    pub fn require(&self, need: Need) -> Result<(), ApiFailure> {
        match self.role {
            None => Ok(()),
            Some(role) if allows(role, need) => Ok(()),
            Some(role) => Err(ApiFailure::Forbidden(format!(
                "A class's {} may not do this.",
                role.as_str().replace('_', "-")
            ))),
        }
    }
}

async fn path_id(parts: &mut Parts, state: &AppState) -> Result<String, ApiFailure> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiFailure::NotFound)?;
    params
        .iter()
        .find(|(k, _)| *k == "id")
        .map(|(_, v)| v.to_owned())
        .ok_or(ApiFailure::NotFound)
}

/// The caller's role in a class, or 404 when they may not see it.
async fn access(
    state: &AppState,
    who: ApiCaller,
    class_id: &str,
) -> Result<ClassAccess, ApiFailure> {
    let class = state
        .store
        .class(class_id)
        .await?
        .ok_or(ApiFailure::NotFound)?;
    let role = match who.caller.teacher_id() {
        None => None,
        Some(t) => Some(
            state
                .store
                .member_role(class_id, t)
                .await?
                .ok_or(ApiFailure::NotFound)?,
        ),
    };
    Ok(ClassAccess { who, class, role })
}

impl FromRequestParts<AppState> for ClassAccess {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiFailure> {
        let who = ApiCaller::from_request_parts(parts, state).await?;
        let id = path_id(parts, state).await?;
        access(state, who, &id).await
    }
}

/// The caller, the activity the path's `{id}` names, and their role in its class.
#[derive(Debug, Clone)]
pub struct ActivityAccess {
    pub class: ClassAccess,
    pub activity: ActivityRecord,
}

impl FromRequestParts<AppState> for ActivityAccess {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiFailure> {
        let who = ApiCaller::from_request_parts(parts, state).await?;
        let id = path_id(parts, state).await?;
        let activity = state
            .store
            .activity(&id)
            .await?
            .ok_or(ApiFailure::NotFound)?;
        let class = access(state, who, &activity.class_id).await?;
        Ok(Self { class, activity })
    }
}
