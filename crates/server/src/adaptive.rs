//! The `adaptive` module (Momentum's `modules/4-adaptive.md`) in the daemon: its stanza's
//! sweep intervals, the book kept beside the spool, and the timer that lifts suspensions
//! that ended and lets lowered limits climb back.
//!
//! The book is written to `adaptive.state` in the spool folder at every change (a
//! suspension, an adjustment, an override), as JSON lines through a temporary file and a
//! rename, so a crash leaves the old file or the new one. A start reads it back: a
//! suspension outlives a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bindery_adaptive::{Book, Live};
use bindery_config::Snapshot;
use bindery_config::schema::ScopeKind;
use bindery_config::schema::option_id;
use bindery_config::value::Value;
use bindery_delivery::engine::sweep::SweepStats;

use crate::ServerError;
use crate::settings::{located, stanza_option};

/// The file the book is kept in, in the spool folder.
pub const STATE_FILE: &str = "adaptive.state";

/// The `adaptive { }` stanza's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdaptivePlan {
    /// `suspend_sweep_interval` (s); 0: never.
    pub suspend_sweep: u64,
    /// `bounce_sweep_interval` (s); 0: never.
    pub bounce_sweep: u64,
    /// `enable_bounce_stats`, `enable_fbl_stats`, `fbl_stats_monitor`.
    pub stats: SweepStats,
}

impl AdaptivePlan {
    /// The stanza's settings; `None` without the module. `adaptive_enabled = true` or an
    /// `adaptive_sweep_rule` without the module is refused at its line: Momentum needs the
    /// module, and they would do nothing.
    pub fn of(snap: &Snapshot) -> Result<Option<AdaptivePlan>, ServerError> {
        let tree = &snap.tree;
        let stanza = tree
            .scope_ids()
            .find(|&id| tree.scope(id).kind == ScopeKind::Adaptive);
        let Some(id) = stanza else {
            if let Some(rule) = tree
                .scope_ids()
                .find(|&id| tree.scope(id).kind == ScopeKind::AdaptiveSweepRule)
            {
                return Err(located(
                    snap,
                    tree.scope(rule).opened.first().copied(),
                    "an adaptive_sweep_rule is written, but the adaptive module is not loaded"
                        .into(),
                    Some("add `adaptive { }` at the top level of the configuration"),
                ));
            }
            let enabled = option_id("Adaptive_Enabled");
            if let Some((_, s)) = tree
                .settings_of(enabled)
                .find(|(_, s)| matches!(s.value, Value::Bool(true)))
            {
                return Err(located(
                    snap,
                    Some(s.span),
                    "adaptive_enabled is set, but the adaptive module is not loaded".into(),
                    Some("add `adaptive { }` at the top level of the configuration"),
                ));
            }
            return Ok(None);
        };
        let scope = tree.scope(id);
        let secs = |name| match stanza_option(scope, name).0 {
            Some(Value::Seconds(s)) => s,
            _ => 0,
        };
        let on = |name| matches!(stanza_option(scope, name).0, Some(Value::Bool(true)));
        let (monitor, at) = stanza_option(scope, "Fbl_Stats_Monitor");
        let monitor = match monitor {
            Some(Value::Str(s)) => s,
            _ => String::new(),
        };
        let Some((fbl_slice, fbl_slices)) = window(&monitor) else {
            return Err(located(
                snap,
                at,
                format!(
                    "fbl_stats_monitor `{monitor}` is not \"SIZE,COUNT\" (COUNT windows of SIZE seconds)"
                ),
                Some("Momentum's default is \"14400,6\": six windows of four hours"),
            ));
        };
        Ok(Some(AdaptivePlan {
            suspend_sweep: secs("Suspend_Sweep_Interval"),
            bounce_sweep: secs("Bounce_Sweep_Interval"),
            stats: SweepStats {
                bounces: on("Enable_Bounce_Stats"),
                fbl: on("Enable_Fbl_Stats"),
                fbl_slice,
                fbl_slices,
            },
        }))
    }
}

