//! The safety settings: the optional safety model, the help resources a flagged reply
//! shows, and where alerts go (SMTP, a signed webhook).

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{ConfigError, bad, duration};

/// The safety settings as flags and environment variables.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SafetyConfig {
    /// A Llama Guard style safety model in Open WebUI (e.g. llama-guard3:1b) that checks
    /// each student message in classes whose visibility is flagged or full, beside the
    /// reply (never delaying it). Default: the built-in phrase lists alone.
    #[arg(long, env = "SAFETY_MODEL")]
    pub safety_model: Option<String>,

    /// How long the safety model may take for one message before its check is given up
    /// (the phrase check has already run by then).
    #[arg(long, env = "SAFETY_MODEL_TIMEOUT", default_value = "20s")]
    pub safety_model_timeout: String,

    /// Help resources shown below a reply to a flagged message: `tw` (Taiwan), `us`, both
    /// (`tw,us`) or `none`. Default: `tw` when TIMEZONE is Asia/Taipei, `us` for America/…,
    /// otherwise none (set SAFETY_HELP_FILE). Classes may set their own.
    #[arg(long, env = "SAFETY_HELP")]
    pub safety_help: Option<String>,

    /// A UTF-8 text file of help resources instead of SAFETY_HELP: one per line (at most
    /// 12 lines of 300 characters).
    #[arg(long, env = "SAFETY_HELP_FILE")]
    pub safety_help_file: Option<PathBuf>,

    /// The school's mail server for alert emails: smtp://[user:password@]host[:port]
    /// (STARTTLS required; port 587 by default), smtps://… (TLS from the start; 465), or,
    /// for a relay on this machine only, smtp://127.0.0.1:25?tls=none.
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<SecretString>,

    /// A PEM file of the certificate authority that signed the mail server's certificate,
    /// trusted besides the public ones (a school's own CA).
    #[arg(long, env = "SMTP_CA_FILE")]
    pub smtp_ca_file: Option<PathBuf>,

    /// The From address of alert emails (required with SMTP_URL).
    #[arg(long, env = "ALERT_EMAIL_FROM")]
    pub alert_email_from: Option<String>,

    /// Addresses (comma-separated) told of every class's flags, besides each class's own
    /// safety contacts (e.g. the school's safeguarding lead).
    #[arg(long, env = "ALERT_EMAIL_TO")]
    pub alert_email_to: Option<String>,

    /// A URL that receives each flag as a signed JSON POST (see SECURITY.md).
    #[arg(long, env = "ALERT_WEBHOOK_URL", hide_env_values = true)]
    pub alert_webhook_url: Option<SecretString>,

    /// The key the webhook's body is signed with (HMAC-SHA256), at least 32 characters;
    /// required with ALERT_WEBHOOK_URL.
    #[arg(long, env = "ALERT_WEBHOOK_SECRET", hide_env_values = true)]
    pub alert_webhook_secret: Option<SecretString>,
}

/// The checked safety settings.
#[derive(Debug, Clone)]
pub struct SafetySettings {
    pub model: Option<String>,
    pub model_timeout: Duration,
    /// The server's help resources, one per line; empty: none.
    pub help: String,
    pub smtp: Option<Smtp>,
    pub webhook: Option<Webhook>,
}

impl Default for SafetySettings {
    fn default() -> Self {
        Self {
            model: None,
            model_timeout: Duration::from_secs(20),
            help: String::new(),
            smtp: None,
            webhook: None,
        }
    }
}

/// How the mail server is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS, required (refuses a server that does not offer it).
    StartTls,
    /// TLS from the first byte (smtps://).
    Implicit,
    /// None: only for a relay on a loopback address.
    None,
}

/// The mail server and addresses. `Debug` shows no password.
#[derive(Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub credentials: Option<(String, SecretString)>,
    /// SMTP_CA_FILE's certificates (PEM), trusted besides the public roots.
    pub ca_pem: Option<Vec<u8>>,
    pub from: String,
    /// ALERT_EMAIL_TO.
    pub always_to: Vec<String>,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// The webhook and its signing key.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: SecretString,
    pub secret: SecretString,
}

