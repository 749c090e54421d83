//! `msys.config`: Momentum's `config` console command from Lua.
//!
//! `get` and `eval` read the configuration this state sees. `set` and `unset` change it, the
//! way the console does and with the same checks ([`bindery_config::change`]):
//! - when the policy is loaded from the files (start, `config reload`), a change made while
//!   the scripts load and `init` runs goes into the configuration being built, so it is part
//!   of that generation from its first message ([`Phase::Apply`]);
//! - every other time `init` runs (each worker thread's own state; the policy of a generation
//!   made by a run-time change), its changes are already in the configuration: they are
//!   checked and answered but not made again ([`Phase::Replay`]). So `init` never undoes an
//!   operator's later `config set`, and an `unset` in `init` does not fail the second time;
//! - in a callout, a change goes to the daemon's [`ConfigHost`], which makes and installs a
//!   new generation exactly as `config set` on the console does ([`Phase::Live`]). The state
//!   then sees the new configuration at once, so a binding just created can be assigned in
//!   the same callout.
//!
//! Without a host (the `bindery policy` test command, unit tests) a callout's change stays
//! in this state, as during `init`.
//!
//! Every action returns `value, text`: the value (nil when there is none) and the console's
//! text. A refused change returns nil and the error, and changes nothing.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use bindery_config::Snapshot;
use bindery_config::change::{self, Action};
use bindery_config::query;

use crate::choose::Bindings;

/// Where run-time `msys.config("set"|"unset")` goes: the daemon, which turns it into a new
/// configuration generation by the same road as the console's `config set`.
pub trait ConfigHost: Send + Sync {
    /// Applies the change to the running configuration. `words` are those after the action.
    fn change(&self, action: Action, words: &[String]) -> Result<HostChange, String>;
    /// The configuration in force now (`None` before the daemon runs).
    fn current(&self) -> Option<Arc<Snapshot>>;
}

/// A change the host made.
pub struct HostChange {
    /// The console's text (`EHLO_Hostname = "mx.example"`).
    pub message: String,
    /// The option's value now, as `msys.config("get")` gives it.
    pub value: Option<String>,
    /// The configuration in force after the change.
    pub snapshot: Arc<Snapshot>,
}

/// The configuration one state sees, with what assignment derives from it.
#[derive(Clone)]
pub struct View {
    pub snapshot: Arc<Snapshot>,
    pub bindings: Arc<Bindings>,
}

impl View {
    pub fn new(snapshot: Arc<Snapshot>) -> View {
        let bindings = Arc::new(Bindings::new(&snapshot));
        View { snapshot, bindings }
    }
}

/// What a `set` or `unset` does, by when it is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Loading from the files: the change goes into this state's configuration, which the
    /// policy adopts as its generation's.
    Apply,
    /// Loading again what was loaded before: the change is checked and answered, not made.
    Replay,
    /// In a callout: the change goes to the host (or, without one, into this state).
    Live,
}

/// What the `msys` functions of one state share.
pub struct World {
    view: RefCell<View>,
    host: Option<Arc<dyn ConfigHost>>,
    /// The daemon's other services (the handles reach `msg:inject`'s injector here).
    pub hosts: crate::Hosts,
    phase: Cell<Phase>,
    /// Answers to `msys.config("get"/"eval")` for the generation in force: a script that
    /// reads an option per message (the sample sparkpost-relay policy does, twice) would
    /// otherwise pay the query's parse, and for a name the configuration does not have
    /// its "did you mean", every time. Keyed by generation and words; bounded.
    reads: RefCell<std::collections::HashMap<ReadKey, ReadAnswer>>,
}

/// A read's generation, whether it is a `get` (else `eval`), and its words.
type ReadKey = (u64, bool, Vec<String>);
type ReadAnswer = (Option<String>, String);

/// The most `msys.config` answers one state keeps.
const READS_KEPT: usize = 256;

impl World {
    /// A state's world while its scripts load, in phase `loading` (Apply or Replay).
    pub fn new(view: View, hosts: crate::Hosts, loading: Phase) -> World {
        World {
            view: RefCell::new(view),
            host: hosts.config.clone(),
            hosts,
            phase: Cell::new(loading),
            reads: RefCell::default(),
        }
    }

    pub fn view(&self) -> View {
        self.view.borrow().clone()
    }

