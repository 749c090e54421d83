//! Runs the real-peer tests against this build's binary: `tests/peers/receive.py` (Python
//! smtplib, raw sockets, swaks, a kill -9 crash test, a full-disk test) and
//! `tests/peers/deliver.py` (dnsmasq, aiosmtpd sinks, Python `email` and Sisimai reading our
//! bounces) and `tests/peers/policy.py` (a Lua policy assigning bindings, the sink checking
//! each message's source address) and `tests/peers/console.py` (the console and `/metrics`
//! read back against a sink, promtool, a reload under load, the TCP login, statistics across
//! a restart) and `tests/peers/lua_config.py` (`msys.config("set")` from `init` and callouts,
//! a binding created and assigned by a script, `config writeback` across a restart) and
//! `tests/peers/outbound_tls.py` (STARTTLS to aiosmtpd sinks under certificates openssl makes:
//! `tls_verify` no/ca/host/optional, `tls_ca`, the plaintext fallback) and
//! `tests/peers/reliability.py` (issue 16's findings, each against the peer it came from)
//! `tests/peers/momentum_logs.py` (issue 18: ec_logger and bounce_logger output, field by
//! field), and `tests/peers/momentum_files.py` (issue 18: `Security`'s drop from root, read in
//! `/proc/PID/status`; implicit TLS with openssl, swaks and Python; HAProxy's PROXY v1 and v2) and `tests/peers/many_bindings.py` (1,000 bindings to an aiosmtpd sink with a small accept
//! backlog: no connect waits in SYN-SENT, `ss` sampled) and `tests/peers/sample_policies.py`
//! (issue 19: Momentum's sample policy scripts, unchanged, end to end) and
//! `tests/peers/dkim_signing.py` (issue 20: the `opendkim` module's signatures checked by
//! python3-dkim and Mail::DKIM against keys dnsmasq serves) and `tests/peers/smtp_auth.py`
//! (issue 21: SMTP AUTH with swaks and smtplib, the guessing lockout, `config check`'s
//! refusals) and `tests/peers/transmissions.py` (issue 21: the Transmissions API with
//! SparkPost's Python client and curl) and `tests/peers/bounce_classes.py` (issue 22: bounce
//! classification against Sisimai on real bounces and providers' replies) and
//! `tests/peers/bounces.py` (issue 22: classes in the logs, metrics, console and Lua) and
//! `tests/peers/adaptive.py` (issue 22: a [TSS04] storm suspends one binding x domain; a
//! rising spam-refusal rate meets a sweep rule's thresholds).
//! `.ci/run` installs what they need.

use std::path::Path;
use std::process::Command;

fn run_peer_script(script: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("python3")
        .arg(root.join("tests/peers").join(script))
        .env("BINDERY_BIN", env!("CARGO_BIN_EXE_bindery"))
        .output()
        .expect("python3 must be installed");
    let text = String::from_utf8_lossy(&out.stderr);
    eprintln!("{text}");
    assert!(out.status.success(), "peer tests in {script} failed");
}

#[test]
fn reception_against_real_clients() {
    run_peer_script("receive.py");
}

#[test]
fn delivery_against_real_servers() {
    run_peer_script("deliver.py");
}

#[test]
fn policy_assigns_bindings_end_to_end() {
    run_peer_script("policy.py");
}

#[test]
fn momentums_sample_policies_end_to_end() {
    run_peer_script("sample_policies.py");
}

#[test]
fn console_and_metrics_end_to_end() {
    run_peer_script("console.py");
}

#[test]
fn lua_changes_the_running_configuration() {
    run_peer_script("lua_config.py");
}

#[test]
fn outbound_tls_verifies_certificates() {
    run_peer_script("outbound_tls.py");
}

#[test]
fn reliability_findings_against_real_peers() {
    run_peer_script("reliability.py");
}

#[test]
fn momentum_files_mean_the_same() {
    run_peer_script("momentum_files.py");
}

#[test]
fn momentum_logs_on_real_traffic() {
    run_peer_script("momentum_logs.py");
}

#[test]
fn many_bindings_pace_their_connects() {
    run_peer_script("many_bindings.py");
}

#[test]
fn dkim_signing_verifies_with_real_verifiers() {
    run_peer_script("dkim_signing.py");
}

#[test]
fn smtp_auth_with_real_clients() {
    run_peer_script("smtp_auth.py");
}

#[test]
fn transmissions_api_with_sparkposts_client() {
    run_peer_script("transmissions.py");
}

#[test]
fn bounce_classes_agree_with_sisimai() {
    run_peer_script("bounce_classes.py");
}

#[test]
fn bounce_classes_reach_logs_metrics_console_and_lua() {
    run_peer_script("bounces.py");
}

#[test]
fn adaptive_response_rules_and_sweep_rules() {
    run_peer_script("adaptive.py");
}
