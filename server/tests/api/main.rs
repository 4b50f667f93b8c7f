//! One integration-test binary: the real router on a loopback port, a real SQLite file,
//! and a fake Open WebUI on its own port.

mod admin;
mod admin_cf;
mod admin_hardening;
mod assets;
mod chat;
mod config;
mod dashboard_scale;
mod helpers;
mod session;
