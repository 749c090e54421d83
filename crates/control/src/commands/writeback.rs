//! `config writeback [PATH]`: makes the run-time changes survive a restart.
//!
//! The running configuration is compared with what the files alone give (read again now,
//! without `Local_Changes_File`, settled as a start settles them); the difference is written
//! to `Local_Changes_File`, which every start and `config reload` read after all other
//! files. The file is replaced whole. With PATH, the same text goes to PATH instead and the
//! changes stay unwritten (a reload still drops them): a way to look before writing.

use std::fmt::Write;
use std::path::PathBuf;

use bindery_config::writeback::{files_changed, local_changes};
use serde_json::json;

use super::Output;
use crate::daemon::Daemon;

/// What heads the file, so whoever opens it knows where it came from.
const HEADER: &str = "# Run-time configuration changes, written by bindery's `config writeback`.\n\
# Read after every other configuration file (Local_Changes_File); the next writeback\n\
# replaces this file whole.\n";

pub fn run<D: Daemon>(d: &D, words: &[String]) -> Output {
    let alternate = match words {
        [] => None,
        [p] => Some(PathBuf::from(p)),
        _ => return Output::error("usage: config writeback [PATH]"),
    };
    d.with_changes(|changes| {
        let base = match d.files_alone() {
            Ok(t) => t,
            Err(e) => return Output::error(format!("Writeback failed\n{}", e.trim_end())),
        };
        let live = d.snapshot();
        let local = bindery_config::local_changes_path(&base);
        // Files edited since they were read would be overridden by their old values.
        let edited = files_changed(&base, &live.tree, &local);
        if !edited.is_empty() && alternate.is_none() {
            let names: Vec<String> = edited.iter().map(|p| p.display().to_string()).collect();
            return Output::error(format!(
                "Writeback refused: {} changed since the configuration was read; writing back \
                 now would undo those edits at the next start. `config reload` reads them (and \
                 drops unwritten run-time changes); `config writeback PATH` writes elsewhere.",
                names.join(", ")
            ));
        }
        let diff = local_changes(&base, &live.tree);
        let path = alternate.clone().unwrap_or_else(|| local.clone());
        let text = format!("{HEADER}{}", diff.text);
        if let Err(e) = d.write_file(&path, &text) {
            return Output::error(format!("Writeback failed: {}: {e}", path.display()));
        }
        let persisted = path == local;
        let pending = changes.len();
        if persisted {
            changes.clear();
        }
        let mut out = format!("Wrote {} change(s) to {}.\n", diff.written, path.display());
        if !persisted {
            let _ = writeln!(
                out,
                "Local_Changes_File is {}; {pending} run-time change(s) remain unwritten.",
                local.display()
            );
        }
        for n in &diff.not_written {
            let _ = writeln!(out, "Not written: {n}");
        }
        for p in &edited {
            let _ = writeln!(
                out,
                "Note: {} changed since it was read; this text holds the running values, not its edits.",
                p.display()
            );
        }
        Output::ok(
            out,
            json!({
                "path": path.display().to_string(),
                "written": diff.written,
                "local_changes_file": persisted,
                "not_written": diff.not_written,
            }),
        )
    })
}
