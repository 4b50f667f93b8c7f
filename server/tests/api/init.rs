//! `classchat init`, the real binary: answered through a pseudo-terminal (Python's `pty`
//! module drives it, as a teacher at a keyboard would), then through flags; either `.env`
//! starts a server a student can chat through, and neither form overwrites a file unasked.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use classchat_fake_upstream::{FakeConfig, FakeUpstream};
use serde_json::json;

use crate::helpers::{API_KEY, CF_ID, CF_SECRET, chat_body, read_events, reply_text};

const PASSWORD: &str = "a-long-teacher-password";

/// Drives a program through a pty: waits for each prompt, types its answer, returns the
/// exit status and everything the terminal showed.
const PTY_DRIVER: &str = r#"
import json, os, pty, select, sys, time
argv, env, steps = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
pid, fd = pty.fork()
if pid == 0:
    os.execve(argv[0], argv, env)
seen = b""
def read_some(deadline):
    global seen
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            return False
        seen += data
    if time.time() > deadline:
        sys.stdout.write(seen.decode(errors="replace"))
        sys.exit(97)
    return True
at = 0
for prompt, answer in steps:
    deadline = time.time() + 60
    while prompt.encode() not in seen[at:]:
        if not read_some(deadline):
            sys.stdout.write(seen.decode(errors="replace") + "\n[ended before %r]" % prompt)
            sys.exit(98)
    at = seen.index(prompt.encode(), at) + len(prompt)
    os.write(fd, (answer + "\n").encode())
deadline = time.time() + 60
while read_some(deadline):
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;

fn python() -> Option<&'static str> {
    ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

async fn init_in_pty(dir: &Path, steps: &[(&str, &str)]) -> (i32, String) {
    let bin = env!("CARGO_BIN_EXE_classchat");
    let argv = json!([bin, "init"]);
    let env = json!({"PATH": "/usr/bin:/bin", "TZ": "Asia/Taipei", "TERM": "dumb"});
    let steps: Vec<[&str; 2]> = steps.iter().map(|(p, a)| [*p, *a]).collect();
    let out = tokio::process::Command::new(python().unwrap())
        .current_dir(dir)
        .args(["-c", PTY_DRIVER])
        .arg(argv.to_string())
        .arg(env.to_string())
        .arg(json!(steps).to_string())
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn init_with_flags(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_classchat"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .arg("init")
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn read_env(dir: &Path) -> Vec<(String, String)> {
    dotenvy_like(&std::fs::read_to_string(dir.join(".env")).unwrap())
}

/// `KEY='value'` lines, as init writes them.
fn dotenvy_like(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.trim_matches('\'').to_owned())
        })
        .collect()
}

fn get<'a>(env: &'a [(String, String)], k: &str) -> &'a str {
    env.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{k} in {env:?}"))
}

fn codes_in(transcript: &str) -> Vec<String> {
    transcript
        .lines()
        .filter_map(|l| l.trim().strip_prefix("class-"))
        .filter_map(|l| l.split_once(": ").map(|(_, c)| c.trim().to_owned()))
        .collect()
}

