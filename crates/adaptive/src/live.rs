//! The running daemon's adaptive state, shared by the delivery engine (which feeds it
//! replies and asks it for suspensions and limits), the policy (`msys.adaptive`, and the
//! binding group choice that skips suspended bindings) and the console.
//!
//! Still without I/O: whoever keeps the book on disk registers a hook with
//! [`Live::on_change`] and writes [`Book::to_lines`] when it runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::rules::RuleSet;
use crate::state::Book;
use crate::sweep::Windows;

type Hook = Arc<dyn Fn() + Send + Sync>;

/// The rules in force, the book, and who wants to hear of a change.
pub struct Live {
    rules: RwLock<Arc<RuleSet>>,
    book: Mutex<Book>,
    /// Bumped on every change of the book or the rules: a reader that cached what it saw
    /// (the engine, per queue) knows to look again by comparing one number.
    generation: AtomicU64,
    hooks: Mutex<Vec<Hook>>,
    /// The sweep's windows (what the engine's bounce sweep cut last, for the console).
    windows: Mutex<Windows>,
}

impl Default for Live {
    fn default() -> Live {
        Live::new(Book::default())
    }
}

impl Live {
    pub fn new(book: Book) -> Live {
        Live {
            rules: RwLock::new(Arc::new(RuleSet::default())),
            book: Mutex::new(book),
            generation: AtomicU64::new(1),
            hooks: Mutex::new(Vec::new()),
            windows: Mutex::new(Windows::new(14_400, 6)),
        }
    }

    /// The response rules in force.
    pub fn rules(&self) -> Arc<RuleSet> {
        Arc::clone(&self.rules.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Puts `rules` in force (what a policy load registered), in one swap. The book and
    /// what queues derived from it are unchanged (rules are read at each reply), so no
    /// hook runs and nothing is written.
    pub fn install(&self, rules: RuleSet) {
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rules);
    }

    /// The book, locked. Call [`Live::changed`] after changing it.
    pub fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the book; if it says it changed something, the hooks run (after the
    /// lock is released).
    pub fn update<R>(&self, f: impl FnOnce(&mut Book) -> (R, bool)) -> R {
        let (r, changed) = {
            let mut b = self.book();
            f(&mut b)
        };
        if changed {
            self.changed();
        }
        r
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Something changed: readers look again, hooks run.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let hooks: Vec<Hook> = self.hooks.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for h in hooks {
            h();
        }
    }

    /// The sweep's windows, locked. Never taken together with the book.
    pub fn windows(&self) -> MutexGuard<'_, Windows> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` after every change (the engine wakes held queues, the daemon keeps the book).
    pub fn on_change(&self, f: impl Fn() + Send + Sync + 'static) {
        self.hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::new(f));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Key;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_change_bumps_the_generation_and_runs_the_hooks_outside_the_lock() {
        let live = Arc::new(Live::default());
        let seen = Arc::new(AtomicUsize::new(0));
        let (l2, s2) = (Arc::clone(&live), Arc::clone(&seen));
        live.on_change(move || {
            // Would deadlock if the book were still locked.
            let _ = l2.book().states().count();
            s2.fetch_add(1, Ordering::SeqCst);
        });
        let g = live.generation();
        let k = Key::new("b1", "yahoo.test");
        let n = live.update(|b| {
            let c = b.suspend(&k, 60, false, "console", 10);
            (c.is_some(), c.is_some())
        });
        assert!(n);
        assert!(live.generation() > g);
        assert_eq!(seen.load(Ordering::SeqCst), 1);
        // Nothing changed: no hook.
        live.update(|_| ((), false));
        assert_eq!(seen.load(Ordering::SeqCst), 1);
    }
}
