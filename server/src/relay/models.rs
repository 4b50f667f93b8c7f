//! The models the server's key can use: Open WebUI's `GET /api/models`, the list
//! `classchat check` reads, kept for a few minutes so the dashboard's model picker and the
//! admin API's checks of a class's `model` do not ask Open WebUI on every page.
//!
//! [`ModelList::get`] answers from the cache while it is fresh ([`FRESH_FOR`]) and asks
//! again otherwise; [`ModelList::refresh`] asks now. A failure is kept for a short while
//! ([`FAILURE_KEPT_FOR`]) so a stretch of saves while Open WebUI is down does not wait out a
//! timeout each, and is explained in a sentence for the teacher ([`ModelsError`]). Calls
//! that arrive while one is asking wait for that answer rather than asking too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::basics::error_chain;
use crate::config::{OpenWebUi, OutboundProxy, UpstreamSettings};

use super::upstream::{classify_status, secret_headers};

/// How long a fetched list is used before asking again.
pub const FRESH_FOR: Duration = Duration::from_secs(5 * 60);
/// How long a failure is answered from the cache.
pub const FAILURE_KEPT_FOR: Duration = Duration::from_secs(15);
/// A whole `GET /api/models`, connection included.
const ASK_LIMIT: Duration = Duration::from_secs(10);

/// One model the key may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ModelInfo {
    /// What a class's `model` names.
    pub id: String,
    /// Open WebUI's display name (the id when it has none).
    pub name: String,
}

/// Why the list cannot be had. Each sentence says what to change, and none carries a
/// secret (the key and the Access token are only ever in sensitive headers).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelsError {
    /// Demo mode: no Open WebUI, and the built-in responder answers whatever the model.
    #[error("no OPEN_WEBUI_URL: the built-in demo responder answers, whatever the model is called")]
    NoOpenWebUi,
    /// No answer: down, unreachable, timed out.
    #[error("{0}")]
    Unreachable(String),
    /// Cloudflare Access or Open WebUI refused the server's credentials.
    #[error("{0}")]
    Refused(String),
    /// An answer that is not the model list.
    #[error("{0}")]
    Unexpected(String),
}

/// What a `model` setting is, measured against the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelCheck {
    /// The key can use it.
    Known,
    /// The list was had and does not hold it; the list is attached, for the error.
    Unknown(Arc<Vec<ModelInfo>>),
    /// The list could not be had, so the model could not be checked.
    Unchecked(ModelsError),
}

/// The cached list; one per server, in [`crate::state::AppState`].
#[derive(Debug)]
pub struct ModelList {
    source: Source,
    fresh_for: Duration,
    /// The last answer and when it came; the lock is held while asking.
    cache: tokio::sync::Mutex<Option<(Instant, Answer)>>,
}

type Answer = Result<Arc<Vec<ModelInfo>>, ModelsError>;

#[derive(Debug)]
enum Source {
    Demo,
    OpenWebUi { url: String, http: reqwest::Client },
}

impl ModelList {
    /// The list for this upstream, asked through the same outbound proxy and with the same
    /// secret headers as the relay.
    pub fn new(
        settings: &UpstreamSettings,
        connect: Duration,
        proxy: &OutboundProxy,
    ) -> anyhow::Result<Self> {
        let source = match settings {
            UpstreamSettings::Demo => Source::Demo,
            UpstreamSettings::OpenWebUi(o) => Source::OpenWebUi {
                url: models_url(o),
                http: client(o, connect, proxy)?,
            },
        };
        Ok(Self {
            source,
            fresh_for: FRESH_FOR,
            cache: tokio::sync::Mutex::new(None),
        })
    }

    /// The same list with another freshness (tests).
    pub fn with_fresh_for(mut self, fresh_for: Duration) -> Self {
        self.fresh_for = fresh_for;
        self
    }

