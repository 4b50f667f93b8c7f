//! Start-up: the real binary refuses bad configuration with one line naming the variable,
//! and never prints a secret or a code.

use std::process::Command;

const GOOD_SECRET: &str = "a-good-secret-0123456789-0123456789-abc";

fn classchat(envs: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_classchat"))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(envs.iter().copied())
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn expect_refusal(envs: &[(&str, &str)], names: &[&str], never: &[&str]) {
    let (code, text) = classchat(envs, &[]);
    assert_ne!(code, 0, "{envs:?} should not start: {text}");
    assert_eq!(text.trim().lines().count(), 1, "one line: {text}");
    for n in names {
        assert!(text.contains(n), "{text:?} should name {n}");
    }
    for s in never {
        assert!(
            !text.to_lowercase().contains(&s.to_lowercase()),
            "{text:?} must not print {s}"
        );
    }
}

#[test]
fn bad_settings_stop_start_up_naming_the_variable() {
    let base = [
        ("AUTH_SECRET", GOOD_SECRET),
        ("ACCESS_CODE", "green-leaf-42"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v = base.to_vec();
        for (k, val) in extra {
            v.retain(|(kk, _)| kk != k);
            v.push((k, val));
        }
        v
    };
    expect_refusal(
        &with(&[("LISTEN_ADDR", "localhost:eighty")]),
        &["LISTEN_ADDR"],
        &[],
    );
    expect_refusal(
        &with(&[("AUTH_SECRET", "short-secret-123")]),
        &["AUTH_SECRET", "32"],
        &["short-secret-123"],
    );
    expect_refusal(
        &[("ACCESS_CODE", "green-leaf-42")],
        &["AUTH_SECRET"],
        &["green-leaf-42"],
    );
    expect_refusal(
        &with(&[("ACCESS_CODE", "abc")]),
        &["ACCESS_CODE", "shorter than 6"],
        &["abc\""],
    );
    expect_refusal(
        &with(&[("TIMEZONE", "Mars/Olympus")]),
        &["TIMEZONE"],
        &[GOOD_SECRET],
    );
    expect_refusal(&with(&[("TOKEN_TTL", "forever")]), &["TOKEN_TTL"], &[]);
    expect_refusal(
        &with(&[("CF_ACCESS_CLIENT_ID", "abc.access")]),
        &["CF_ACCESS_CLIENT_SECRET", "both"],
        &["abc.access"],
    );
    expect_refusal(
        &with(&[("CF_ACCESS_CLIENT_SECRET", "s3cr3t-value")]),
        &["CF_ACCESS_CLIENT_ID"],
        &["s3cr3t-value"],
    );
    expect_refusal(
        &with(&[("OPEN_WEBUI_URL", "chat.example.edu")]),
        &["OPEN_WEBUI_URL", "http"],
        &[],
    );
    expect_refusal(
        &with(&[("OPEN_WEBUI_URL", "https://chat.example.edu")]),
        &["OPEN_WEBUI_API_KEY"],
        &[],
    );
    expect_refusal(
        &with(&[("CLIENT_IP_HEADER", "x-client")]),
        &["CLIENT_IP_HEADER"],
        &[],
    );
    expect_refusal(
        &with(&[("ALLOWED_ORIGINS", "https://a.example/path")]),
        &["ALLOWED_ORIGINS"],
        &[],
    );
    // CODE is an alias of ACCESS_CODE.
    expect_refusal(
        &[("AUTH_SECRET", GOOD_SECRET), ("CODE", "tiny")],
        &["ACCESS_CODE"],
        &["tiny"],
    );
}

#[test]
fn bad_classes_files_name_the_file_class_and_field_but_never_a_code() {
    let cases = [
        (
            "[[class]]\nid = \"a\"\ntitle = \"A\"\ncodes = [\"alpha-code-1\"]\n[[class]]\nid = \"b\"\ntitle = \"B\"\ncodes = [\"ALPHA-CODE-1\"]\n",
            vec!["class \"b\"", "field codes", "unique"],
        ),
        (
            "[[class]]\nid = \"a\"\ntitle = \"A\"\ncodes = [\"alpha-code-1\", \"  \"]\n",
            vec!["class \"a\"", "field codes", "code number 2: is empty"],
        ),
        (
            "[[class]]\nid = \"a\"\ntitle = \"A\"\ncodes = [\"abc12\"]\n",
            vec!["class \"a\"", "field codes", "shorter than 6"],
        ),
        (
            "[[class]]\nid = \"a\"\ntitle = \"A\"\ncodes = [\"alpha-code-1\"]\ncolour = \"red\"\n",
            vec!["unknown field `colour`", "line 5"],
        ),
        (
            "[[class]]\nid = \"a\"\ntitle = \"A\"\ncodes = [123456]\n",
            vec!["invalid type"],
        ),
        (
            "[[class]]\nid = \"Bad Id\"\ntitle = \"A\"\ncodes = [\"alpha-code-1\"]\n",
            vec!["field id"],
        ),
    ];
    for (toml, names) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("classes.toml");
        std::fs::write(&path, toml).unwrap();
        let p = path.to_str().unwrap();
        let mut names = names.clone();
        names.extend(["CLASSES_FILE", p]);
        expect_refusal(
            &[("AUTH_SECRET", GOOD_SECRET), ("CLASSES_FILE", p)],
            &names,
            &["alpha-code-1", "abc12", "123456"],
        );
    }
}

#[test]
fn a_busy_port_is_reported_as_listen_addr() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, text) = classchat(
        &[
            ("AUTH_SECRET", GOOD_SECRET),
            ("ACCESS_CODE", "green-leaf-42"),
            ("LISTEN_ADDR", &addr),
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        text.contains(&format!("LISTEN_ADDR: cannot listen on {addr}")),
        "{text}"
    );
}

#[test]
fn help_lists_every_setting() {
    use clap::CommandFactory;
    let (code, text) = classchat(&[], &["--help"]);
    assert_eq!(code, 0);
    let command = classchat_server::config::Config::command();
    let mut vars = 0;
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if arg.is_hide_set() {
            // Kept for old .env files or for tests, and deliberately not offered.
            assert!(!text.contains(&format!("--{long} ")), "--{long} is hidden");
            continue;
        }
        assert!(text.contains(&format!("--{long}")), "--help lacks --{long}");
        if let Some(var) = arg.get_env() {
            let var = var.to_str().unwrap();
            // Secrets' values are hidden: `[env: AUTH_SECRET]`, not `[env: AUTH_SECRET=…]`.
            let shown = if arg.is_hide_env_values_set() {
                format!("[env: {var}]")
            } else {
                format!("[env: {var}=")
            };
            assert!(text.contains(&shown), "--help lacks {shown}");
            vars += 1;
        }
    }
    assert!(
        vars > 40,
        "only {vars} variables found: the definition was not read"
    );
    // The one variable read outside clap: `CODE`, an alias of ACCESS_CODE.
    assert!(text.contains("(alias: CODE)"), "--help lacks CODE");
}
