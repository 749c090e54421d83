//! Issue 18: Momentum's own configuration examples, extracted from its public documentation
//! and sample policy repository by `tests/momentum-corpus/extract.py` (each file's source is
//! in `SOURCES.tsv`). `bindery config check` runs on every file, and its outcome (`ok`, or
//! the first error without the file name) must equal `status.tsv`: the corpus records the
//! distance to Momentum, and a change that moves it shows in the diff. Run with
//! `BINDERY_BLESS=1` to record a new outcome.

use std::path::Path;
use std::process::Command;

/// `ok`, or the first error line of `config check` with the path cut off.
fn outcome(file: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bindery"))
        .args(["config", "check", "-c"])
        .arg(file)
        .output()
        .expect("run bindery");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return "ok".into();
    }
    let prefix = format!("{}:", file.display());
    text.lines()
        .find(|l| l.contains(": error: "))
        .map(|l| l.strip_prefix(&prefix).unwrap_or(l).to_string())
        .unwrap_or_else(|| format!("exit {:?} without an error line", out.status.code()))
}

#[test]
fn momentum_examples_load_as_recorded() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/momentum-corpus");
    let mut names: Vec<String> = std::fs::read_dir(dir.join("files"))
        .expect("corpus folder")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".conf"))
        .collect();
    names.sort();
    let mut got = String::from("file\toutcome\n");
    let mut ok = 0;
    for n in &names {
        let o = outcome(&dir.join("files").join(n));
        if o == "ok" {
            ok += 1;
        }
        got.push_str(&format!("{n}\t{o}\n"));
    }
    eprintln!("Momentum corpus: {ok} of {} files load", names.len());
    let path = dir.join("status.tsv");
    if std::env::var_os("BINDERY_BLESS").is_some() {
        std::fs::write(&path, &got).expect("write status.tsv");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if want != got {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("- {a}\n+ {b}"))
            .take(20)
            .collect();
        panic!(
            "the corpus outcomes changed (BINDERY_BLESS=1 to record them):\n{}",
            diff.join("\n")
        );
    }
}
