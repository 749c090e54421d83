//! The one road for run-time configuration changes. The console's `config set|unset` and
//! Lua's `msys.config("set"|"unset")` (through the daemon's policy host) both call
//! [`apply`], so a change typed and a change scripted get the same checks, make the same
//! kind of generation and are remembered the same way for `config reload` to drop.

use std::sync::Arc;

use bindery_config::Snapshot;
use bindery_config::change::{self, Action};

use crate::daemon::{Daemon, Install};

/// A change that is in force.
pub struct Applied {
    /// Momentum's answer, e.g. `EHLO_Hostname = "mx.example"`.
    pub message: String,
    /// The option's value now (see [`change::Changed::value`]).
    pub value: Option<String>,
    /// The generation in force afterwards; unchanged when the change changed nothing.
    pub snapshot: Arc<Snapshot>,
    /// For the operator: options that need a restart, listeners that cannot change live.
    pub notes: Vec<String>,
}

/// Applies `config ACTION WORDS...` to the running configuration and installs the next
/// generation, or changes nothing and says why. Serialised with every other change by
/// [`Daemon::with_changes`]. A set to the value already in force makes no generation.
pub fn apply<D: Daemon + ?Sized>(
    d: &D,
    action: Action,
    words: &[String],
) -> Result<Applied, String> {
    d.with_changes(|changes| {
        let snap = d.snapshot();
        let changed = change::apply(&snap, action, words)?;
        if changed.is_noop(&snap.tree) {
            return Ok(Applied {
                message: changed.message,
                value: changed.value,
                snapshot: snap,
                notes: Vec::new(),
            });
        }
        let next = Snapshot::compile(changed.tree, snap.generation + 1);
        let notes = d
            .install(next, Install::Change)
            .map_err(|e| format!("Reconfigure failed\n{}", e.trim_end()))?;
        changes.push(format!("{} {}", action.name(), words.join(" ")));
        Ok(Applied {
            message: changed.message,
            value: changed.value,
            snapshot: d.snapshot(),
            notes,
        })
    })
}
