//! The release binary as a teacher meets it (`scripts/release` makes it): statically linked,
//! and from an empty directory with an empty environment it prints its help and serves a
//! demo with the embedded widget. Skipped, saying so, until `scripts/release` has run.

use std::path::PathBuf;

fn release_binary() -> Option<PathBuf> {
    let path = match std::env::var_os("CLASSCHAT_RELEASE_BIN") {
        Some(p) => PathBuf::from(p),
        None => {
            let target = option_env!("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
            target.join(format!(
                "dist/classchat-{}-{}-unknown-linux-musl",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::ARCH
            ))
        }
    };
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: no release binary at {} (run scripts/release, or set CLASSCHAT_RELEASE_BIN)",
            path.display()
        );
        None
    }
}

/// An ELF program header table without PT_INTERP: no dynamic loader, nothing to install.
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..4], b"\x7fELF", "an ELF file");
    assert_eq!(elf[4], 2, "64-bit");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).any(|i| {
        let at = phoff + i * size;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == 3
    })
}

#[test]
fn the_release_binary_is_static_and_runs_with_nothing_around_it() {
    let Some(bin) = release_binary() else { return };
    let elf = std::fs::read(&bin).unwrap();
    assert!(
        !has_interpreter(&elf),
        "{} needs a dynamic loader",
        bin.display()
    );
    if let Ok(out) = std::process::Command::new("file")
        .arg("-b")
        .arg(&bin)
        .output()
    {
        let info = String::from_utf8_lossy(&out.stdout);
        assert!(
            info.contains("statically linked") || info.contains("static-pie linked"),
            "{info}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("classchat");
    std::fs::copy(&bin, &copy).unwrap();
    let out = std::process::Command::new("env")
        .args(["-i", "./classchat", "--help"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{help}");
    for sub in ["init", "check", "migrate-db"] {
        assert!(help.contains(sub), "--help lists {sub}: {help}");
    }

    let mut child = std::process::Command::new("env")
        .args([
            "-i",
            "DEMO=true",
            "LOG_FORMAT=json",
            "LISTEN_ADDR=127.0.0.1:0",
            "./classchat",
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if let Some(a) = v.pointer("/fields/address").and_then(|a| a.as_str()) {
                let _ = tx.send(a.to_owned());
            }
        }
    });
    let address = rx.recv_timeout(std::time::Duration::from_secs(60));
    let widget = address.as_ref().ok().map(|a| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let r = reqwest::get(format!("http://{a}/widget.js")).await.unwrap();
            let ok = r.status() == 200;
            let ct = r.headers()["content-type"]
                .to_str()
                .unwrap_or("")
                .to_owned();
            (ok, ct, r.text().await.unwrap_or_default().len())
        })
    });
    let _ = child.kill();
    let _ = child.wait();
    let (ok, content_type, len) = widget.expect("the demo server started within a minute");
    assert!(
        ok && content_type.contains("javascript") && len > 0,
        "{content_type} {len}"
    );
}
