//! The systemd units the README tells people to install: `classchat init --systemd` prints
//! exactly the shipped ones, and `systemd-analyze security --offline=yes` rates each at most
//! 2.0 (skipped, saying so, where systemd-analyze is not installed).

use std::path::Path;

const SERVICE: &str = include_str!("../../../deploy/classchat.service");
const REPLICA: &str = include_str!("../../../deploy/classchat@.service");
const README: &str = include_str!("../../../README.md");
const ANALYZE: &str = "/usr/bin/systemd-analyze";

#[tokio::test]
async fn init_systemd_prints_the_shipped_units_and_asks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_classchat"))
        .current_dir(dir.path())
        .env_clear()
        .args(["init", "--systemd"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(SERVICE), "{text}");
    assert!(text.contains(REPLICA), "{text}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing written"
    );
}

/// The README installs the shipped files rather than a unit of its own (which drifted
/// weaker than the shipped one before).
#[test]
fn the_readme_installs_the_shipped_units_and_writes_none_of_its_own() {
    assert!(README.contains("deploy/classchat.service"));
    assert!(README.contains("deploy/classchat@.service"));
    assert!(
        !README.contains("[Service]"),
        "a unit written out in the README"
    );
}

#[test]
fn every_unit_the_readme_installs_rates_at_most_2_0() {
    if !Path::new(ANALYZE).exists() {
        eprintln!("SKIPPED: {ANALYZE} is missing (Debian: apt-get install systemd)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A template is analysed as one of its instances.
    for (name, text) in [
        ("classchat.service", SERVICE),
        ("classchat@8081.service", REPLICA),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(ANALYZE)
            .args(["security", "--offline=yes"])
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let level: f64 = text
            .lines()
            .find_map(|l| l.split_once(&format!("Overall exposure level for {name}: ")))
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no exposure level in {text}"));
        assert!(level <= 2.0, "{name} rates {level}: {text}");
    }
}
