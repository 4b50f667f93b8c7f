//! Every check the 1EdTech Security Framework 1.0 (§5.1.3) and LTI Core 1.3 (§5.3) name for
//! an LTI launch's `id_token`, in one function, each failure its own [`LaunchError`].
//!
//! Order: the header (RS256 with a `kid`, before any key is looked up), the signature with
//! the key of that `kid` from the *registration's* keyset (never a URL or key the token
//! names), `iss`, `aud`/`azp`, `exp`/`iat`, the nonce issued with this login, then the LTI
//! claims. Only the claims classchat uses are returned: the token itself, email and `lis`
//! (SIS ids) are dropped here.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use super::error::LaunchError;
use crate::jwks::{HeaderProblem, KeyError, KeySetCache, clip, rs256_kid};

/// Clock skew forgiven on `exp` and `iat`.
pub const LEEWAY_SECS: i64 = 60;

pub const LTI: &str = "https://purl.imsglobal.org/spec/lti/claim/";
pub const DL: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/";
pub const RESOURCE_LINK_REQUEST: &str = "LtiResourceLinkRequest";
pub const DEEP_LINKING_REQUEST: &str = "LtiDeepLinkingRequest";

/// What this launch must match: the registration and the login that started it.
#[derive(Debug)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub target_link_uri: &'a str,
    /// `lti_deployment_id` of the login, when the platform sent one.
    pub login_deployment: Option<&'a str>,
    pub now: i64,
    /// How old `iat` may be: the login's lifetime.
    pub max_age_secs: i64,
}

/// The message, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    ResourceLink {
        resource_link_id: String,
    },
    DeepLinking {
        return_url: String,
        /// `data` to echo unchanged (DL §4.4.1).
        data: Option<Value>,
        accepts_resource_link: bool,
    },
}

/// What classchat keeps of a verified launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub message: Message,
    pub sub: String,
    pub deployment_id: String,
    pub roles: Vec<String>,
    pub context_id: Option<String>,
    pub context_title: Option<String>,
    /// `name`, else `given_name`: the widget session's display name only.
    pub name: Option<String>,
    pub locale: Option<String>,
}

impl Launch {
    /// Context roles that manage the class (Core §A.2.2): Instructor or Administrator, in
    /// the full form, as a sub-role, or in the deprecated short form. Institution and
    /// system roles grant nothing.
    pub fn is_instructor(&self) -> bool {
        self.roles.iter().any(|r| {
            let r = r.as_str();
            let ctx = "http://purl.imsglobal.org/vocab/lis/v2/membership";
            let short = matches!(r, "Instructor" | "Administrator");
            let full = r.strip_prefix(ctx).is_some_and(|rest| {
                rest == "#Instructor"
                    || rest == "#Administrator"
                    || rest.starts_with("/Instructor#")
                    || rest.starts_with("/Administrator#")
            });
            short || full
        })
    }
}