/// Help for students in Taiwan. Sources: 衛生福利部 (Ministry of Health and Welfare) for
/// 1925 (https://www.mohw.gov.tw/cp-4260-47286-1.html) and 113
/// (https://dep.mohw.gov.tw/DOPS/); 國際生命線台灣總會 for 1995 (https://www.life1995.org.tw/).
pub const HELP_TW: &str =
    "1925 安心專線（衛生福利部，24 小時免付費）Mental-health support line, 24 h, free
1995 生命線（24 小時）Lifeline Taiwan, 24 h
113 保護專線（家庭暴力、兒少保護，24 小時）Protection hotline: family violence, child abuse, 24 h
有立即危險請撥 110 或 119 In immediate danger, call 110 or 119";

/// Help for students in the United States. Sources: https://988lifeline.org/ (988 Suicide &
/// Crisis Lifeline) and https://www.childhelphotline.org/ (Childhelp National Child Abuse
/// Hotline).
pub const HELP_US: &str =
    "988 Suicide & Crisis Lifeline: call or text 988, or chat at 988lifeline.org (24/7)
Childhelp National Child Abuse Hotline: call or text 1-800-422-4453 (24/7)
In immediate danger, call 911";

/// At most this many lines of help, each at most this long.
pub const MAX_HELP_LINES: usize = 12;
pub const MAX_HELP_LINE_CHARS: usize = 300;

/// Checks help text (the file's, or a class's own): `Ok` with its lines trimmed.
pub fn check_help(text: &str) -> Result<String, String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() > MAX_HELP_LINES {
        return Err(format!("has more than {MAX_HELP_LINES} lines"));
    }
    if let Some(l) = lines
        .iter()
        .find(|l| l.chars().count() > MAX_HELP_LINE_CHARS)
    {
        let start: String = l.chars().take(30).collect();
        return Err(format!(
            "the line starting {start:?} is over {MAX_HELP_LINE_CHARS} characters"
        ));
    }
    if lines.iter().any(|l| l.chars().any(char::is_control)) {
        return Err("contains control characters".into());
    }
    Ok(lines.join("\n"))
}

fn present(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn present_secret(s: &Option<SecretString>) -> Option<&str> {
    s.as_ref()
        .map(|s| s.expose_secret().trim())
        .filter(|s| !s.is_empty())
}

/// An email address, loosely: something@domain, no spaces or angle brackets.
fn address(var: &'static str, a: &str) -> Result<String, ConfigError> {
    let a = a.trim();
    let ok = a.split_once('@').is_some_and(|(l, d)| {
        !l.is_empty() && d.contains('.') || d == "localhost" && !l.is_empty()
    }) && !a.contains(|c: char| c.is_whitespace() || "<>,;\"".contains(c));
    if !ok {
        return Err(bad(var, format!("{a:?} is not an email address")));
    }
    Ok(a.to_owned())
}

fn smtp(
    url: &str,
    from: Option<&str>,
    to: Option<&str>,
    ca_file: Option<&std::path::Path>,
) -> Result<Smtp, ConfigError> {
    let shown = crate::basics::redact_url(url);
    let u = url::Url::parse(url).map_err(|_| {
        bad(
            "SMTP_URL",
            format!(
                "{shown:?} is not a URL (use e.g. smtp://user:password@mail.school.example:587)"
            ),
        )
    })?;
    let query: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    let tls_param = query
        .iter()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.as_str());
    if let Some((k, _)) = query.iter().find(|(k, _)| k != "tls") {
        return Err(bad(
            "SMTP_URL",
            format!("{shown:?}: unknown parameter {k:?}"),
        ));
    }
    let host = u
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("SMTP_URL", format!("{shown:?} names no host")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let (tls, default_port) = match (u.scheme(), tls_param) {
        ("smtp", None | Some("starttls") | Some("required")) => (SmtpTls::StartTls, 587),
        ("smtps", None) => (SmtpTls::Implicit, 465),
        ("smtp", Some("none")) => {
            let loopback = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                return Err(bad(
                    "SMTP_URL",
                    format!(
                        "{shown:?}: tls=none is only allowed for a relay on this machine (127.0.0.1, ::1, localhost)"
                    ),
                ));
            }
            (SmtpTls::None, 25)
        }
        ("smtp" | "smtps", Some(other)) => {
            return Err(bad(
                "SMTP_URL",
                format!("{shown:?}: tls={other:?} is not starttls or none"),
            ));
        }
        (other, _) => {
            return Err(bad(
                "SMTP_URL",
                format!("{shown:?}: the scheme {other:?} is not smtp or smtps"),
            ));
        }
    };
    let credentials = (!u.username().is_empty()).then(|| {
        let decode = percent_decode;
        (
            decode(u.username()),
            SecretString::from(decode(u.password().unwrap_or(""))),
        )
    });
    let from = address(
        "ALERT_EMAIL_FROM",
        from.ok_or_else(|| bad("ALERT_EMAIL_FROM", "is not set but SMTP_URL is"))?,
    )?;
    let always_to = to
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| address("ALERT_EMAIL_TO", a))
        .collect::<Result<_, _>>()?;
    let ca_pem = match ca_file {
        None => None,
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                bad(
                    "SMTP_CA_FILE",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(bad(
                    "SMTP_CA_FILE",
                    format!("{} holds no PEM certificate", path.display()),
                ));
            }
            Some(pem)
        }
    };
    Ok(Smtp {
        host,
        port: u.port().unwrap_or(default_port),
        tls,
        credentials,
        ca_pem,
        from,
        always_to,
    })
}

