//! Throwaway PostgreSQL clusters for the tests: Debian's `postgresql` server binaries,
//! a data directory in a temp dir, listening on a free loopback port only, password
//! (scram) authentication with a random password, `fsync=off`.
//!
//! `initdb` refuses to run as root, and CI runs as root: then every server command runs as
//! the `postgres` user (`runuser`). Rust does not drop statics at exit, so each cluster
//! also gets a reaper (a detached shell) that stops it and removes its directory once the
//! test process has ended, however it ended.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use sqlx::Connection;

/// The cluster the whole test binary shares (started on first use): one `initdb` per run.
pub(crate) fn shared() -> &'static PgCluster {
    static SHARED: OnceLock<PgCluster> = OnceLock::new();
    SHARED.get_or_init(|| {
        let c = PgCluster::new(&[]);
        c.start();
        c
    })
}

/// A database cluster a test (or the whole binary, see [`shared`]) owns: stopped and
/// removed on drop.
pub(crate) struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: AtomicU16,
    password: String,
    as_postgres: bool,
}

impl PgCluster {
    /// Runs `initdb` in a new temp dir; `conf` lines go into its postgresql.conf (e.g.
    /// `ssl = on`). Files to place in the data directory first: see [`Self::with_files`].
    pub(crate) fn new(conf: &[&str]) -> Self {
        Self::with_files(conf, &[])
    }

    /// As [`Self::new`], with `(name, contents)` files written into the data directory,
    /// owned by the server's user with mode 0600 (a TLS key must be).
    pub(crate) fn with_files(conf: &[&str], files: &[(&str, &[u8])]) -> Self {
        let bin = pg_bin();
        let as_postgres = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        let dir = tempfile::Builder::new()
            .prefix("classchat-pg-")
            .tempdir()
            .expect("a temp dir for PostgreSQL")
            .keep();
        let password = random_password();
        let c = Self {
            dir,
            bin,
            port: AtomicU16::new(free_port()),
            password,
            as_postgres,
        };
        c.spawn_reaper();
        let pwfile = c.dir.join("pwfile");
        std::fs::write(&pwfile, &c.password).unwrap();
        c.give_to_server_user(&c.dir);
        c.give_to_server_user(&pwfile);
        let data = c.data();
        c.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--auth=scram-sha-256".as_ref(),
                format!("--pwfile={}", pwfile.display()).as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
                "-N".as_ref(),
            ],
        );
        let _ = std::fs::remove_file(&pwfile);
        let mut settings = format!(
            "\n# classchat test harness\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 300\n\
             shared_buffers = 32MB\n",
            c.dir.display()
        );
        for line in conf {
            settings.push_str(line);
            settings.push('\n');
        }
        let conf_path = data.join("postgresql.conf");
        let mut all = std::fs::read_to_string(&conf_path).unwrap();
        all.push_str(&settings);
        std::fs::write(&conf_path, all).unwrap();
        for (name, contents) in files {
            let p = data.join(name);
            std::fs::write(&p, contents).unwrap();
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            c.give_to_server_user(&p);
        }
        c
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The temp dir holding the cluster (its data directory is `data` in it).
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn port(&self) -> u16 {
        self.port.load(Ordering::SeqCst)
    }

    /// The superuser's password: tests check it never reaches a log line or an error.
    pub(crate) fn password(&self) -> &str {
        &self.password
    }

    /// A URL for database `db` as the superuser, with the password in it.
    pub(crate) fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{db}",
            self.password,
            self.port()
        )
    }

    /// Starts the server and waits until it accepts connections. The first start of a
    /// cluster moves to another free port if its port was taken meanwhile.
    pub(crate) fn start(&self) {
        for attempt in 0..3 {
            let port = self.port().to_string();
            let log = self.dir.join("server.log");
            let out = self.command(
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    self.data().as_os_str(),
                    "-l".as_ref(),
                    log.as_os_str(),
                    "-o".as_ref(),
                    format!("-p {port}").as_ref(),
                    "-w".as_ref(),
                    "-t".as_ref(),
                    "60".as_ref(),
                    "start".as_ref(),
                ],
            );
            if out.status.success() {
                return;
            }
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            if attempt < 2 && log.contains("could not bind") {
                self.port.store(free_port(), Ordering::SeqCst);
                continue;
            }
            panic!(
                "pg_ctl start failed: {}\n{}\nserver log:\n{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Stops the server (`-m fast`: open connections are cut), keeping its data.
    pub(crate) fn stop(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                self.data().as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        );
    }

    /// Creates a database with a name no other test uses and returns its URL.
    pub(crate) async fn create_database(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "classchat_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let mut conn = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("the test cluster answers");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE");
        let _ = conn.close().await;
        self.url(&name)
    }

    fn spawn_reaper(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = format!(
            "{}{} -D '{}' -m immediate stop",
            if self.as_postgres {
                "runuser -u postgres -- "
            } else {
                ""
            },
            pg_ctl.display(),
            self.data().display()
        );
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            dir = self.dir.display()
        );
        // Forked into its own session (`setsid -f`, which returns at once), so a Ctrl-C to
        // the test run does not take the reaper with it.
        let run = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let background = format!("({script}) &");
        assert!(
            run("setsid", &["-f", "sh", "-c", &script]) || run("sh", &["-c", &background]),
            "the cluster's reaper starts"
        );
    }

    fn give_to_server_user(&self, path: &Path) {
        if self.as_postgres {
            let id = |flag: &str| -> u32 {
                let out = Command::new("id")
                    .args([flag, "postgres"])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse()
                    .expect("a `postgres` user exists (Debian's postgresql package makes it)")
            };
            std::os::unix::fs::chown(path, Some(id("-u")), Some(id("-g"))).unwrap();
        }
    }

    /// Runs one of the server's programs as the server's user.
    fn command(&self, program: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
    }

    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) {
        let out = self.command(program, args);
        assert!(
            out.status.success(),
            "{program} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.command(
            "pg_ctl",
            &[
                "-D".as_ref(),
                self.data().as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "stop".as_ref(),
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The server's binaries: `CLASSCHAT_PG_BIN`, else the newest /usr/lib/postgresql/*/bin
/// (Debian's layout), else whatever `initdb` is on the PATH.
fn pg_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("CLASSCHAT_PG_BIN") {
        return dir.into();
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max();
    if let Some((_, bin)) = newest {
        return bin;
    }
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).find(|p| p.join("initdb").exists()));
    on_path.expect(
        "no PostgreSQL server binaries (initdb): run scripts/setup, or set CLASSCHAT_PG_BIN",
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn random_password() -> String {
    use rand::Rng;
    // Letters and digits, so it sits in a URL as is.
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}
