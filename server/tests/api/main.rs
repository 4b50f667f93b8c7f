//! One integration-test binary: the real router on a loopback port, a real database (a
//! SQLite file, or with `CLASSCHAT_TEST_DB=postgres` a database in a throwaway PostgreSQL
//! cluster), and a fake Open WebUI on its own port.

mod access_windows;
mod activity_usage;
mod admin;
mod admin_api;
mod admin_cf;
mod admin_hardening;
mod alerts;
mod assets;
mod budget_leases;
mod chat;
mod check;
mod config;
mod conversations;
mod dashboard_scale;
mod dashboard_teachers;
mod embed;
mod hardening_net;
mod hardening_three;
mod healthcheck;
mod helpers;
mod init;
mod limits;
mod lti;
mod lti_platform;
mod pg;
mod pg_cluster;
mod pg_replicas;
mod proxy_nginx;
mod release;
mod request_log;
mod retention;
mod rotation;
mod route_guards;
mod safety;
mod session;
mod settings_in_code;
mod starters;
mod systemd_units;
mod teachers_api;
mod upstream_client;
mod usage_tokens;