/// Starts the binary on the `.env` in `dir` and has a student sign in and chat.
async fn a_student_can_chat(dir: &Path, code: &str) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_classchat"))
        .current_dir(dir)
        .env_clear()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let address = loop {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .expect("the server started within a minute")
            .unwrap()
            .expect("the server is running");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if let Some(a) = v.pointer("/fields/address").and_then(|a| a.as_str()) {
            break format!("http://{a}");
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{address}/api/v1/session"))
        .json(&json!({"access_code": code, "display_name": "Mei"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the generated code signs in");
    let session: classchat_shared::SessionResponse = r.json().await.unwrap();
    let r = client
        .post(format!("{address}/api/v1/chat"))
        .bearer_auth(&session.token)
        .json(&chat_body("hello from init", true))
        .send()
        .await
        .unwrap();
    assert_eq!(
        reply_text(&read_events(r).await),
        "You said: hello from init"
    );
    child.kill().await.unwrap();
}

fn fake_behind_access() -> FakeConfig {
    FakeConfig {
        cf_access: Some((CF_ID.into(), CF_SECRET.into())),
        models: vec!["test-model".into(), "other-model".into()],
        ..FakeConfig::default()
    }
}

#[tokio::test]
async fn init_through_a_terminal_writes_a_private_env_a_student_can_chat_with() {
    let Some(_) = python() else {
        eprintln!("SKIPPED: no /usr/bin/python3 to drive a pseudo-terminal");
        return;
    };
    let fake = FakeUpstream::spawn(fake_behind_access()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = fake.url();
    let (code, shown) = init_in_pty(
        dir.path(),
        &[
            ("Open WebUI address", &url),
            ("API key", API_KEY),
            // The probe met Access's 302 and asks for the service token.
            ("Service token Client ID", CF_ID),
            ("Service token Client Secret", CF_SECRET),
            ("Model for your classes", "2"),
            ("Time zone [Asia/Taipei]", ""),
            ("How many classes", "2"),
            ("Title students see", "Biology"),
            ("Dashboard password", PASSWORD),
            ("Address students' browsers", ""),
        ],
    )
    .await;
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("behind Cloudflare Access"), "{shown}");
    assert!(shown.contains("1. test-model") && shown.contains("2. other-model"));
    for secret in [API_KEY, CF_ID, CF_SECRET, PASSWORD] {
        assert!(!shown.contains(secret), "{secret} was shown: {shown}");
    }
    assert!(
        shown.contains("<script src=\"http://127.0.0.1:8080/widget.js\""),
        "{shown}"
    );
    // The snippet overrides neither the class's title nor the students' language.
    assert!(
        !shown.contains("data-title") && !shown.contains("data-lang"),
        "{shown}"
    );
    assert!(shown.contains("classchat check"), "{shown}");
    let mode = std::fs::metadata(dir.path().join(".env"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let env = read_env(dir.path());
    assert_eq!(get(&env, "OPEN_WEBUI_MODEL"), "other-model");
    assert_eq!(get(&env, "TIMEZONE"), "Asia/Taipei");
    assert_eq!(get(&env, "CF_ACCESS_CLIENT_SECRET"), CF_SECRET);
    let codes = codes_in(&shown);
    assert_eq!(codes.len(), 2, "{shown}");
    assert_eq!(get(&env, "ACCESS_CODE"), codes.join(","));

    // Asked before overwriting; "no" leaves the file as it was.
    let before = std::fs::read(dir.path().join(".env")).unwrap();
    let (code, shown) = init_in_pty(dir.path(), &[(".env exists. Overwrite it?", "n")]).await;
    assert_eq!(code, 1, "{shown}");
    assert_eq!(std::fs::read(dir.path().join(".env")).unwrap(), before);

    a_student_can_chat(dir.path(), &codes[1]).await;
}

#[tokio::test]
async fn init_through_flags_writes_the_same_file_and_never_overwrites_unasked() {
    let fake = FakeUpstream::spawn(fake_behind_access()).await;
    let url = fake.url();
    let flags = [
        "--yes",
        "--url",
        &url,
        "--api-key",
        API_KEY,
        "--cf-client-id",
        CF_ID,
        "--cf-client-secret",
        CF_SECRET,
        "--model",
        "other-model",
        "--timezone",
        "Asia/Taipei",
        "--classes",
        "2",
        "--class-title",
        "Biology",
        "--admin-password",
        PASSWORD,
    ];
    let dir = tempfile::tempdir().unwrap();
    let (code, shown) = init_with_flags(dir.path(), &flags).await;
    assert_eq!(code, 0, "{shown}");
    for secret in [API_KEY, CF_SECRET, PASSWORD] {
        assert!(!shown.contains(secret), "{secret} was shown: {shown}");
    }
    let mode = std::fs::metadata(dir.path().join(".env"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let env = read_env(dir.path());
    let expected = [
        ("LISTEN_ADDR", "127.0.0.1:8080"),
        ("PUBLIC_URL", "http://127.0.0.1:8080"),
        ("OPEN_WEBUI_URL", url.as_str()),
        ("OPEN_WEBUI_API_KEY", API_KEY),
        ("OPEN_WEBUI_MODEL", "other-model"),
        ("CF_ACCESS_CLIENT_ID", CF_ID),
        ("CF_ACCESS_CLIENT_SECRET", CF_SECRET),
        ("TIMEZONE", "Asia/Taipei"),
        ("AUTH_SECRET", "*"),
        ("ACCESS_CODE", "*"),
        ("CLASS_TITLE", "Biology"),
        ("ADMIN_PASSWORD_HASH", "*"),
        ("DATABASE_URL", "sqlite://classchat.db"),
    ];
    assert_eq!(
        env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        expected.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        "the same variables, in the same order, as the terminal form"
    );
    for (k, v) in expected {
        if v != "*" {
            assert_eq!(get(&env, k), v, "{k}");
        }
    }
    assert!(get(&env, "AUTH_SECRET").len() >= 32);
    assert!(get(&env, "ADMIN_PASSWORD_HASH").starts_with("$argon2"));
    let codes = codes_in(&shown);
    assert_eq!(get(&env, "ACCESS_CODE"), codes.join(","));
    assert!(shown.contains("/widget.js\" async"), "{shown}");
    assert!(
        !shown.contains("data-title") && !shown.contains("data-lang"),
        "the snippet leaves the class's title and the language alone: {shown}"
    );

    // An existing file is kept unless --force.
    let before = std::fs::read(dir.path().join(".env")).unwrap();
    let (code, shown) = init_with_flags(dir.path(), &flags).await;
    assert_eq!(code, 1);
    assert!(shown.contains(".env exists: pass --force"), "{shown}");
    assert_eq!(std::fs::read(dir.path().join(".env")).unwrap(), before);

    // A refused key stops the flag form with the reason, writing nothing.
    let empty = tempfile::tempdir().unwrap();
    let mut bad = flags.to_vec();
    bad[4] = "sk-ffffffffffffffffffffffffffffffff";
    let (code, shown) = init_with_flags(empty.path(), &bad).await;
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("refused the API key"), "{shown}");
    assert!(!empty.path().join(".env").exists());

    a_student_can_chat(dir.path(), &codes[0]).await;
}

/// `.env` is written through a new temporary file renamed into place: a symlink planted in
/// its place (even one pointing nowhere yet) is replaced, never followed, and a `.env` that
/// belongs to another user is refused and left as it was. (The tests run as root, so
/// "another user" is `nobody`.)
#[tokio::test]
async fn init_never_writes_through_a_planted_symlink_or_into_another_users_file() {
    use std::os::unix::fs::MetadataExt;
    let fake = FakeUpstream::spawn(FakeConfig::default()).await;
    let url = fake.url();
    let flags = |force: bool| {
        let mut f = vec![
            "--yes".to_owned(),
            "--url".into(),
            url.clone(),
            "--api-key".into(),
            API_KEY.into(),
            "--admin-password".into(),
            PASSWORD.into(),
        ];
        if force {
            f.push("--force".into());
        }
        f
    };
    let run = |dir: std::path::PathBuf, force: bool| {
        let f = flags(force);
        async move {
            let args: Vec<&str> = f.iter().map(String::as_str).collect();
            init_with_flags(&dir, &args).await
        }
    };

    // A symlink to a file elsewhere: without --force it counts as an existing .env.
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "VICTIM='keep'\n").unwrap();
    let env = dir.path().join(".env");
    std::os::unix::fs::symlink(&victim, &env).unwrap();
    let (code, shown) = run(dir.path().to_owned(), false).await;
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains(".env exists: pass --force"), "{shown}");
    // With --force the link itself is replaced; the file it pointed at is untouched.
    let (code, shown) = run(dir.path().to_owned(), true).await;
    assert_eq!(code, 0, "{shown}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "VICTIM='keep'\n");
    let m = std::fs::symlink_metadata(&env).unwrap();
    assert!(m.file_type().is_file(), "a regular file now, not a link");
    assert_eq!(m.mode() & 0o777, 0o600);
    assert!(read_env(dir.path()).iter().any(|(k, _)| k == "AUTH_SECRET"));

    // A dangling symlink: following it would create the file it names.
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("not-yet");
    std::os::unix::fs::symlink(&elsewhere, dir.path().join(".env")).unwrap();
    let (code, shown) = run(dir.path().to_owned(), false).await;
    assert_eq!(code, 1, "{shown}");
    let (code, shown) = run(dir.path().to_owned(), true).await;
    assert_eq!(code, 0, "{shown}");
    assert!(!elsewhere.exists(), "the link's target was never created");

    // A .env that belongs to another user is refused, even with --force, and kept.
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    std::fs::write(&env, "PLANTED=1\n").unwrap();
    std::os::unix::fs::chown(&env, Some(65534), Some(65534)).unwrap();
    for force in [false, true] {
        let (code, shown) = run(dir.path().to_owned(), force).await;
        assert_eq!(code, 1, "{shown}");
        assert!(
            shown.contains("belongs to another user (uid 65534)"),
            "{shown}"
        );
        assert_eq!(std::fs::read_to_string(&env).unwrap(), "PLANTED=1\n");
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [".env"], "nothing else was written");
}
