//! Tests configure their servers in code (`Opts::with`, typed [`Settings`]); these two
//! tests keep that honest. The first: a global value changed in code reaches the classes
//! without a value of their own (the server resolves classes when it starts, not only when
//! the command line is read). The second is the one test of the command line's flags and
//! environment names: every flag the other tests once passed as a string lands in the field
//! they now set.

use std::time::Duration;

use clap::CommandFactory;
use classchat_server::admin::session::hash_password;
use classchat_server::config::{
    AdminSettings, ClientIpSource, Config, PasswordCheck, Settings, UpstreamSettings,
};
use classchat_shared::{ErrorCode, LimitKind, SessionResponse};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::helpers::*;

const CLASSES: &str = r#"
[[class]]
id = "plain"
title = "Takes the global values"
codes = ["plain-code-1"]

[[class]]
id = "own"
title = "Names its own"
codes = ["own-code-1"]
messages_per_minute = 5
daily_message_quota = 40
token_ttl = "20m"
model = "own-model"
"#;

#[tokio::test]
async fn a_class_without_its_own_rate_takes_the_global_rate_set_in_code() {
    let app = spawn_app_with(
        Opts {
            fake: classchat_fake_upstream::FakeConfig {
                models: vec!["global-model".into(), "own-model".into()],
                ..Default::default()
            },
            ..Opts::default()
        }
        // The classes first, read while the global values were still the defaults.
        .with(|s| s.classes = toml_classes(s, CLASSES))
        .with(|s| {
            s.messages_per_minute = 2;
            s.class_messages_per_minute = 0;
            s.daily_message_quota = 30;
            s.token_ttl = minutes(5);
            s.default_model = Some("global-model".into());
        }),
    )
    .await;
    let classes = app.state.classes.current();
    let plain = classes.get("plain").unwrap();
    assert_eq!(
        (
            plain.messages_per_minute,
            plain.daily_message_quota,
            plain.token_ttl,
            plain.model.as_deref()
        ),
        (2, 30, minutes(5), Some("global-model")),
        "the global values set in code"
    );
    let own = classes.get("own").unwrap();
    assert_eq!(
        (
            own.messages_per_minute,
            own.daily_message_quota,
            own.token_ttl,
            own.model.as_deref()
        ),
        (5, 40, minutes(20), Some("own-model")),
        "its own values"
    );
    assert_eq!(
        app.state
            .settings
            .classes
            .get("plain")
            .unwrap()
            .messages_per_minute,
        2,
        "the settings the start-up checks read agree"
    );

    // And the limit holds: the third message a minute of a `plain` student is refused.
    let app = &app;
    let sign_in = |code: &'static str| async move {
        let r = app.post_session(json!({ "access_code": code })).await;
        assert_eq!(r.status(), 200);
        r.json::<SessionResponse>().await.unwrap()
    };
    let plain = sign_in("plain-code-1").await;
    let ttl = plain.expires_at - classchat_server::basics::now_secs();
    assert!((295..=300).contains(&ttl), "TOKEN_TTL set in code: {ttl}");
    for _ in 0..2 {
        let r = app.post_chat(&plain.token, chat_body("hi", false)).await;
        assert_eq!(r.status(), 200);
    }
    let r = app.post_chat(&plain.token, chat_body("hi", false)).await;
    let e = expect_error(r, 429, ErrorCode::RateLimited).await;
    assert_eq!(e.error.limit, Some(LimitKind::Minute));
    let own = sign_in("own-code-1").await;
    for _ in 0..3 {
        let r = app.post_chat(&own.token, chat_body("hi", false)).await;
        assert_eq!(r.status(), 200, "5 a minute of its own");
    }
    assert_eq!(app.upstream.requests()[2].body["model"], "own-model");
    assert_eq!(app.upstream.requests()[0].body["model"], "global-model");
}

