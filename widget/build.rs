//! Writes `style/widget.css` without its comments, indentation and blank lines to
//! `$OUT_DIR/widget.css`, which `entry.rs` compiles into the wasm: the comments are for
//! readers, and every byte in the wasm is downloaded when the bubble opens. Lines are kept
//! (each rule as written), so `scripts/size-report` still finds the first rule in the wasm.

use std::{env, fs, path::PathBuf};

fn main() {
    let src = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../style/widget.css");
    println!("cargo:rerun-if-changed={}", src.display());
    let css = fs::read_to_string(&src).expect("style/widget.css");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("widget.css");
    fs::write(out, minify(&css)).expect("write widget.css to OUT_DIR");
}

/// Drops `/* … */` comments, then each line's surrounding blanks and empty lines. The
/// stylesheet has no strings holding `/*`, so nothing else is touched.
fn minify(css: &str) -> String {
    let mut bare = String::with_capacity(css.len());
    let mut rest = css;
    while let Some(start) = rest.find("/*") {
        bare.push_str(&rest[..start]);
        rest = rest[start + 2..]
            .find("*/")
            .map_or("", |end| &rest[start + 2 + end + 2..]);
    }
    bare.push_str(rest);
    let lines: Vec<&str> = bare
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.join("\n")
}
