//! The dashboard's language: English or Traditional Chinese (Taiwan). Chosen by a link
//! (`?lang=en` or `?lang=zh-TW`, remembered in a cookie), else by the browser's
//! `Accept-Language`. Pages take every sentence in both languages through [`Lang::t`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};

use super::session::cookie;

/// The cookie that remembers a chosen language (not a secret).
pub(crate) const LANG_COOKIE: &str = "classchat_admin_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Lang {
    #[default]
    En,
    ZhTw,
}

impl Lang {
    /// The `lang` attribute and the `?lang=` value.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::ZhTw => "zh-TW",
        }
    }

    /// The sentence in this language.
    pub(crate) fn t<'a>(self, en: &'a str, zh: &'a str) -> &'a str {
        match self {
            Self::En => en,
            Self::ZhTw => zh,
        }
    }

    /// The other language, for the switch link, and its name in itself.
    pub(crate) fn other(self) -> (Self, &'static str) {
        match self {
            Self::En => (Self::ZhTw, "繁體中文"),
            Self::ZhTw => (Self::En, "English"),
        }
    }

    fn parse(v: &str) -> Option<Self> {
        let v = v.trim().to_ascii_lowercase();
        if v == "en" || v.starts_with("en-") {
            Some(Self::En)
        } else if v.starts_with("zh") {
            Some(Self::ZhTw)
        } else {
            None
        }
    }

    /// From the query's `lang`, then the cookie, then `Accept-Language`; with whether the
    /// query chose it (then the answer sets the cookie).
    pub(crate) fn pick(query: Option<&str>, headers: &HeaderMap) -> (Self, bool) {
        let asked = query.and_then(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "lang")
                .and_then(|(_, v)| Self::parse(v))
        });
        if let Some(l) = asked {
            return (l, true);
        }
        if let Some(l) = cookie(headers, LANG_COOKIE).and_then(Self::parse) {
            return (l, false);
        }
        let accept = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // The first language the browser names that we speak.
        let l = accept
            .split(',')
            .filter_map(|part| Self::parse(part.split(';').next().unwrap_or("")))
            .next()
            .unwrap_or_default();
        (l, false)
    }

    /// The cookie that remembers this choice.
    pub(crate) fn cookie(self) -> HeaderValue {
        HeaderValue::from_str(&format!(
            "{LANG_COOKIE}={}; Path=/admin; SameSite=Lax; Max-Age=31536000",
            self.tag()
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// The page's language, and whether the request chose it by link.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageLang {
    pub(crate) lang: Lang,
    pub(crate) chosen: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for PageLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let (lang, chosen) = Lang::pick(parts.uri.query(), &parts.headers);
        Ok(Self { lang, chosen })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_wins_then_the_cookie_then_the_browser() {
        let mut h = HeaderMap::new();
        h.insert(
            "accept-language",
            HeaderValue::from_static("zh-TW,zh;q=0.9,en;q=0.8"),
        );
        assert_eq!(Lang::pick(None, &h), (Lang::ZhTw, false));
        assert_eq!(Lang::pick(Some("x=1&lang=en"), &h), (Lang::En, true));
        h.insert(
            "cookie",
            HeaderValue::from_static("classchat_admin_lang=en"),
        );
        assert_eq!(Lang::pick(None, &h), (Lang::En, false));
        assert_eq!(Lang::pick(None, &HeaderMap::new()), (Lang::En, false));
        assert_eq!(
            Lang::pick(Some("lang=zh-TW"), &HeaderMap::new()),
            (Lang::ZhTw, true)
        );
    }
}
