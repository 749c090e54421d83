//! `reopen logs` (and Momentum's `ec_logger:NAME reopen logs`): every log file is closed and
//! its path opened again, so a rotation script can move the files away and have new ones
//! written, as Momentum's `ec_rotate` does.

use serde_json::json;

use super::Output;
use crate::daemon::Daemon;

pub fn run<D: Daemon>(d: &D) -> Output {
    let paths: Vec<String> = d
        .reopen_logs()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut text = format!("Reopened {} log files\n", paths.len());
    for p in &paths {
        text.push_str(&format!("  {p}\n"));
    }
    Output::ok(text, json!({ "reopened": paths }))
}
