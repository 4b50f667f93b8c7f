//! `classchat init`: a guided set-up that writes `.env`, asking only what a teacher knows
//! (Open WebUI's address and an API key) and finding or generating the rest: the models the
//! key can use, the time zone, the signing secret, one readable code per class and the
//! dashboard password. The same through flags (`--yes`) for scripts.
//!
//! It never prints a secret it did not generate (the key and the service token are read
//! without echo and never shown), never overwrites an existing file without asking, and
//! writes the file safely: a new temporary file in the same directory (`O_EXCL`,
//! `O_NOFOLLOW`, mode 0600) renamed into place, so a `.env` symlink planted meanwhile is
//! replaced, never followed, and a `.env` owned by another user is refused.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use secrecy::{ExposeSecret, SecretString};

use crate::config::{OpenWebUi, OutboundProxy};

/// `classchat init`'s flags: each answers one question; with `--yes` nothing is asked.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// Open WebUI's address, as you open it in a browser (e.g. https://chat.example.edu).
    #[arg(long)]
    pub url: Option<String>,
    /// Open WebUI API key (Settings > Account > API keys). Prefer the prompt: a flag is
    /// visible to other users of this machine in `ps`.
    #[arg(long, hide_env_values = true)]
    pub api_key: Option<SecretString>,
    /// Cloudflare Access service token id, when Open WebUI is behind Access.
    #[arg(long)]
    pub cf_client_id: Option<SecretString>,
    /// Cloudflare Access service token secret.
    #[arg(long)]
    pub cf_client_secret: Option<SecretString>,
    /// The model classes use (default: the first the key can use).
    #[arg(long)]
    pub model: Option<String>,
    /// IANA time zone (default: this machine's).
    #[arg(long)]
    pub timezone: Option<String>,
    /// How many classes: each gets its own access code.
    #[arg(long)]
    pub classes: Option<u32>,
    /// The title students see in the widget.
    #[arg(long)]
    pub class_title: Option<String>,
    /// Dashboard password, at least 12 characters (default: one is generated and shown once).
    #[arg(long)]
    pub admin_password: Option<SecretString>,
    /// The address students' browsers reach classchat at (default: http://LISTEN_ADDR).
    #[arg(long)]
    pub public_url: Option<String>,
    /// Address and port classchat listens on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen_addr: String,
    /// The file to write.
    #[arg(long, default_value = ".env")]
    pub output: PathBuf,
    /// Overwrite the file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Ask nothing: every answer comes from a flag or its default.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the systemd units (one service, and the template for replicas) and exit:
    /// nothing is asked or written. The release ships only the binary.
    #[arg(long)]
    pub systemd: bool,
}

/// The shipped units, as in `deploy/`.
pub const SERVICE_UNIT: &str = include_str!("../../../deploy/classchat.service");
pub const REPLICA_UNIT: &str = include_str!("../../../deploy/classchat@.service");

/// Why set-up stopped (printed as one line).
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0}")]
    Stop(String),
    #[error("cannot read the answer: {0}")]
    Io(#[from] std::io::Error),
}

fn stop(s: impl Into<String>) -> InitError {
    InitError::Stop(s.into())
}

/// `classchat init`.
/// `proxy` is the outbound proxy from the environment, the way the server will read it, so
/// the probe goes where the server's requests will.
pub async fn command(args: InitArgs, proxy: OutboundProxy) -> ExitCode {
    if args.systemd {
        print!(
            "# ---- /etc/systemd/system/classchat.service (one server) ----\n{SERVICE_UNIT}\n\
             # ---- /etc/systemd/system/classchat@.service (replicas: classchat@8081, …) ----\n{REPLICA_UNIT}"
        );
        return ExitCode::SUCCESS;
    }
    match run(args, &proxy).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("classchat init: {e}");
            ExitCode::from(1)
        }
    }
}

struct Prompter {
    interactive: bool,
    tty: bool,
    input: std::io::StdinLock<'static>,
}

impl Prompter {
    fn ask(&mut self, question: &str, default: Option<&str>) -> Result<String, InitError> {
        match default {
            Some(d) if !d.is_empty() => print!("{question} [{d}]: "),
            _ => print!("{question}: "),
        }
        std::io::stdout().flush()?;
        let mut line = String::new();
        if self.input.read_line(&mut line)? == 0 {
            return Err(stop(
                "the input ended before set-up was done; nothing was written",
            ));
        }
        let line = line.trim().to_owned();
        Ok(match (line.is_empty(), default) {
            (true, Some(d)) => d.to_owned(),
            _ => line,
        })
    }

