//! One integration-test binary: the real router on a loopback port, a real SQLite file,
//! and a fake Open WebUI on its own port.

mod admin;
mod admin_cf;
mod assets;
mod chat;
mod config;
mod dashboard_scale;
mod hardening_net;
mod helpers;
mod session;