/// `%40` and the like in a URL's user name or password.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl SafetyConfig {
    /// Checks the safety settings; `timezone` picks the default help resources.
    pub fn into_settings(&self, timezone: &str) -> Result<SafetySettings, ConfigError> {
        let model = present(&self.safety_model).map(str::to_owned);
        let model_timeout = duration(
            "SAFETY_MODEL_TIMEOUT",
            &self.safety_model_timeout,
            Duration::from_secs(1),
        )?;
        let help = match (&self.safety_help_file, present(&self.safety_help)) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "SAFETY_HELP_FILE",
                    "set either SAFETY_HELP or SAFETY_HELP_FILE, not both",
                ));
            }
            (Some(path), None) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    bad(
                        "SAFETY_HELP_FILE",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                check_help(&text).map_err(|p| bad("SAFETY_HELP_FILE", p))?
            }
            (None, Some(list)) => {
                let mut parts = Vec::new();
                for r in list.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                    match r.to_ascii_lowercase().as_str() {
                        "tw" => parts.push(HELP_TW),
                        "us" => parts.push(HELP_US),
                        "none" => {}
                        other => {
                            return Err(bad(
                                "SAFETY_HELP",
                                format!("{other:?} is not tw, us or none"),
                            ));
                        }
                    }
                }
                parts.join("\n")
            }
            (None, None) if timezone == "Asia/Taipei" => HELP_TW.to_owned(),
            (None, None) if timezone.starts_with("America/") || timezone.starts_with("US/") => {
                HELP_US.to_owned()
            }
            (None, None) => String::new(),
        };
        let smtp = match present_secret(&self.smtp_url) {
            Some(url) => Some(smtp(
                url,
                present(&self.alert_email_from),
                present(&self.alert_email_to),
                self.smtp_ca_file.as_deref(),
            )?),
            None if present(&self.alert_email_to).is_some() => {
                return Err(bad("SMTP_URL", "is not set but ALERT_EMAIL_TO is"));
            }
            None => None,
        };
        let webhook = match (
            present_secret(&self.alert_webhook_url),
            &self.alert_webhook_secret,
        ) {
            (None, _) => None,
            (Some(url), secret) => {
                let url = super::http_url("ALERT_WEBHOOK_URL", url)?;
                let secret = secret
                    .as_ref()
                    .filter(|s| !s.expose_secret().trim().is_empty())
                    .ok_or_else(|| {
                        bad(
                            "ALERT_WEBHOOK_SECRET",
                            "is not set but ALERT_WEBHOOK_URL is: the body is signed with it",
                        )
                    })?;
                if secret.expose_secret().chars().count() < 32 {
                    return Err(bad(
                        "ALERT_WEBHOOK_SECRET",
                        "must be at least 32 characters",
                    ));
                }
                Some(Webhook {
                    url: SecretString::from(url),
                    secret: secret.clone(),
                })
            }
        };
        Ok(SafetySettings {
            model,
            model_timeout,
            help,
            smtp,
            webhook,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(f: impl FnOnce(&mut SafetyConfig)) -> Result<SafetySettings, ConfigError> {
        let mut c = SafetyConfig {
            safety_model_timeout: "20s".into(),
            ..Default::default()
        };
        f(&mut c);
        c.into_settings("Asia/Taipei")
    }

    #[test]
    fn help_defaults_follow_the_time_zone_and_can_be_chosen() {
        let c = SafetyConfig {
            safety_model_timeout: "20s".into(),
            ..Default::default()
        };
        assert!(
            c.into_settings("Asia/Taipei")
                .unwrap()
                .help
                .contains("1925")
        );
        assert!(
            c.into_settings("America/Chicago")
                .unwrap()
                .help
                .contains("988")
        );
        assert_eq!(c.into_settings("Europe/Paris").unwrap().help, "");
        let both = settings(|c| c.safety_help = Some("tw, us".into())).unwrap();
        assert!(both.help.contains("113") && both.help.contains("1-800-422-4453"));
        let none = settings(|c| c.safety_help = Some("none".into())).unwrap();
        assert_eq!(none.help, "");
        let e = settings(|c| c.safety_help = Some("uk".into())).unwrap_err();
        assert_eq!(e.var, "SAFETY_HELP");
    }

    #[test]
    fn smtp_urls_require_starttls_unless_the_relay_is_on_this_machine() {
        let s = settings(|c| {
            c.smtp_url = Some("smtp://alerts%40school.example:p%40ss@mail.school.example".into());
            c.alert_email_from = Some("classchat@school.example".into());
        })
        .unwrap()
        .smtp
        .unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.tls),
            ("mail.school.example", 587, SmtpTls::StartTls)
        );
        let (user, pass) = s.credentials.clone().unwrap();
        assert_eq!(
            (user.as_str(), pass.expose_secret()),
            ("alerts@school.example", "p@ss")
        );
        assert!(!format!("{s:?}").contains("p@ss"));
        let e = settings(|c| {
            c.smtp_url = Some("smtp://u:secret-pw@mail.school.example?tls=none".into());
            c.alert_email_from = Some("classchat@school.example".into());
        })
        .unwrap_err();
        assert_eq!(e.var, "SMTP_URL");
        assert!(!e.to_string().contains("secret-pw"), "{e}");
        let local = settings(|c| {
            c.smtp_url = Some("smtp://127.0.0.1:2525?tls=none".into());
            c.alert_email_from = Some("classchat@school.example".into());
        })
        .unwrap()
        .smtp
        .unwrap();
        assert_eq!((local.port, local.tls), (2525, SmtpTls::None));
        let e =
            settings(|c| c.smtp_url = Some("smtp://127.0.0.1:2525?tls=none".into())).unwrap_err();
        assert_eq!(e.var, "ALERT_EMAIL_FROM");
    }

    #[test]
    fn a_webhook_needs_a_long_secret() {
        let e =
            settings(|c| c.alert_webhook_url = Some("https://hooks.example/x".into())).unwrap_err();
        assert_eq!(e.var, "ALERT_WEBHOOK_SECRET");
        let e = settings(|c| {
            c.alert_webhook_url = Some("https://hooks.example/x".into());
            c.alert_webhook_secret = Some("short".into());
        })
        .unwrap_err();
        assert_eq!(e.var, "ALERT_WEBHOOK_SECRET");
        assert!(!e.to_string().contains("short"));
    }

    #[test]
    fn help_text_is_checked() {
        assert_eq!(check_help("  a \n\n b ").unwrap(), "a\nb");
        assert!(check_help(&"x\n".repeat(13)).is_err());
        assert!(check_help(&"x".repeat(301)).is_err());
        assert!(check_help("bell\u{7}").is_err());
    }
}