    /// Reads a secret without echoing it (on a terminal) and never prints it.
    fn ask_secret(&mut self, question: &str) -> Result<SecretString, InitError> {
        let echo = |on: bool| {
            if self.tty {
                let _ = std::process::Command::new("stty")
                    .arg(if on { "echo" } else { "-echo" })
                    .stdin(std::process::Stdio::inherit())
                    .status();
            }
        };
        // Echo goes off before the prompt shows, so nothing typed after it is echoed.
        echo(false);
        print!("{question} (typing is hidden): ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        let read = self.input.read_line(&mut line);
        echo(true);
        println!();
        if read? == 0 {
            return Err(stop(
                "the input ended before set-up was done; nothing was written",
            ));
        }
        Ok(SecretString::from(line.trim().to_owned()))
    }

    fn yes_no(&mut self, question: &str) -> Result<bool, InitError> {
        let a = self.ask(&format!("{question} [y/N]"), None)?;
        Ok(matches!(a.to_lowercase().as_str(), "y" | "yes"))
    }
}

/// What `GET /api/models` said.
enum Probe {
    Models(Vec<String>),
    AccessRefused(String),
    KeyRefused(String),
    Unreachable(String),
    Other(String),
}

async fn probe(
    url: &str,
    key: &SecretString,
    cf: Option<&(SecretString, SecretString)>,
    proxy: &OutboundProxy,
) -> Probe {
    let settings = OpenWebUi {
        completions_url: format!("{url}/api/chat/completions"),
        api_key: Some(key.clone()),
        cf_access: cf.cloned(),
    };
    let reach = crate::cli::check::reachable(url, std::time::Duration::from_secs(10), proxy).await;
    if reach.outcome == crate::health::Outcome::Fail {
        return Probe::Unreachable(reach.detail);
    }
    match crate::cli::check::models_probe(&settings, std::time::Duration::from_secs(10), proxy)
        .await
    {
        crate::cli::check::ModelsProbe::Models(m) => Probe::Models(m),
        crate::cli::check::ModelsProbe::Access(s) => Probe::AccessRefused(s),
        crate::cli::check::ModelsProbe::Key(s) => Probe::KeyRefused(s),
        crate::cli::check::ModelsProbe::Other(s) => Probe::Other(s),
    }
}

fn detect_timezone() -> String {
    if let Ok(tz) = std::env::var("TZ")
        && jiff::tz::TimeZone::get(tz.trim_start_matches(':')).is_ok()
    {
        return tz.trim_start_matches(':').to_owned();
    }
    jiff::tz::TimeZone::system()
        .iana_name()
        .filter(|n| jiff::tz::TimeZone::get(n).is_ok())
        .unwrap_or("UTC")
        .to_owned()
}

/// A dashboard password that is easy to type: three groups of the readable code alphabet.
fn generate_password() -> String {
    format!(
        "{}-{}",
        crate::classes::generate_code(),
        crate::classes::generate_code()
    )
}

/// `KEY='value'`: single quotes, so dotenv reads `$` (argon2 hashes) literally.
fn line(key: &str, value: &str) -> Result<String, InitError> {
    if value.contains(['\'', '\n', '\r']) {
        return Err(stop(format!(
            "the value for {key} contains a quote or a line break; use one without"
        )));
    }
    Ok(format!("{key}='{value}'\n"))
}

fn normalize_url(raw: &str) -> Result<String, String> {
    let u = url::Url::parse(raw.trim())
        .map_err(|_| format!("{raw:?} is not a URL: write it as https://chat.example.edu"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(format!(
            "{raw:?}: the address must start with http:// or https://"
        ));
    }
    Ok(u.as_str().trim_end_matches('/').to_owned())
}

async fn run(a: InitArgs, proxy: &OutboundProxy) -> Result<(), InitError> {
    let stdin_tty = std::io::stdin().is_terminal();
    let mut p = Prompter {
        interactive: !a.yes,
        tty: stdin_tty,
        input: std::io::stdin().lock(),
    };
    if p.interactive {
        println!(
            "classchat set-up: a few questions, then .env is written. Ctrl-C stops without writing."
        );
    }
    let out = a.output.clone();
    // `symlink_metadata`: a symlink is there even when it points nowhere (`exists` would
    // follow it and say no).
    if let Ok(m) = std::fs::symlink_metadata(&out) {
        refuse_foreign(&out, &m)?;
    }
    let mut agreed = a.force;
    if std::fs::symlink_metadata(&out).is_ok() && !a.force {
        if !p.interactive {
            return Err(stop(format!(
                "{} exists: pass --force to overwrite it",
                out.display()
            )));
        }
        if !p.yes_no(&format!("{} exists. Overwrite it?", out.display()))? {
            return Err(stop(format!("{} left as it was", out.display())));
        }
        agreed = true;
    }

    // Open WebUI: the address, the key, and a service token when Access is in front.
    let mut url = a.url.clone();
    let mut key = a.api_key.clone();
    let mut cf = a.cf_client_id.clone().zip(a.cf_client_secret.clone());
    let models = loop {
        let u = match url.take() {
            Some(u) => u,
            None if p.interactive => p.ask(
                "Open WebUI address, as you open it in a browser (e.g. https://chat.example.edu)",
                None,
            )?,
            None => return Err(stop("--url is needed with --yes")),
        };
        let u = match normalize_url(&u) {
            Ok(u) => u,
            Err(e) if p.interactive => {
                println!("  {e}");
                continue;
            }
            Err(e) => return Err(stop(e)),
        };
        let k = match key.take() {
            Some(k) => k,
            None if p.interactive => {
                p.ask_secret("Open WebUI API key (Settings > Account > API keys)")?
            }
            None => return Err(stop("--api-key is needed with --yes")),
        };
        match probe(&u, &k, cf.as_ref(), proxy).await {
            Probe::Models(m) => {
                println!(
                    "  Open WebUI accepts the key: {} model(s) available.",
                    m.len()
                );
                url = Some(u);
                key = Some(k);
                break m;
            }
            Probe::AccessRefused(why) if p.interactive => {
                println!("  {why}");
                println!("  Open WebUI is behind Cloudflare Access: enter its service token.");
                let id = p.ask_secret("Service token Client ID")?;
                let secret = p.ask_secret("Service token Client Secret")?;
                cf = Some((id, secret));
                url = Some(u);
                key = Some(k);
            }
            Probe::KeyRefused(why) if p.interactive => {
                println!("  {why}");
                url = Some(u);
            }
            Probe::Unreachable(why) | Probe::Other(why) if p.interactive => {
                println!("  {why}");
                key = Some(k);
            }
            Probe::AccessRefused(why)
            | Probe::KeyRefused(why)
            | Probe::Unreachable(why)
            | Probe::Other(why) => return Err(stop(why)),
        }
    };
    let url = url.unwrap_or_default();
    let key = key.ok_or_else(|| stop("no API key"))?;
    if models.is_empty() {
        return Err(stop(
            "this key can use no model: give the key's user access to a model in Open WebUI (Workspace > Models), then run init again",
        ));
    }

    let model = match a.model.clone() {
        Some(m) if models.contains(&m) => m,
        Some(m) if !p.interactive => {
            return Err(stop(format!(
                "the key cannot use the model {m:?}; it can use: {}",
                models.join(", ")
            )));
        }
        _ if !p.interactive => models[0].clone(),
        _ => {
            println!("Models this key can use:");
            for (i, m) in models.iter().enumerate() {
                println!("  {}. {m}", i + 1);
            }
            loop {
                let a = p.ask("Model for your classes (number or name)", Some("1"))?;
                let pick = a
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| n.checked_sub(1))
                    .and_then(|i| models.get(i).cloned())
                    .or_else(|| models.iter().find(|m| **m == a).cloned());
                match pick {
                    Some(m) => break m,
                    None => println!("  {a:?} is not in the list"),
                }
            }
        }
    };

    let detected = detect_timezone();
    let timezone = loop {
        let tz = match (&a.timezone, p.interactive) {
            (Some(tz), _) => tz.clone(),
            (None, true) => p.ask("Time zone", Some(&detected))?,
            (None, false) => detected.clone(),
        };
        match jiff::tz::TimeZone::get(&tz) {
            Ok(_) => break tz,
            Err(_) if p.interactive && a.timezone.is_none() => {
                println!("  {tz:?} is not an IANA time zone (e.g. Europe/Berlin)")
            }
            Err(_) => return Err(stop(format!("{tz:?} is not an IANA time zone"))),
        }
    };

    let count = loop {
        let n = match (a.classes, p.interactive) {
            (Some(n), _) => n,
            (None, true) => match p
                .ask("How many classes (each gets its own code)", Some("1"))?
                .parse()
            {
                Ok(n) => n,
                Err(_) => {
                    println!("  a number, please");
                    continue;
                }
            },
            (None, false) => 1,
        };
        if (1..=50).contains(&n) {
            break n;
        }
        if !p.interactive || a.classes.is_some() {
            return Err(stop("--classes takes 1 to 50"));
        }
        println!("  1 to 50, please");
    };
    let title = match (&a.class_title, p.interactive) {
        (Some(t), _) => t.clone(),
        (None, true) => p.ask("Title students see in the widget", Some("Class assistant"))?,
        (None, false) => "Class assistant".into(),
    }
    .replace('\'', "\u{2019}");

    let (password, generated) = loop {
        let pw = match (&a.admin_password, p.interactive) {
            (Some(pw), _) => pw.clone(),
            (None, true) => p.ask_secret(
                "Dashboard password, at least 12 characters (leave empty to generate one)",
            )?,
            (None, false) => SecretString::from(String::new()),
        };
        if pw.expose_secret().is_empty() {
            break (SecretString::from(generate_password()), true);
        }
        if pw.expose_secret().chars().count() >= 12 {
            break (pw, false);
        }
        if !p.interactive || a.admin_password.is_some() {
            return Err(stop("the dashboard password needs at least 12 characters"));
        }
        println!("  at least 12 characters, please");
    };
    let hash = crate::admin::session::hash_password(password.expose_secret())
        .map_err(|e| stop(format!("cannot hash the password: {e}")))?;

    let default_public = format!("http://{}", a.listen_addr);
    let public_url = match (&a.public_url, p.interactive) {
        (Some(u), _) => normalize_url(u).map_err(stop)?,
        (None, true) => loop {
            let u = p.ask(
                "Address students' browsers will reach classchat at",
                Some(&default_public),
            )?;
            match normalize_url(&u) {
                Ok(u) => break u,
                Err(e) => println!("  {e}"),
            }
        },
        (None, false) => default_public,
    };

    let codes: Vec<String> = (0..count)
        .map(|_| crate::classes::generate_code())
        .collect();
    let mut text = String::from(
        "# classchat settings, written by `classchat init`. Keep this file private (mode 0600).\n\
         # Every variable is described in `classchat --help`. Check them with `classchat check`.\n",
    );
    for (k, v) in [
        ("LISTEN_ADDR", a.listen_addr.as_str()),
        ("PUBLIC_URL", &public_url),
        ("OPEN_WEBUI_URL", &url),
        ("OPEN_WEBUI_API_KEY", key.expose_secret()),
        ("OPEN_WEBUI_MODEL", &model),
    ] {
        text.push_str(&line(k, v)?);
    }
    if let Some((id, secret)) = &cf {
        text.push_str(&line("CF_ACCESS_CLIENT_ID", id.expose_secret())?);
        text.push_str(&line("CF_ACCESS_CLIENT_SECRET", secret.expose_secret())?);
    }
    text.push_str(&line("TIMEZONE", &timezone)?);
    text.push_str(&line("AUTH_SECRET", &crate::basics::random_secret())?);
    text.push_str("# One code per class (class-1, class-2, …); the dashboard can rotate them.\n");
    text.push_str(&line("ACCESS_CODE", &codes.join(","))?);
    text.push_str(&line("CLASS_TITLE", &title)?);
    text.push_str(&line("ADMIN_PASSWORD_HASH", &hash)?);
    text.push_str(&line("DATABASE_URL", "sqlite://classchat.db")?);
    loop {
        match write_private(&out, &text, agreed)? {
            Written::Done => break,
            // Someone made the file while the questions were answered.
            Written::Appeared if p.interactive => {
                if !p.yes_no(&format!(
                    "{} appeared while you answered. Overwrite it?",
                    out.display()
                ))? {
                    return Err(stop(format!(
                        "{} left as it was; nothing was written",
                        out.display()
                    )));
                }
                agreed = true;
            }
            Written::Appeared => {
                return Err(stop(format!(
                    "{} appeared while set-up ran: pass --force to overwrite it; nothing was written",
                    out.display()
                )));
            }
        }
    }

    println!();
    println!("Wrote {} (readable only by you).", out.display());
    println!();
    println!("Access codes (give each class its own):");
    for (i, c) in codes.iter().enumerate() {
        println!("  class-{}: {c}", i + 1);
    }
    if generated {
        println!(
            "Dashboard password (shown only now; the file keeps a hash): {}",
            password.expose_secret()
        );
    }
    println!();
    println!("Paste this into the page where the assistant should appear:");
    println!();
    println!("{}", crate::pages::embed_snippet(&public_url));
    println!();
    println!(
        "Next: ./classchat check   (then ./classchat to start; the dashboard is at {public_url}/admin)"
    );
    Ok(())
}

/// Refuses a target that belongs to someone else: writing secrets into (or replacing) a
/// file another user planted would hand them the secrets, or their file to us.
fn refuse_foreign(path: &Path, m: &std::fs::Metadata) -> Result<(), InitError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = own_uid(path)?;
        if m.uid() != me {
            return Err(stop(format!(
                "{} belongs to another user (uid {}): remove it, or write elsewhere with --output; nothing was written",
                path.display(),
                m.uid()
            )));
        }
    }
    let _ = (path, m);
    Ok(())
}