    /// The models, from the cache while it is fresh.
    pub async fn get(&self) -> Result<Arc<Vec<ModelInfo>>, ModelsError> {
        let mut cache = self.cache.lock().await;
        if let Some((at, answer)) = &*cache {
            let kept = if answer.is_ok() {
                self.fresh_for
            } else {
                FAILURE_KEPT_FOR.min(self.fresh_for)
            };
            if at.elapsed() < kept {
                return answer.clone();
            }
        }
        let answer = self.ask().await;
        *cache = Some((Instant::now(), answer.clone()));
        answer
    }

    /// Asks Open WebUI now, whatever the cache holds.
    pub async fn refresh(&self) -> Result<Arc<Vec<ModelInfo>>, ModelsError> {
        let mut cache = self.cache.lock().await;
        let answer = self.ask().await;
        *cache = Some((Instant::now(), answer.clone()));
        answer
    }

    /// Whether `model` is one the key can use.
    pub async fn check(&self, model: &str) -> ModelCheck {
        match self.get().await {
            Ok(list) if list.iter().any(|m| m.id == model) => ModelCheck::Known,
            Ok(list) => ModelCheck::Unknown(list),
            Err(e) => ModelCheck::Unchecked(e),
        }
    }

    async fn ask(&self) -> Answer {
        let (url, http) = match &self.source {
            Source::Demo => return Err(ModelsError::NoOpenWebUi),
            Source::OpenWebUi { url, http } => (url, http),
        };
        let resp = http.get(url).send().await.map_err(|e| {
            ModelsError::Unreachable(format!(
                "Open WebUI did not answer GET /api/models ({}): check that it runs and that OPEN_WEBUI_URL points at it",
                error_chain(&e)
            ))
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| {
            ModelsError::Unreachable(format!(
                "Open WebUI's answer to GET /api/models broke off ({})",
                error_chain(&e)
            ))
        })?;
        explain(status, &headers, &body).map(Arc::new)
    }
}

/// `{OPEN_WEBUI_URL}/api/models`.
pub fn models_url(o: &OpenWebUi) -> String {
    let base = o.completions_url.trim_end_matches("/api/chat/completions");
    format!("{base}/api/models")
}

/// A client with the secret headers and the relay's proxy rules, never following redirects
/// (Access's 302 to its login page is an answer).
fn client(
    o: &OpenWebUi,
    connect: Duration,
    proxy: &OutboundProxy,
) -> anyhow::Result<reqwest::Client> {
    Ok(proxy
        .apply(reqwest::Client::builder())?
        .user_agent(concat!("classchat/", env!("CARGO_PKG_VERSION")))
        .default_headers(secret_headers(o)?)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect)
        .timeout(ASK_LIMIT)
        .build()?)
}

