//! `GET /api/v1/admin/models`: the models the server's key can use, for a script or the
//! dashboard's model picker to choose a class's `model` from. The list is the cached one
//! of [`crate::relay::models::ModelList`].

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiCaller, ApiFailure, ApiJson, ApiQuery, ErrorBody};
use crate::relay::models::{ModelCheck, ModelInfo, ModelsError};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ModelsQuery {
    /// `true`: ask Open WebUI now rather than answer from the list kept for five minutes.
    #[serde(default)]
    pub refresh: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ModelsView {
    /// The models a class or activity's `model` may name.
    pub models: Vec<ModelInfo>,
    /// Why the list is empty when there is no Open WebUI to ask (demo mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The models the server's Open WebUI key can use (any signed-in teacher).
#[utoipa::path(get, path = "/api/v1/admin/models", tag = "classes",
    params(ModelsQuery),
    responses((status = 200, body = ModelsView),
        (status = 401, body = ErrorBody),
        (status = 502, body = ErrorBody, description = "Open WebUI could not be asked; the message says why")),
    security(("token" = [])))]
pub(super) async fn list_models(
    State(state): State<AppState>,
    _who: ApiCaller,
    ApiQuery(q): ApiQuery<ModelsQuery>,
) -> Result<ApiJson<ModelsView>, ApiFailure> {
    let answer = if q.refresh {
        state.models.refresh().await
    } else {
        state.models.get().await
    };
    match answer {
        Ok(list) => Ok(ApiJson(ModelsView {
            models: list.as_ref().clone(),
            note: None,
        })),
        Err(e @ ModelsError::NoOpenWebUi) => Ok(ApiJson(ModelsView {
            models: Vec::new(),
            note: Some(e.to_string()),
        })),
        Err(e) => Err(ApiFailure::ModelsUnavailable(e.to_string())),
    }
}

/// Checks a `model` about to be saved against the list. An unknown model is refused
/// naming it and some that exist; when the list cannot be had the model is accepted and
/// the reason is returned, for the answer's `warnings` (and the log).
pub(super) async fn check_model(
    state: &AppState,
    field: &str,
    model: Option<&str>,
) -> Result<Option<String>, ApiFailure> {
    let Some(model) = model else {
        return Ok(None);
    };
    match state.models.check(model).await {
        ModelCheck::Known => Ok(None),
        ModelCheck::Unknown(list) => {
            let some: Vec<&str> = list.iter().take(12).map(|m| m.id.as_str()).collect();
            let choices = if some.is_empty() {
                "the server's key can use no model at all".to_owned()
            } else {
                format!("the server's key can use: {}", some.join(", "))
            };
            Err(ApiFailure::Invalid {
                code: "unknown_model",
                message: format!(
                    "{field} {model:?} is not a model the server's Open WebUI key can use ({choices}; GET /api/v1/admin/models lists them all)."
                ),
            })
        }
        ModelCheck::Unchecked(ModelsError::NoOpenWebUi) => Ok(None),
        ModelCheck::Unchecked(e) => {
            tracing::warn!(model, error = %e, "admin API: a model was saved unchecked");
            Ok(Some(format!(
                "{field} {model:?} was saved without being checked: the list of models could not be had ({e})."
            )))
        }
    }
}
