//! What the console needs from the daemon: the [`Daemon`] trait.
//!
//! The commands are written against this trait, not against the server, so every command's
//! output is tested with a fixed, in-memory daemon (`tests/golden.rs`) and the server
//! implements it with the same engine and configuration calls the daemon itself uses.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use bindery_config::{ConfigTree, Snapshot};
use bindery_delivery::engine::console::{MessageView, PartView, QueueView, Select};
use bindery_delivery::stats::Stats;

/// The spool's state, for `summary` and the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpoolHealth {
    pub healthy: bool,
    /// Messages stored since start.
    pub stored: u64,
    /// Removals that failed (those messages are delivered again after a restart).
    pub remove_failures: u64,
}

/// Per policy callout: (name, calls, errors).
pub type CalloutStats = Vec<(&'static str, u64, u64)>;

/// One cached route entry of a domain, as `domain NAME` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteLine {
    pub preference: u16,
    pub host: String,
    pub ttl: u64,
    pub addresses: Vec<String>,
}

/// Why a configuration is installed. It decides what the policy's `init` does: a configuration
/// read from the files gets `init`'s `msys.config` changes made again, one changed at run time
/// already has them (and must not have the change undone by them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Install {
    /// `config set|unset`, from the console or from Lua.
    Change,
    /// `config reload`: the files again.
    Reload,
}

/// The daemon as the console sees it.
pub trait Daemon: Sync {
    /// Seconds since the epoch.
    fn now(&self) -> u64;
    /// The configuration in force.
    fn snapshot(&self) -> Arc<Snapshot>;
    fn stats(&self) -> &Stats;
    /// DKIM signing statistics (`signing_stats`).
    fn signing(&self) -> &crate::signing::SigningStats;
    /// Logins and injections per SMTP user and API key (`injection summary`).
    fn injections(&self) -> &crate::injections::Injections;
    fn queues(&self) -> Vec<QueueView>;
    fn parts(&self, sel: Select<'_>, limit: usize, offset: usize) -> Vec<PartView>;
    fn message(&self, id: &str) -> Option<MessageView>;
    /// Open inbound SMTP sessions.
    fn inbound_sessions(&self) -> u64;
    fn spool_health(&self) -> SpoolHealth;
    fn callouts(&self) -> CalloutStats;
    /// What the route cache holds for a domain.
    fn routes(&self, domain: &str) -> Vec<RouteLine>;

    /// Fails the selected mail; returns how many parts failed.
    fn fail(&self, sel: Select<'_>, reply: &str, quiet: bool)
    -> impl Future<Output = usize> + Send;
    /// Makes the selected delayed mail due now; returns how many parts moved.
    fn flush(&self, sel: Select<'_>) -> usize;
    /// Re-runs binding assignment for the selected mail; returns how many parts moved.
    fn rebind(&self, sel: Select<'_>) -> impl Future<Output = usize> + Send;

    /// Makes `snapshot` the running configuration, or says why not (nothing changes then).
    /// Returns notes for the operator.
    fn install(&self, snapshot: Snapshot, why: Install) -> Result<Vec<String>, String>;
    /// Reads the configuration files again, `Local_Changes_File` last. Errors are rendered
    /// diagnostics.
    fn reread(&self) -> Result<ConfigTree, String>;
    /// The configuration the files give without `Local_Changes_File`, settled as a start
    /// settles it (what the policy's `init` sets included): what `config writeback`
    /// compares the running configuration with.
    fn files_alone(&self) -> Result<ConfigTree, String>;
    /// Replaces the file at `path` with `text`, durably.
    fn write_file(&self, path: &Path, text: &str) -> Result<(), String>;
    /// The run-time changes (`set ...`, `unset ...`) made since the files were last read or
    /// written back; the callback may add to them or clear them while configuration changes
    /// are serialised.
    fn with_changes<R>(&self, f: impl FnOnce(&mut Vec<String>) -> R) -> R;
    /// Closes every log file and opens its path again (after `ec_rotate` or `logrotate`
    /// moved it); returns the paths.
    fn reopen_logs(&self) -> Vec<std::path::PathBuf>;
    /// The bounce classifier in force (`bounce_classifier_override test`).
    fn bounces(&self) -> Arc<bindery_bounce::Classifier> {
        Arc::new(bindery_bounce::Classifier::shipped())
    }
    /// Reads `bounce_classifier_override`'s sources again and puts the rules in force
    /// (`bounce_classifier_override reload`); the rule counts, or why not (the rules in
    /// force stay).
    fn reload_bounces(&self) -> Result<bindery_bounce::Counts, String> {
        Err("bounce_classifier_override is not configured".into())
    }
    /// Adaptive delivery's rules and book, when the `adaptive` module is loaded.
    fn adaptive(&self) -> Option<Arc<bindery_adaptive::Live>> {
        None
    }
}