/// Checks a launch's `id_token` against the registration's keys and the login.
pub async fn verify(
    token: &str,
    keys: &KeySetCache,
    exp: &Expected<'_>,
) -> Result<Launch, LaunchError> {
    let kid = rs256_kid(token).map_err(|p| match p {
        HeaderProblem::Malformed => LaunchError::Malformed,
        HeaderProblem::WrongAlgorithm(alg) => LaunchError::WrongAlgorithm(alg),
        HeaderProblem::NoKid => LaunchError::NoKid,
    })?;
    let key = keys.key_for(&kid).await.map_err(|e| match e {
        KeyError::UnknownKey(kid) => LaunchError::UnknownKid(kid),
        KeyError::Unreachable(reason) => LaunchError::KeysUnreachable(reason),
    })?;
    let mut v = Validation::new(Algorithm::RS256);
    // exp, iat and aud are checked below, each with its own error.
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let claims: Value = jsonwebtoken::decode::<Value>(token, &key, &v)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => LaunchError::BadSignature,
            _ => LaunchError::Malformed,
        })?
        .claims;
    let c = claims.as_object().ok_or(LaunchError::Malformed)?;
    let text = |name: &str| {
        c.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let lti = |name: &str| c.get(&format!("{LTI}{name}"));

    // Security Framework §5.1.3: iss, aud, azp, exp, iat, nonce.
    match c.get("iss").and_then(Value::as_str) {
        Some(iss) if iss == exp.issuer => {}
        Some(iss) => return Err(LaunchError::WrongIssuer(clip(iss))),
        None => return Err(LaunchError::MissingClaim("iss")),
    }
    let audiences: Vec<&str> = match c.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        Some(_) => return Err(LaunchError::Malformed),
        None => return Err(LaunchError::MissingClaim("aud")),
    };
    if !audiences.contains(&exp.client_id) {
        return Err(LaunchError::WrongAudience);
    }
    match c.get("azp").map(|a| a.as_str()) {
        Some(Some(azp)) if azp == exp.client_id => {}
        Some(_) => return Err(LaunchError::WrongAzp),
        None if audiences.len() > 1 => return Err(LaunchError::AzpMissing),
        None => {}
    }
    let exp_at = c
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(LaunchError::MissingClaim("exp"))?;
    if exp_at + LEEWAY_SECS < exp.now {
        return Err(LaunchError::Expired);
    }
    let iat = c
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or(LaunchError::MissingClaim("iat"))?;
    if iat > exp.now + LEEWAY_SECS {
        return Err(LaunchError::IssuedInFuture);
    }
    if iat < exp.now - exp.max_age_secs - LEEWAY_SECS {
        return Err(LaunchError::IssuedTooLongAgo);
    }
    match text("nonce") {
        Some(n) if n == exp.nonce => {}
        Some(_) => return Err(LaunchError::NonceMismatch),
        None => return Err(LaunchError::MissingClaim("nonce")),
    }

    // LTI Core §5.3: message type, version, deployment, target link, sub, roles.
    let message_type = lti("message_type")
        .and_then(Value::as_str)
        .ok_or(LaunchError::MissingMessageType)?;
    if message_type != RESOURCE_LINK_REQUEST && message_type != DEEP_LINKING_REQUEST {
        return Err(LaunchError::WrongMessageType(clip(message_type)));
    }
    match lti("version").and_then(Value::as_str) {
        Some("1.3.0") => {}
        Some(other) => return Err(LaunchError::WrongVersion(clip(other))),
        None => return Err(LaunchError::WrongVersion(String::new())),
    }
    let deployment_id = lti("deployment_id")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .ok_or(LaunchError::MissingClaim("deployment_id"))?;
    if exp.login_deployment.is_some_and(|d| d != deployment_id) {
        return Err(LaunchError::DeploymentMismatch);
    }
    match lti("target_link_uri").and_then(Value::as_str) {
        Some(t) if t == exp.target_link_uri => {}
        Some(_) => return Err(LaunchError::TargetLinkMismatch),
        None => return Err(LaunchError::MissingClaim("target_link_uri")),
    }
    // An anonymous launch (Core §5.3.6.1) cannot be a student of a class.
    let sub = text("sub").ok_or(LaunchError::MissingSub)?;
    let roles: Vec<String> = match lti("roles") {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => return Err(LaunchError::MissingRoles),
    };
    let message = if message_type == RESOURCE_LINK_REQUEST {
        let id = lti("resource_link")
            .and_then(|r| r.get("id"))
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or(LaunchError::MissingResourceLinkId)?;
        Message::ResourceLink {
            resource_link_id: id.to_owned(),
        }
    } else {
        let settings = c
            .get(&format!("{DL}deep_linking_settings"))
            .ok_or(LaunchError::MissingClaim("deep_linking_settings"))?;
        let return_url = settings
            .get("deep_link_return_url")
            .and_then(Value::as_str)
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
            .ok_or(LaunchError::MissingClaim("deep_link_return_url"))?;
        let accepts_resource_link = settings
            .get("accept_types")
            .and_then(Value::as_array)
            .is_none_or(|types| types.iter().any(|t| t == "ltiResourceLink"));
        Message::DeepLinking {
            return_url: return_url.to_owned(),
            data: settings.get("data").cloned(),
            accepts_resource_link,
        }
    };
    let context = lti("context");
    let ctx_text = |name: &str| {
        context
            .and_then(|x| x.get(name))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Ok(Launch {
        message,
        sub: sub.to_owned(),
        deployment_id: deployment_id.to_owned(),
        roles,
        context_id: ctx_text("id"),
        context_title: ctx_text("title"),
        name: text("name")
            .or_else(|| text("given_name"))
            .map(str::to_owned),
        locale: lti("launch_presentation")
            .and_then(|p| p.get("locale"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}
