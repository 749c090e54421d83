//! Momentum's own Lua scripts, unchanged, through `bindery policy test`: each case under
//! `tests/policy-corpus/cases/` and its golden `expect` (see that folder's README).
//! `BINDERY_BLESS=1` rewrites the golden files.

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/policy-corpus/cases")
}

/// A log line without its timestamp (`2026-12-07T08:00:00.000000Z  INFO ...`).
fn untimed(line: &str) -> &str {
    match line.split_once("Z  ") {
        Some((stamp, rest)) if stamp.len() > 18 && stamp.as_bytes()[4] == b'-' => rest.trim_start(),
        _ => line,
    }
}

fn run_case(dir: &Path) -> String {
    let args = std::fs::read_to_string(dir.join("args")).expect("args");
    let out = Command::new(env!("CARGO_BIN_EXE_bindery"))
        .current_dir(dir)
        .args(["policy", "test", "-c", "bindery.conf"])
        .args(args.split_whitespace())
        .arg("message.eml")
        .env("RUST_LOG", "info")
        .output()
        .expect("bindery runs");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    let here = dir.display().to_string();
    for line in err.lines() {
        text.push_str("stderr: ");
        text.push_str(&untimed(line).replace(&here, "."));
        text.push('\n');
    }
    text.push_str(&format!("exit: {}\n", out.status.code().unwrap_or(-1)));
    text
}

#[test]
fn momentum_scripts_do_what_they_say() {
    let bless = std::env::var_os("BINDERY_BLESS").is_some();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("the corpus folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty());
    let mut failed = Vec::new();
    for dir in &dirs {
        let got = run_case(dir);
        let path = dir.join("expect");
        if bless {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if got != want {
            failed.push(format!(
                "{}:\n--- expected\n{want}--- got\n{got}",
                dir.display()
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases differ (BINDERY_BLESS=1 to re-bless):\n{}",
        failed.len(),
        dirs.len(),
        failed.join("\n")
    );
}