/// This process's effective user id (no `unsafe` `geteuid`): the owner of `/proc/self`, or
/// else of a file it creates next to `near`.
#[cfg(unix)]
fn own_uid(near: &Path) -> Result<u32, InitError> {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = std::fs::metadata("/proc/self") {
        return Ok(m.uid());
    }
    let probe = parent_dir(near).join(format!(
        ".classchat-uid-{}",
        crate::admin::session::random_token()
    ));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| stop(format!("cannot tell who owns {}: {e}", near.display())))?;
    let uid = f.metadata().map(|m| m.uid());
    let _ = std::fs::remove_file(&probe);
    Ok(uid?)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// How writing went.
#[derive(Debug, PartialEq, Eq)]
enum Written {
    Done,
    /// `path` did not exist when set-up began (or was not to be replaced) but does now.
    Appeared,
}

/// Writes `text` to `path` with mode 0600 through a new temporary file in the same
/// directory, then puts it in place: by rename when `replace` (which replaces a symlink
/// rather than following it), else by a hard link, which fails if `path` exists by then.
fn write_private(path: &Path, text: &str, replace: bool) -> Result<Written, InitError> {
    let dir = parent_dir(path);
    let cannot = |e: std::io::Error| stop(format!("cannot write {}: {e}", path.display()));
    let tmp = loop {
        let name = dir.join(format!(
            ".classchat-init-{}",
            crate::admin::session::random_token()
        ));
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600).custom_flags(libc::O_NOFOLLOW);
        }
        match o.open(&name) {
            Ok(f) => break (name, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(cannot(e)),
        }
    };
    let (tmp_path, mut f) = tmp;
    // Removes the temporary file on every way out but success.
    struct Cleanup<'a>(&'a Path, bool);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            if !self.1 {
                let _ = std::fs::remove_file(self.0);
            }
        }
    }
    let mut cleanup = Cleanup(&tmp_path, false);
    f.write_all(text.as_bytes()).map_err(cannot)?;
    f.sync_all().map_err(cannot)?;
    drop(f);
    // Checked again right before: the file may have been planted since the start.
    if let Ok(m) = std::fs::symlink_metadata(path) {
        refuse_foreign(path, &m)?;
        if !replace {
            return Ok(Written::Appeared);
        }
    }
    if replace {
        std::fs::rename(&tmp_path, path).map_err(cannot)?;
        cleanup.1 = true;
    } else {
        match std::fs::hard_link(&tmp_path, path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Ok(Written::Appeared);
            }
            Err(e) => return Err(cannot(e)),
        }
    }
    Ok(Written::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_single_quoted_so_hashes_survive_dotenv() {
        let l = line("ADMIN_PASSWORD_HASH", "$argon2id$v=19$m=19456").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".env");
        std::fs::write(&p, &l).unwrap();
        let read: Vec<(String, String)> = dotenvy::from_path_iter(&p)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(read[0].1, "$argon2id$v=19$m=19456");
        assert!(line("CLASS_TITLE", "it's").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_written_private_through_a_temporary_and_never_through_a_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join(".env");
        assert_eq!(
            write_private(&out, "A='1'\n", false).unwrap(),
            Written::Done
        );
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Without leave to replace, an existing file is reported, not touched.
        assert_eq!(
            write_private(&out, "B='2'\n", false).unwrap(),
            Written::Appeared
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "A='1'\n");
        // A symlink in its place is replaced, and what it points at is left alone.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::fs::remove_file(&out).unwrap();
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        assert_eq!(write_private(&out, "C='3'\n", true).unwrap(), Written::Done);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(
            !std::fs::symlink_metadata(&out)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "C='3'\n");
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".classchat-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn urls_are_checked_and_lose_their_trailing_slash() {
        assert_eq!(
            normalize_url("https://chat.example.edu/").unwrap(),
            "https://chat.example.edu"
        );
        assert!(normalize_url("chat.example.edu").is_err());
        assert!(normalize_url("ftp://x").is_err());
    }
}
