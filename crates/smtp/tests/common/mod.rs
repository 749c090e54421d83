//! What the golden-transcript tests share: escapes and the compare-or-bless loop.
#![allow(dead_code)] // each test binary uses a different part

use std::fmt::Write as _;
use std::path::Path;

pub fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b'0' => out.push(0),
                b'\\' => out.push(b'\\'),
                b'x' => {
                    let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                c => panic!("bad escape \\{}", c as char),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

pub fn escape(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s
}

/// Runs `run` over every `*.txt` in `dir` (relative to the crate) and compares its output
/// with the file; `BINDERY_BLESS=1` rewrites the files instead.
pub fn check_goldens(dir: &str, min: usize, run: impl Fn(&str) -> String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let bless = std::env::var_os("BINDERY_BLESS").is_some();
    let mut failures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("txt"))
        .collect();
    entries.sort();
    for path in &entries {
        let text = std::fs::read_to_string(path).unwrap();
        let got = run(&text);
        if got != text {
            if bless {
                std::fs::write(path, &got).unwrap();
            } else {
                failures.push(format!(
                    "{}:\n--- expected\n{text}\n--- got\n{got}",
                    path.display()
                ));
            }
        }
    }
    assert!(
        entries.len() >= min,
        "only {} transcripts found",
        entries.len()
    );
    assert!(
        failures.is_empty(),
        "{} transcript(s) differ (BINDERY_BLESS=1 rewrites):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
