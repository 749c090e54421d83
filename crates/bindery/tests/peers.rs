//! Runs the real-client tests (`tests/peers/*.py`: Python smtplib, raw sockets, swaks, a
//! kill -9 crash test, a full-disk test) against this build's binary. `.ci/run` installs
//! what they need (python3, swaks, openssl).

use std::path::Path;
use std::process::Command;

#[test]
fn reception_against_real_clients() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("python3")
        .arg(root.join("tests/peers/receive.py"))
        .env("BINDERY_BIN", env!("CARGO_BIN_EXE_bindery"))
        .output()
        .expect("python3 must be installed");
    let text = String::from_utf8_lossy(&out.stderr);
    eprintln!("{text}");
    assert!(out.status.success(), "peer tests failed");
}
