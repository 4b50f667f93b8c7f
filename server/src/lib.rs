//! classchat's server: its modules in the order a request meets them, as in the README's
//! code tour.

/// The teacher dashboard.
pub mod admin;
/// The admin JSON API (`/api/v1/admin/…`) for scripts, with its OpenAPI document.
pub mod api_admin;
/// The embedded widget files: the loader, then the glue and wasm it fetches.
pub mod assets;
/// Access-code sign-in, widget tokens and the token-checking extractor.
pub mod auth;
/// Small shared helpers: the clock, durations, poison-tolerant locks, the HMAC type.
pub mod basics;
/// The classes in force: configured, changed on the dashboard, made in the store.
pub mod classes;
/// The command line and the commands run instead of serving (`init`, `check`, `migrate-db`,
/// `admin`).
pub mod cli;
/// The client's address, behind trusted proxies too.
pub mod client_addr;
/// Configuration from flags, environment and `.env`, checked at start-up.
pub mod config;
/// `/embed`: the widget as a page, for iframes and the loader's CSP fallback.
pub mod embed;
/// The error type and the contract's error body.
pub mod error;
/// What the checks found, for the dashboard's Health panel.
pub mod health;
/// Rate limiters: GCRA in memory.
pub mod limiter;
/// The sign-in and message limits, in memory or shared through PostgreSQL.
pub mod limits;
/// Server-rendered pages.
pub mod pages;
/// The chat relay to Open WebUI and its upstream client (the heart of classchat).
pub mod relay;
/// Building the router and running the server with graceful shutdown.
pub mod startup;
/// What handlers share.
pub mod state;
/// Every SQL statement.
pub mod store;
/// Keeping replicas' in-memory copies fresh (LISTEN/NOTIFY, resync) and housekeeping.
pub mod sync;
/// Teachers, roles, personal access tokens and invitations: the rules, not the storage.
pub mod teachers;
/// Logging set-up.
pub mod telemetry;
/// The usage log writer and daily quotas.
pub mod usage;