    /// Looks a name up with `look` in this state's configuration and, on a miss, once more
    /// in the configuration in force (see [`World::newer`]). Returns the view it was found in.
    pub fn find<T>(&self, look: impl Fn(&Snapshot) -> Option<T>) -> Option<(View, T)> {
        let view = self.view();
        if let Some(t) = look(&view.snapshot) {
            return Some((view, t));
        }
        let newer = self.newer()?;
        look(&newer.snapshot).map(|t| (newer, t))
    }

    /// After a name was not found: the configuration in force now, if it is newer than this
    /// state's. A binding another thread's script created a moment ago is then found, in
    /// a session that began before it existed. `None` when there is nothing newer.
    fn newer(&self) -> Option<View> {
        let host = self
            .host
            .as_ref()
            .filter(|_| self.phase.get() == Phase::Live)?;
        let now = host.current()?;
        if now.generation <= self.view.borrow().snapshot.generation {
            return None;
        }
        let view = View::new(now);
        *self.view.borrow_mut() = view.clone();
        Some(view)
    }

    /// The scripts are loaded and initialised: from now on changes go to the host.
    pub fn loaded(&self) {
        self.phase.set(Phase::Live);
    }

    /// `msys.config(action, words...)`: `(value, text)`, or `(nil, error)`.
    pub fn config(
        &self,
        action: &str,
        words: &[String],
    ) -> Result<(Option<String>, String), String> {
        let snap = self.view().snapshot;
        let action = match action {
            "get" | "eval" => {
                let key = (snap.generation, action == "get", words.to_vec());
                if let Some(a) = self.reads.borrow().get(&key) {
                    return Ok(a.clone());
                }
                let answer = read(&snap, action == "get", words);
                let mut reads = self.reads.borrow_mut();
                if reads.len() >= READS_KEPT {
                    reads.clear();
                }
                reads.insert(key, answer.clone());
                return Ok(answer);
            }
            "set" => Action::Set,
            "unset" => Action::Unset,
            other => {
                return Err(format!(
                    "msys.config: unknown action `{other}`; use \"get\", \"eval\", \"set\" or \"unset\""
                ));
            }
        };
        let phase = self.phase.get();
        if phase == Phase::Replay {
            return Ok(replay(&snap, action, words));
        }
        let host = self.host.as_ref().filter(|_| phase == Phase::Live);
        let done = match host {
            Some(host) => host
                .change(action, words)
                .map(|c| (c.value, c.message, c.snapshot)),
            None => change::apply(&snap, action, words).map(|c| {
                let next = if c.is_noop(&snap.tree) {
                    Arc::clone(&snap)
                } else {
                    // The same generation: the policy's own loading, not a new one.
                    Arc::new(Snapshot::compile(c.tree, snap.generation))
                };
                (c.value, c.message, next)
            }),
        };
        Ok(match done {
            Ok((value, message, next)) => {
                if !Arc::ptr_eq(&next, &snap) {
                    *self.view.borrow_mut() = View::new(next);
                }
                (value, message)
            }
            Err(e) => (None, e),
        })
    }
}

/// A change `init` made when the policy was loaded from the files, met again: a set is
/// checked and answered as before; an unset answers with the value in force (the option may
/// be unset already). Nothing changes.
fn replay(snap: &Snapshot, action: Action, words: &[String]) -> (Option<String>, String) {
    match (action, change::apply(snap, action, words)) {
        (_, Ok(c)) => (c.value, c.message),
        (Action::Unset, Err(e)) => match query::parse(words) {
            Ok(_) => read(snap, false, words),
            Err(_) => (None, e),
        },
        (Action::Set, Err(e)) => (None, e),
    }
}

/// `get` (the scope named, exactly) or `eval` (the fallback chain).
fn read(snap: &Snapshot, exact: bool, words: &[String]) -> (Option<String>, String) {
    let q = match query::parse(words) {
        Ok(q) => q,
        Err(e) => return (None, e),
    };
    let value = if exact {
        query::get(&snap.tree, &q).map(|s| s.value.clone())
    } else {
        match query::evaluate(snap, &q) {
            Ok(ev) => ev.value,
            Err(e) => return (None, e),
        }
    };
    match value {
        Some(v) => (Some(v.plain()), query::format_value(q.option, &v)),
        None => (None, query::not_set_message(&q)),
    }
}
