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

#[cfg(test)]
mod tests {
    /// What `entry.rs` compiles in: `build.rs`'s copy of `style/widget.css`.
    const BUILT: &str = include_str!(concat!(env!("OUT_DIR"), "/widget.css"));
    const SOURCE: &str = include_str!("../../style/widget.css");

    #[test]
    fn built_css_is_the_stylesheet_without_comments_or_indentation() {
        assert!(!BUILT.contains("/*") && !BUILT.contains("*/"));
        assert!(BUILT.lines().all(|l| !l.is_empty() && l == l.trim()));
        assert!(BUILT.len() < SOURCE.len() * 95 / 100, "nothing was removed");
        // Every rule survives as written: the code, less blanks, equals the source's
        // with its comments cut out.
        let squeeze = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        let mut uncommented = String::new();
        for (i, part) in SOURCE.split("/*").enumerate() {
            uncommented.push_str(if i == 0 {
                part
            } else {
                part.split_once("*/").unwrap().1
            });
        }
        assert_eq!(squeeze(BUILT), squeeze(&uncommented));
        assert!(BUILT.contains("--cc-accent-color:var(--cc-accent,#047857);"));
    }
}
