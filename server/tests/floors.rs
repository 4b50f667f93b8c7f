//! The server's modules stand on floors (README, "How it works"): a module imports only from
//! its own floor or below, so configuration never depends on a command, the store never on
//! an HTTP handler. The one way up is `AppState` (`crate::state`), the hub that services and
//! handlers reach everything through.
//!
//! This test reads every source file under `server/src`, finds each `crate::…` and
//! `super::…` path outside comments, and checks it against [`FLOORS`]. A new module must be
//! given a floor here, which is the moment to decide where it stands.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Module path prefixes and their floors, bottom (1) to top (5). The longest prefix names a
/// module's floor, so `relay::upstream` (a service) stands below `relay` (its HTTP handlers).
const FLOORS: &[(&str, u8)] = &[
    // 1: settings and small helpers: no I/O beyond reading the environment and files.
    ("basics", 1),
    ("config", 1),
    ("sealed", 1),
    ("telemetry", 1),
    // 2: every SQL statement, and the pure domain.
    ("store", 2),
    ("classes", 2),
    ("conversations", 2),
    ("retention", 2),
    ("limiter", 2),
    ("limits", 2),
    ("teachers", 2),
    ("usage", 2),
    ("auth::token", 2),
    ("error", 2),
    ("health", 2),
    ("safety", 2),
    ("allowances", 2),
    ("personal_codes", 2),
    // 3: services that talk to the world.
    ("relay::upstream", 3),
    ("relay::http1", 3),
    ("relay::demo", 3),
    ("relay::models", 3),
    ("relay::sse", 3),
    ("sync", 3),
    ("alerts", 3),
    ("jwks", 3),
    // 4: HTTP: routers, handlers, extractors, and the state they share.
    ("admin", 4),
    ("api_admin", 4),
    ("assets", 4),
    ("auth", 4),
    ("client_addr", 4),
    ("embed", 4),
    ("invitation_page", 4),
    ("lti", 4),
    ("lti::error", 3),
    ("lti::registration", 4),
    ("lti::tool_key", 3),
    ("lti::verify", 3),
    ("pages", 4),
    ("relay", 4),
    ("state", 4),
    // 5: building the server, and the commands.
    ("startup", 5),
    ("cli", 5),
];

/// The hub: importable from the services' floor up, whatever floor it stands on.
const HUB: &str = "state";
const HUB_FROM: u8 = 3;

fn floor_of(path: &[String]) -> Option<u8> {
    FLOORS
        .iter()
        .filter(|(prefix, _)| {
            let p: Vec<&str> = prefix.split("::").collect();
            p.len() <= path.len() && p.iter().zip(path).all(|(a, b)| a == b)
        })
        .max_by_key(|(prefix, _)| prefix.split("::").count())
        .map(|(_, f)| *f)
}

/// `src/a/b.rs` → `["a", "b"]`; `src/a/mod.rs` → `["a"]`; the crate roots → `None`.
fn module_of(src: &Path, file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let mut segs: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if segs.last().is_some_and(|s| s == "mod") {
        segs.pop();
    }
    match segs.as_slice() {
        [only] if only == "lib" || only == "main" => None,
        [first, ..] if first == "bin" => None,
        _ => Some(segs),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The module paths a file names: `crate::a::b`, `super::c`, and each branch of
/// `crate::{a::x, b}`, resolved to paths from the crate root (the item at the end included;
/// [`floor_of`] only needs the prefix).
fn imports(text: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        for (root, base) in [
            ("crate::", Vec::new()),
            ("super::", module[..module.len() - 1].to_vec()),
        ] {
            let mut rest = code;
            while let Some(at) = rest.find(root) {
                let before = rest[..at].chars().next_back();
                rest = &rest[at + root.len()..];
                if before.is_some_and(|c| is_ident(c) || c == ':') {
                    continue; // `foo_crate::`, or the `super::` inside `super::super::`
                }
                let mut heads: Vec<&str> = vec![rest];
                if let Some(group) = rest.strip_prefix('{') {
                    let end = group.find('}').unwrap_or(group.len());
                    heads = group[..end].split(',').map(str::trim).collect();
                }
                for head in heads {
                    let mut path = base.clone();
                    for seg in head.split("::") {
                        let ident: String = seg.chars().take_while(|&c| is_ident(c)).collect();
                        if ident.is_empty() {
                            break;
                        }
                        let whole = ident.len() == seg.len();
                        path.push(ident);
                        if !whole {
                            break;
                        }
                    }
                    // `super::*` (a test module's glob of its own file) names nothing.
                    if path.len() > base.len() {
                        out.push(path);
                    }
                }
            }
        }
    }
    out
}

/// Every import that runs from a lower floor up to a higher one, as readable lines.
fn violations(src: &Path) -> (Vec<String>, usize) {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut bad = BTreeSet::new();
    let mut checked = 0;
    for file in &files {
        let Some(module) = module_of(src, file) else {
            continue;
        };
        let Some(own) = floor_of(&module) else {
            bad.insert(format!(
                "{}: module `{}` has no floor in FLOORS",
                file.display(),
                module.join("::")
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for target in imports(&text, &module) {
            checked += 1;
            let Some(floor) = floor_of(&target) else {
                continue; // an external crate's `crate::` in a macro, or a crate-root item
            };
            if floor <= own || (target[0] == HUB && own >= HUB_FROM) {
                continue;
            }
            bad.insert(format!(
                "{}: `{}` (floor {own}) imports `crate::{}` (floor {floor})",
                file.display(),
                module.join("::"),
                target.join("::")
            ));
        }
    }
    (bad.into_iter().collect(), checked)
}

#[test]
fn no_module_imports_from_a_higher_floor() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (bad, checked) = violations(&src);
    assert!(
        checked > 100,
        "only {checked} imports found: is the scan broken?"
    );
    assert!(
        bad.is_empty(),
        "imports that run up the floors:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_scanner_sees_each_form_of_import() {
    let module = vec!["relay".to_owned(), "upstream".to_owned()];
    let text = "use crate::config::Rate;\n\
                use crate::{store::Store, cli};\n\
                // use crate::startup;\n\
                use super::{demo, http1};\n\
                let x = crate::auth::token::Keys::new();\n";
    let found: Vec<String> = imports(text, &module)
        .into_iter()
        .map(|p| p.join("::"))
        .collect();
    assert_eq!(
        found,
        [
            "config::Rate",
            "store::Store",
            "cli",
            "relay::demo",
            "relay::http1",
            "auth::token::Keys::new",
        ]
    );
    assert_eq!(floor_of(&["cli".to_owned()]), Some(5));
    assert_eq!(
        floor_of(&["relay".to_owned(), "upstream".to_owned()]),
        Some(3)
    );
    assert_eq!(floor_of(&["relay".to_owned(), "x".to_owned()]), Some(4));
}
