//! The classchat widget: a Leptos client-side app compiled to WebAssembly.
//!
//! `widget.js` (the loader, see `widget/loader.js`) puts a bubble in a shadow root on the
//! host page and, on the first click, loads this module and calls [`mount`] with the
//! panel element and the `data-*` configuration. The pure logic below builds and is
//! tested on every target; the DOM side (`api`, `components`, `entry`) is wasm32-only.

pub mod error;
pub mod i18n;
pub mod markdown;
pub mod math;
pub mod sse;
pub mod state;
pub mod storage;

#[cfg(target_arch = "wasm32")]
mod api;
#[cfg(target_arch = "wasm32")]
mod components;
#[cfg(target_arch = "wasm32")]
mod entry;

#[cfg(target_arch = "wasm32")]
pub use entry::mount;