/// Refuses an `adaptive_default_suspension` that is not a duration (`4 hours`), at its line.
pub fn check_durations(snap: &Snapshot) -> Result<(), ServerError> {
    let tree = &snap.tree;
    for (_, s) in tree.settings_of(option_id("Adaptive_Default_Suspension")) {
        if let Value::Str(text) = &s.value
            && let Err(e) = bindery_adaptive::duration::parse(text)
        {
            return Err(located(
                snap,
                Some(s.span),
                format!("adaptive_default_suspension: {e}"),
                Some("write a number and a unit: `4 hours`, `30 minutes`, `1 day`"),
            ));
        }
    }
    Ok(())
}

/// Refuses a `warmup_plan` that no `warmup_start` in its scope or one around it (its
/// binding's group included) dates: the plan would have no first day.
pub fn check_warmup(snap: &Snapshot) -> Result<(), ServerError> {
    let tree = &snap.tree;
    let (plan, start) = (option_id("Warmup_Plan"), option_id("Warmup_Start"));
    for (id, set) in tree.settings_of(plan) {
        let mut dated = false;
        let mut cur = Some(id);
        while let Some(c) = cur {
            let scope = tree.scope(c);
            let group = scope.group.map(|(g, _)| tree.scope(g));
            if scope.setting(start).is_some() || group.is_some_and(|g| g.setting(start).is_some()) {
                dated = true;
                break;
            }
            cur = scope.parent;
        }
        if !dated {
            return Err(located(
                snap,
                Some(set.span),
                "warmup_plan has no warmup_start: the plan needs its first day".into(),
                Some("add `warmup_start = \"YYYY-MM-DD\"` (UTC) in this scope or one around it"),
            ));
        }
    }
    Ok(())
}

/// `"14400,6"`: both positive.
fn window(s: &str) -> Option<(u64, u64)> {
    let (size, count) = s.split_once(',')?;
    let size: u64 = size.trim().parse().ok()?;
    let count: u64 = count.trim().parse().ok()?;
    (size > 0 && count > 0).then_some((size, count))
}

/// Reads the book kept in `spoolbase`, or an empty one when there is none. A file that does
/// not parse stops the start: suspensions an operator relies on must not vanish quietly.
pub fn load(spoolbase: &Path) -> Result<Book, ServerError> {
    let path = spoolbase.join(STATE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Book::from_lines(&text).map_err(|e| {
            ServerError::Config(format!(
                "error: {}: {e} (move the file away to start without it)",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Book::default()),
        Err(e) => Err(ServerError::Config(format!(
            "error: cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// Writes the book to `spoolbase` after every change.
pub fn keep(live: &Arc<Live>, spoolbase: &Path) {
    let path = spoolbase.join(STATE_FILE);
    let weak = Arc::downgrade(live);
    live.on_change(move || {
        if let Some(live) = weak.upgrade() {
            let now = crate::unix_now();
            let text = live.book().to_lines(now);
            if let Err(e) = write(&path, &text) {
                tracing::warn!(path = %path.display(), error = %e, "adaptive: cannot keep the book");
            }
        }
    });
}

fn write(path: &PathBuf, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("state.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// The bounce sweep: every `bounce_sweep_interval` of the generation in force, each
/// binding x domain's window goes through its sweep rules. Stops with the daemon.
pub async fn bounce_sweeps(shared: Weak<crate::Shared>) {
    loop {
        let every = match shared.upgrade() {
            Some(s) => s.current().adaptive.map_or(0, |p| p.bounce_sweep),
            None => return,
        };
        tokio::time::sleep(Duration::from_secs(if every == 0 { 60 } else { every })).await;
        let Some(s) = shared.upgrade() else {
            return;
        };
        let g = s.current();
        if let Some(plan) = g.adaptive.filter(|p| p.bounce_sweep > 0) {
            s.engine.bounce_sweep(&g.sweep_rules, &plan.stats);
        }
    }
}

/// The suspend sweep: every `suspend_sweep_interval` of the generation in force, ended
/// suspensions are dropped and lowered limits climb. Stops with the daemon.
pub async fn sweeps(shared: Weak<crate::Shared>) {
    loop {
        let every = match shared.upgrade() {
            Some(s) => s.current().adaptive.map_or(0, |p| p.suspend_sweep),
            None => return,
        };
        tokio::time::sleep(Duration::from_secs(every.max(1))).await;
        let Some(s) = shared.upgrade() else {
            return;
        };
        if every > 0 {
            s.engine.adaptive_sweep();
        }
    }
}
