//! The `classchat` command line: the server's configuration ([`Config`], flattened in),
//! and the commands run once instead of serving. The top floor: commands may use every
//! module, and no module uses them.

use clap::Parser;

use crate::config::Config;

/// `classchat admin`: the administrator's tasks on the server itself.
pub mod admin;
/// `classchat check`: every check a teacher needs, each failure explained with its fix.
pub mod check;
/// `classchat init`: the guided set-up that writes `.env`.
pub mod init;
/// `classchat migrate-db`: copying history from one database to another.
pub mod migrate_db;

/// Run the classchat server: an access-code gated chat widget in front of Open WebUI.
///
/// Every option can also be set as an environment variable (shown in brackets) or in a
/// `.env` file in the working directory. Durations take a unit: 90s, 60m, 12h, 7d.
#[derive(Debug, Clone, Parser)]
#[command(name = "classchat", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,

    /// Something to do instead of serving (none: run the server).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `classchat <command>`: tasks run once instead of the server; the server's settings
/// (AUTH_SECRET, codes…) are not needed for them.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Copy the history (usage, sessions, revocations, class changes, audit) from one
    /// database to another, e.g. SQLite to PostgreSQL. Stop the server first. Safe to run
    /// again: rows already there are skipped.
    MigrateDb {
        /// The database to copy from, e.g. sqlite://classchat.db.
        #[arg(long)]
        from: String,
        /// The database to copy to (its tables are created if missing), e.g.
        /// postgres://user:password@host/classchat?sslmode=verify-full.
        #[arg(long)]
        to: String,
    },
    /// Check everything a class needs and explain each failure with its fix: the
    /// configuration, Open WebUI (DNS, TCP, TLS), Cloudflare Access, the API key, every
    /// class's model, a streamed test reply, PUBLIC_URL serving /widget.js, and the clock.
    /// Exit status 0 only when every check passes.
    Check,
    /// Set up: ask for Open WebUI's address and API key, find the models, and write a .env
    /// with generated secrets and one access code per class (mode 0600; an existing file is
    /// overwritten only when you agree or pass --force). `--yes` asks nothing, for scripts.
    Init(init::InitArgs),
    /// The administrator's tasks on the server itself (DATABASE_URL names the database).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Exit status 0 when the server on LISTEN_ADDR (asked on this machine) answers
    /// /healthz, else 1 with one line why: a container's HEALTHCHECK, which has no curl.
    /// Reads only LISTEN_ADDR, so it answers even when other settings are wrong.
    Healthcheck,
}

/// `classchat admin <task>`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AdminCommand {
    /// Print a new administrator token for the admin API (`cc_pat_…`). It is shown this
    /// once and stored only as a digest: keep it in a password manager.
    CreateToken {
        /// What the token is for, e.g. "SIS sync".
        #[arg(long)]
        name: String,
    },
}
