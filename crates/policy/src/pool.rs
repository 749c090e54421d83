//! One Lua state per worker thread and policy generation.
//!
//! A Lua state is single-threaded, so each thread that runs callouts keeps its own, built on
//! first use from the policy's scripts. Nothing is shared between threads and nothing is
//! locked while Lua runs. A state whose policy is gone (a newer configuration replaced it)
//! is dropped the next time this thread builds one.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use crate::Inner;
use crate::config::Phase;
use crate::sandbox::State;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

struct Entry {
    id: u64,
    owner: Weak<()>,
    state: Option<State>,
}

thread_local! {
    static STATES: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's state for `inner`, building it if needed. A state that
/// cannot be built (the scripts loaded at startup, so this means memory) is an error for
/// the callout.
pub fn with_state<R>(inner: &Inner, f: impl FnOnce(&State) -> mlua::Result<R>) -> mlua::Result<R> {
    STATES.with(|cell| {
        // Take the state out so a callout that somehow re-enters finds none borrowed.
        let taken = {
            let mut states = cell.borrow_mut();
            let pos = states.iter().position(|e| e.id == inner.id);
            match pos {
                Some(i) => states[i].state.take(),
                None => {
                    states.retain(|e| e.owner.strong_count() > 0);
                    states.push(Entry {
                        id: inner.id,
                        owner: Arc::downgrade(&inner.alive),
                        state: None,
                    });
                    None
                }
            }
        };
        let state = match taken {
            Some(s) => s,
            None => {
                State::build(inner, Phase::Replay).map_err(|e| mlua::Error::runtime(e.render()))?
            }
        };
        let out = f(&state);
        let mut states = cell.borrow_mut();
        if let Some(e) = states.iter_mut().find(|e| e.id == inner.id) {
            e.state = Some(state);
        }
        out
    })
}
