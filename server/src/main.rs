//! The `classchat` binary: read the configuration, start, stop cleanly on a signal.

use std::process::ExitCode;

use clap::Parser;
use classchat_server::cli::{Cli, Command};
use classchat_server::config::{RuntimeShape, UpstreamSettings};
use classchat_server::startup::Application;
use classchat_server::telemetry;

fn main() -> ExitCode {
    if let Err(e) = dotenvy::dotenv()
        && !e.not_found()
    {
        eprintln!("classchat: cannot read .env: {e}");
        return ExitCode::from(2);
    }
    // Before the full configuration, which the probe does not need (nor must it fail on).
    let probe = std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "healthcheck");
    let cli = (!probe).then(Cli::parse);
    // RUNTIME=per-core: the server is built on a current-thread runtime (which then serves
    // one listener and runs the background tasks) and starts one more per remaining core
    // (startup::Application::run_until_stopped). Commands other than serving keep the default.
    let per_core = cli.as_ref().is_some_and(|c| {
        c.command.is_none()
            && !c.config.hash_password
            && RuntimeShape::parse(&c.config.runtime) == Ok(RuntimeShape::PerCore)
    });
    let runtime = if per_core {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("classchat: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match cli {
        None => runtime.block_on(healthcheck()),
        Some(cli) => runtime.block_on(run(cli)),
    }
}

async fn run(Cli { config, command }: Cli) -> ExitCode {
    if let Some(Command::MigrateDb { from, to }) = &command {
        return match classchat_server::cli::migrate_db::run(from, to).await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("classchat migrate-db: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    if let Some(Command::Init(args)) = command.clone() {
        return match config.outbound_proxy() {
            Ok(proxy) => classchat_server::cli::init::command(args, proxy).await,
            Err(e) => {
                eprintln!("classchat init: {e}");
                ExitCode::from(1)
            }
        };
    }
    if let Some(Command::Admin(task)) = &command {
        return match classchat_server::cli::admin::command(&config.database_url, task).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("classchat admin: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    if let Some(Command::Check) = &command {
        return classchat_server::cli::check::command(config).await;
    }
    if config.hash_password {
        return hash_password_from_stdin();
    }
    let settings = match config.into_settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("classchat: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_json);
    if settings.demo {
        tracing::warn!(
            "DEMO MODE: a throw-away signing secret and the access code 'demo-code'; not for real classes"
        );
    }
    if matches!(settings.upstream, UpstreamSettings::Demo) {
        tracing::warn!("no OPEN_WEBUI_URL: replies come from the built-in demo responder");
    }
    if settings.allowed_origins.is_none() {
        tracing::warn!("ALLOWED_ORIGINS is not set: pages on any origin may embed the widget");
    }
    let app = match Application::build(settings.clone()).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("classchat: {e:#}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(
        address = %app.local_addr(),
        public_url = %app.state().public_url,
        timezone = %settings.timezone_name,
        widget = classchat_server::assets::widget_built(),
        "classchat listening"
    );
    // In the background: start-up is not held up by a slow or refusing Open WebUI.
    classchat_server::cli::check::spawn_startup(app.state().clone());
    match app.run_until_stopped(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("classchat: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// `classchat healthcheck`: exit status 0 when the server on LISTEN_ADDR (this machine; an
/// unspecified address is asked on loopback) answers `/healthz`, else 1 with one line why.
/// For a container's HEALTHCHECK: the image holds nothing but this binary, so no curl.
async fn healthcheck() -> ExitCode {
    let Ok(config) = classchat_server::config::Config::try_parse_from(["classchat"]) else {
        eprintln!("classchat healthcheck: the settings cannot be read: run `classchat check`");
        return ExitCode::from(2);
    };
    let Ok(mut addr) = config.listen_addr.trim().parse::<std::net::SocketAddr>() else {
        eprintln!("classchat healthcheck: LISTEN_ADDR is not an address:port");
        return ExitCode::from(2);
    };
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    // No proxy: HTTP_PROXY is for Open WebUI, and this asks the machine itself.
    let client = match reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("classchat healthcheck: {e}");
            return ExitCode::from(1);
        }
    };
    match client.get(format!("http://{addr}/healthz")).send().await {
        Ok(r) if r.status().is_success() => ExitCode::SUCCESS,
        Ok(r) => {
            eprintln!("classchat healthcheck: {addr} answered {}", r.status());
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("classchat healthcheck: no answer from {addr}: {e}");
            ExitCode::from(1)
        }
    }
}

/// `classchat --hash-password`: reads one line, prints an ADMIN_PASSWORD_HASH for it.
fn hash_password_from_stdin() -> ExitCode {
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err()
        || line.trim_end_matches(['\r', '\n']).chars().count() < 12
    {
        eprintln!("classchat: give a password of at least 12 characters on standard input");
        return ExitCode::from(2);
    }
    match classchat_server::admin::session::hash_password(line.trim_end_matches(['\r', '\n'])) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("classchat: {e}");
            ExitCode::from(1)
        }
    }
}