/// One flag (with what it needs beside it) and what it must set.
type Case = (&'static [(&'static str, &'static str)], fn(&Settings));

fn rate_of(r: classchat_server::config::Rate) -> (u32, u64) {
    (r.count, r.period.as_secs())
}

fn password(s: &Settings) -> Option<&str> {
    match &s.admin {
        AdminSettings::Password(PasswordCheck::Plain(p)) => Some(p.expose_secret()),
        _ => None,
    }
}

fn open_webui_of(s: &Settings) -> &classchat_server::config::OpenWebUi {
    match &s.upstream {
        UpstreamSettings::OpenWebUi(o) => o,
        UpstreamSettings::Demo => panic!("no Open WebUI"),
    }
}

const CASES: &[Case] = &[
    (&[("--admin-password", "a-long-teacher-password")], |s| {
        assert_eq!(password(s), Some("a-long-teacher-password"));
    }),
    (&[("--login-failures-per-address", "3/10m")], |s| {
        assert_eq!(rate_of(s.login_failures_per_address), (3, 600));
    }),
    (&[("--login-failures-per-address-per-day", "7")], |s| {
        assert_eq!(s.login_failures_per_address_per_day, 7);
    }),
    (&[("--login-failures-per-ipv6-56", "5/15h")], |s| {
        assert_eq!(rate_of(s.login_failures_per_ipv6_56), (5, 54_000));
    }),
    (&[("--login-failures-per-ipv6-48", "8/15h")], |s| {
        assert_eq!(rate_of(s.login_failures_per_ipv6_48), (8, 54_000));
    }),
    (&[("--sign-ins-per-address", "3/10m")], |s| {
        assert_eq!(rate_of(s.sign_ins_per_address), (3, 600));
    }),
    (&[("--admin-login-failures", "6/60m")], |s| {
        assert_eq!(rate_of(s.admin_login_failures), (6, 3600));
    }),
    (
        &[("--database-url", "postgres://db.example/classchat")],
        |s| {
            assert_eq!(s.database_url, "postgres://db.example/classchat");
        },
    ),
    (&[("--resync-interval", "1h")], |s| {
        assert_eq!(s.resync_interval, hours(1));
    }),
    (
        &[
            ("--messages-per-minute", "4"),
            ("--class-messages-per-minute", "3"),
            ("--daily-message-quota", "6"),
        ],
        |s| {
            let c = s.classes.get("class-1").unwrap();
            assert_eq!((s.messages_per_minute, s.class_messages_per_minute), (4, 3));
            assert_eq!(s.daily_message_quota, 6);
            assert_eq!(
                (
                    c.messages_per_minute,
                    c.class_messages_per_minute,
                    c.daily_message_quota
                ),
                (4, 3, 6)
            );
        },
    ),
    (
        &[
            ("--open-webui-url", "http://127.0.0.1:9/"),
            ("--open-webui-api-key", "sk-test-key"),
            ("--open-webui-model", "some-model"),
            ("--cf-access-client-id", "id.access"),
            ("--cf-access-client-secret", "cf-secret"),
        ],
        |s| {
            let o = open_webui_of(s);
            assert_eq!(o.completions_url, "http://127.0.0.1:9/api/chat/completions");
            assert_eq!(o.api_key.as_ref().unwrap().expose_secret(), "sk-test-key");
            let (id, secret) = o.cf_access.as_ref().unwrap();
            assert_eq!(
                (id.expose_secret(), secret.expose_secret()),
                ("id.access", "cf-secret")
            );
            assert_eq!(s.default_model.as_deref(), Some("some-model"));
            assert_eq!(
                s.classes.get("class-1").unwrap().model.as_deref(),
                Some("some-model")
            );
        },
    ),
    (
        &[
            ("--http-proxy", "http://proxy.test:3128"),
            ("--https-proxy", "http://tls-proxy.test:3128"),
            ("--no-proxy", "127.0.0.1"),
        ],
        |s| {
            let p = &s.proxy;
            assert_eq!(
                p.http.as_ref().unwrap().expose_secret(),
                "http://proxy.test:3128"
            );
            assert_eq!(
                p.https.as_ref().unwrap().expose_secret(),
                "http://tls-proxy.test:3128"
            );
            assert_eq!(p.no_proxy, "127.0.0.1");
        },
    ),
    (
        &[
            ("--client-ip-header", "x-forwarded-for"),
            ("--trusted-proxies", "127.0.0.1/32"),
        ],
        |s| {
            assert_eq!(s.client_ip, ClientIpSource::XForwardedFor);
            assert_eq!(s.trusted_proxies, nets(&["127.0.0.1/32"]));
        },
    ),
    (&[("--client-ip-header", "cf-connecting-ip")], |s| {
        assert_eq!(s.client_ip, ClientIpSource::CfConnectingIp);
        assert_eq!(s.trusted_proxies, nets(&["127.0.0.0/8", "::1/128"]));
    }),
    (
        &[
            ("--upstream-idle-timeout", "1s"),
            ("--upstream-first-byte-timeout", "2s"),
            ("--stream-max-duration", "3s"),
            ("--request-header-timeout", "4s"),
            ("--request-body-timeout", "5s"),
            ("--max-connections", "2"),
        ],
        |s| {
            let t = s.timeouts;
            assert_eq!(
                (t.idle, t.first_byte, t.reply_max),
                (secs(1), secs(2), secs(3))
            );
            assert_eq!(
                (s.request_header_timeout, s.request_body_timeout),
                (secs(4), secs(5))
            );
            assert_eq!(s.max_connections, 2);
        },
    ),
    (
        &[
            (
                "--auth-secret",
                "brand-new-secret-0123456789-0123456789-xyz",
            ),
            ("--auth-secret-previous", SECRET),
        ],
        |s| {
            assert_eq!(
                s.auth_secret.expose_secret(),
                "brand-new-secret-0123456789-0123456789-xyz"
            );
            assert_eq!(
                s.auth_secret_previous.as_ref().unwrap().expose_secret(),
                SECRET
            );
        },
    ),
    (
        &[("--token-ttl", "10m"), ("--session-max-age", "1h")],
        |s| {
            assert_eq!((s.token_ttl, s.session_max_age), (minutes(10), hours(1)));
            assert_eq!(s.classes.get("class-1").unwrap().token_ttl, minutes(10));
        },
    ),
    (
        &[
            ("--access-code", "new-code-2027,second-code-1"),
            ("--class-title", "Biology helper"),
            ("--system-prompt", "You are a patient tutor."),
            ("--starters", "One?| Two |Three"),
        ],
        |s| {
            let c = s.classes.find_by_code("SECOND-CODE-1").unwrap();
            assert_eq!(
                (c.id.as_str(), c.title.as_str()),
                ("class-2", "Biology helper 2")
            );
            assert_eq!(c.system_prompt.as_deref(), Some("You are a patient tutor."));
            assert_eq!(c.starters, ["One?", "Two", "Three"]);
            assert!(s.classes.find_by_code("new-code-2027").is_some());
            assert!(s.classes.find_by_code(CODE).is_none());
        },
    ),
    (
        &[(
            "--allowed-origins",
            "https://school.example, http://127.0.0.1:5555",
        )],
        |s| {
            assert_eq!(
                s.allowed_origins.as_deref().unwrap(),
                ["https://school.example", "http://127.0.0.1:5555"]
            );
        },
    ),
    (
        &[
            ("--cf-access-team-domain", "myschool.cloudflareaccess.com"),
            ("--cf-access-aud", crate::admin_cf::AUD),
            ("--admin-emails", "Kim@School.example"),
            ("--cf-access-certs-url", "http://127.0.0.1:9/certs"),
        ],
        |s| match &s.admin {
            AdminSettings::CfAccess {
                team_domain,
                aud,
                certs_url,
                emails,
            } => {
                assert_eq!(team_domain, "myschool.cloudflareaccess.com");
                assert_eq!(aud, crate::admin_cf::AUD);
                assert_eq!(certs_url, "http://127.0.0.1:9/certs");
                assert_eq!(emails, &["kim@school.example"]);
            }
            other => panic!("{other:?}"),
        },
    ),
];

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn flags_and_environment_names_reach_the_settings_tests_set_in_code() {
    for (flags, check) in CASES {
        // The test defaults, less what the case gives itself.
        let mut args = Vec::new();
        for (flag, value) in [("--auth-secret", SECRET), ("--access-code", CODE)] {
            if !flags.iter().any(|(f, _)| *f == flag) {
                args.extend([flag, value]);
            }
        }
        for (flag, value) in *flags {
            args.extend([*flag, *value]);
        }
        let s = Settings::for_tests(&args).unwrap_or_else(|e| panic!("{flags:?}: {e}"));
        check(&s);
    }
    // A hash instead of a password, and a classes file instead of codes.
    let hash = hash_password("a-long-teacher-password").unwrap();
    let s = Settings::for_tests(&["--demo", "--admin-password-hash", &hash]).unwrap();
    assert!(matches!(&s.admin, AdminSettings::Password(PasswordCheck::Argon2(h)) if *h == hash));
    let f = classes_file(CLASSES);
    let s = Settings::for_tests(&[
        "--auth-secret",
        SECRET,
        "--classes-file",
        f.path().to_str().unwrap(),
    ])
    .unwrap();
    let ids: Vec<&str> = s.classes.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["plain", "own"]);

    // Each setting is also read from the environment, under the flag's name in upper snake
    // case (`--login-failures-per-ipv6-56` is LOGIN_FAILURES_PER_IPV6_56): the same clap
    // argument, so what is checked above for the flag holds for the variable.
    let command = Config::command();
    let mut checked = 0;
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if arg.is_hide_set() || long == "hash-password" || long == "help" {
            continue;
        }
        let env = arg
            .get_env()
            .unwrap_or_else(|| panic!("--{long} has no environment variable"));
        assert_eq!(
            env.to_str().unwrap(),
            long.to_uppercase().replace('-', "_"),
            "--{long}"
        );
        checked += 1;
    }
    for (flags, _) in CASES {
        for (flag, _) in *flags {
            let long = flag.trim_start_matches("--");
            assert!(
                command.get_arguments().any(|a| a.get_long() == Some(long)),
                "{flag}"
            );
        }
    }
    assert!(checked >= 50, "only {checked} settings found");
}
