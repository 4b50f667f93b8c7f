//! classchat's server. Its modules stand on floors, bottom to top: a module imports only
//! from its own floor or below, and the one way up is [`state::AppState`], the hub services
//! and handlers reach everything through. The README's code tour describes each floor, and
//! `tests/floors.rs` fails on an import that runs up.

// Floor 1, settings: parsed and checked once; no I/O beyond the environment and files.

/// Small shared helpers: the clock, durations, poison-tolerant locks, the HMAC type,
/// secrets, URLs with their passwords cut out.
pub mod basics;
/// Configuration from flags, environment and `.env`, checked at start-up.
pub mod config;
/// Text sealed at rest (stored conversations) under keys derived from AUTH_SECRET.
pub mod sealed;
/// Logging set-up.
pub mod telemetry;

// Floor 2, the store and the pure domain.

/// Allowances that follow a student known by identity (a personal code, an LTI launch)
/// across sessions, devices and replicas.
pub mod allowances;

/// The classes in force: configured, changed on the dashboard, made in the store.
pub mod classes;
/// Stored conversations: what a class's visibility keeps, sealed, written off the reply's
/// path; the flagged-exchange hook for the safety check.
pub mod conversations;
/// The error type and the contract's error body.
pub mod error;
/// What the checks found, for the dashboard's Health panel.
pub mod health;
/// Rate limiters: GCRA in memory.
pub mod limiter;
/// The sign-in and message limits, in memory or shared through PostgreSQL.
pub mod limits;
/// Personal codes: one per student, the name the teacher's, stored as digests.
pub mod personal_codes;
/// Deleting stored conversations, usage rows and sessions once past their time.
pub mod retention;
/// What counts as a safety concern: the phrase lists, the safety model's answers.
pub mod safety;
/// Every SQL statement.
pub mod store;
/// Teachers, roles, personal access tokens and invitations: the rules, not the storage.
pub mod teachers;
/// The usage log writer and daily quotas.
pub mod usage;

// Floor 3, services that talk to the world: the upstream client (`relay::upstream`,
// `relay::http1`, `relay::sse`, `relay::demo`) and:

/// The safety check beside each reply, and alerts by email and webhook from a durable outbox.
pub mod alerts;
/// Key sets (JWKS) of those whose RS256 tokens we check, cached by `kid`: Cloudflare Access
/// and the LMS platforms.
pub mod jwks;
/// Keeping replicas' in-memory copies fresh (LISTEN/NOTIFY, resync) and housekeeping.
pub mod sync;

// Floor 4, HTTP: one router per area, thin handlers, and the state they share.

/// The teacher dashboard.
pub mod admin;
/// The admin JSON API (`/api/v1/admin/…`) for scripts, with its OpenAPI document.
pub mod api_admin;
/// The embedded widget files: the loader, then the glue and wasm it fetches.
pub mod assets;
/// Access-code sign-in, widget tokens (`auth::token`, floor 2) and the token-checking
/// extractor.
pub mod auth;
/// The client's address, behind trusted proxies too.
pub mod client_addr;
/// `/embed`: the widget as a page, for iframes and the loader's CSP fallback.
pub mod embed;
/// `/admin/invitation`: where an invited teacher sets a password.
pub mod invitation_page;
/// LTI 1.3 launch and Deep Linking 2.0: classchat as a tool of Moodle, Canvas, Open edX.
pub mod lti;
/// Server-rendered pages.
pub mod pages;
/// The chat relay to Open WebUI and its upstream client (the heart of classchat).
pub mod relay;
/// What handlers share.
pub mod state;

// Floor 5, start-up and the commands.

/// The command line and the commands run instead of serving (`init`, `check`, `migrate-db`,
/// `admin`).
pub mod cli;
/// Building the router and running the server with graceful shutdown.
pub mod startup;