/// The list from an answer to `GET /api/models`, or what the answer means.
pub fn explain(
    status: u16,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<Vec<ModelInfo>, ModelsError> {
    if (200..300).contains(&status) {
        return parse(body).ok_or_else(|| {
            ModelsError::Unexpected(
                "GET /api/models did not answer with Open WebUI's model list: OPEN_WEBUI_URL must be the address Open WebUI opens at, without /api or any other path".into(),
            )
        });
    }
    let log = classify_status(status, headers, body, "").log;
    if log.starts_with("Cloudflare Access") {
        return Err(ModelsError::Refused(log));
    }
    match status {
        401 | 403 => Err(ModelsError::Refused(format!(
            "Open WebUI refused the API key ({status}): check OPEN_WEBUI_API_KEY, and that API keys are enabled in Admin Panel > Settings > General"
        ))),
        _ => Err(ModelsError::Unexpected(format!("GET /api/models: {log}"))),
    }
}

/// `{"data": [{"id": …, "name": …}, …]}`: the models the key's user may use.
pub fn parse(body: &[u8]) -> Option<Vec<ModelInfo>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    Some(
        v.get("data")?
            .as_array()?
            .iter()
            .filter_map(|m| {
                let id = m.get("id").and_then(Value::as_str)?.to_owned();
                let name = m
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| !n.trim().is_empty())
                    .map_or_else(|| id.clone(), str::to_owned);
                Some(ModelInfo { id, name })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use classchat_fake_upstream::{FakeConfig, FakeUpstream};
    use secrecy::SecretString;

    fn settings(url: &str, key: &str) -> UpstreamSettings {
        UpstreamSettings::OpenWebUi(OpenWebUi {
            completions_url: format!("{url}/api/chat/completions"),
            api_key: Some(SecretString::from(key.to_owned())),
            cf_access: None,
        })
    }

    #[test]
    fn the_list_reads_ids_and_names() {
        let body = br#"{"data":[{"id":"a","name":"Model A"},{"id":"b"},{"name":"no id"}]}"#;
        assert_eq!(
            parse(body).unwrap(),
            [
                ModelInfo {
                    id: "a".into(),
                    name: "Model A".into()
                },
                ModelInfo {
                    id: "b".into(),
                    name: "b".into()
                },
            ]
        );
        assert!(parse(b"<html>").is_none());
    }

    #[tokio::test]
    async fn the_list_is_cached_refreshed_on_demand_and_failures_are_explained() {
        let fake = FakeUpstream::spawn(FakeConfig::default()).await;
        let key = FakeConfig::default().api_key;
        let list = ModelList::new(
            &settings(&fake.url(), &key),
            Duration::from_secs(2),
            &OutboundProxy::default(),
        )
        .unwrap();
        let ids = |l: &[ModelInfo]| l.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&list.get().await.unwrap()), ["test-model"]);
        assert_eq!(list.check("test-model").await, ModelCheck::Known);
        fake.configure(|c| c.models = vec!["test-model".into(), "new-model".into()]);
        // Fresh: the cache answers, so the new model is not seen yet…
        assert!(matches!(
            list.check("new-model").await,
            ModelCheck::Unknown(_)
        ));
        // …until asked again.
        assert_eq!(
            ids(&list.refresh().await.unwrap()),
            ["test-model", "new-model"]
        );
        assert_eq!(list.check("new-model").await, ModelCheck::Known);
        // A list that is never fresh is asked for on every call.
        let stale = ModelList::new(
            &settings(&fake.url(), &key),
            Duration::from_secs(2),
            &OutboundProxy::default(),
        )
        .unwrap()
        .with_fresh_for(Duration::ZERO);
        assert_eq!(stale.get().await.unwrap().len(), 2);
        fake.configure(|c| c.models = vec!["only-model".into()]);
        assert_eq!(ids(&stale.get().await.unwrap()), ["only-model"]);
        assert_eq!(
            list.get().await.unwrap().len(),
            2,
            "the fresh one kept its list"
        );

        // A wrong key is refused, and the sentence names the setting, not the key.
        let wrong = ModelList::new(
            &settings(&fake.url(), "sk-wrong-key-000000000000000000000"),
            Duration::from_secs(2),
            &OutboundProxy::default(),
        )
        .unwrap();
        let e = wrong.get().await.unwrap_err();
        assert!(matches!(e, ModelsError::Refused(_)), "{e:?}");
        assert!(e.to_string().contains("OPEN_WEBUI_API_KEY"), "{e}");
        assert!(!e.to_string().contains("sk-wrong"), "{e}");
        assert!(matches!(
            wrong.check("test-model").await,
            ModelCheck::Unchecked(ModelsError::Refused(_))
        ));

        // Nothing listens: unreachable, explained.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let down = ModelList::new(
            &settings(&format!("http://127.0.0.1:{port}"), &key),
            Duration::from_secs(2),
            &OutboundProxy::default(),
        )
        .unwrap();
        let e = down.get().await.unwrap_err();
        assert!(matches!(e, ModelsError::Unreachable(_)), "{e:?}");
        assert!(e.to_string().contains("OPEN_WEBUI_URL"), "{e}");

        // Demo mode has no list to check against.
        let demo = ModelList::new(
            &UpstreamSettings::Demo,
            Duration::from_secs(2),
            &OutboundProxy::default(),
        )
        .unwrap();
        assert_eq!(demo.get().await.unwrap_err(), ModelsError::NoOpenWebUi);
    }
}
