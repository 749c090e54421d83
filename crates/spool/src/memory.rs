//! An in-memory [`Spool`] for tests: the same contract, no disk, and failures on demand.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{Completion, Envelope, Recovered, Spool, SpoolError};

#[derive(Default)]
pub struct MemSpool {
    messages: Mutex<BTreeMap<String, (Envelope, Vec<u8>)>>,
    /// Stores still to fail.
    fail_next: AtomicU32,
    failures: AtomicU32,
}

impl MemSpool {
    pub fn new() -> MemSpool {
        MemSpool::default()
    }

    /// Makes the next `n` stores fail, as a full disk would.
    pub fn fail_next(&self, n: u32) {
        self.fail_next.store(n, Ordering::Relaxed);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (Envelope, Vec<u8>)>> {
        self.messages.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Spool for MemSpool {
    fn store(&self, mut env: Envelope, body: Vec<u8>, done: Completion) {
        let failing = self
            .fail_next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            self.failures.fetch_add(1, Ordering::Relaxed);
            return done(Err(SpoolError::Injected));
        }
        env.seal(&body);
        self.lock().insert(env.id.to_string(), (env, body));
        self.failures.store(0, Ordering::Relaxed);
        done(Ok(()))
    }

    fn update(&self, env: &Envelope) -> Result<(), SpoolError> {
        match self.lock().get_mut(&*env.id) {
            Some(slot) => {
                slot.0 = env.clone();
                Ok(())
            }
            None => Err(SpoolError::NotFound(env.id.to_string())),
        }
    }

    fn settle_recipients(&self, env: &Envelope, changed: &[u32]) -> Result<(), SpoolError> {
        match self.lock().get_mut(&*env.id) {
            Some(slot) => {
                for &i in changed {
                    if let (Some(to), Some(from)) = (
                        slot.0.recipients.get_mut(i as usize),
                        env.recipients.get(i as usize),
                    ) {
                        to.state = from.state;
                    }
                }
                Ok(())
            }
            None => Err(SpoolError::NotFound(env.id.to_string())),
        }
    }

    fn remove(&self, id: &str) -> Result<(), SpoolError> {
        self.lock()
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| SpoolError::NotFound(id.to_string()))
    }

    fn body(&self, id: &str) -> Result<Vec<u8>, SpoolError> {
        self.lock()
            .get(id)
            .map(|(_, b)| b.clone())
            .ok_or_else(|| SpoolError::NotFound(id.to_string()))
    }

    fn recover(&self) -> Result<Recovered, SpoolError> {
        Ok(Recovered {
            messages: self.lock().values().map(|(e, _)| e.clone()).collect(),
            ..Recovered::default()
        })
    }

    fn healthy(&self) -> bool {
        self.failures.load(Ordering::Relaxed) < 3
    }

    fn probe(&self) -> bool {
        if self.fail_next.load(Ordering::Relaxed) > 0 {
            return false;
        }
        self.failures.store(0, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::tests::sample;

    fn store(s: &MemSpool, id: &str) -> Result<(), SpoolError> {
        let mut env = sample();
        env.id = id.into();
        let (tx, rx) = std::sync::mpsc::channel();
        s.store(env, b"body".to_vec(), Box::new(move |r| drop(tx.send(r))));
        rx.recv().expect("completion")
    }

    #[test]
    fn same_contract_as_disk() {
        let s = MemSpool::new();
        store(&s, "A").unwrap();
        s.fail_next(3);
        for _ in 0..3 {
            assert!(matches!(store(&s, "B"), Err(SpoolError::Injected)));
        }
        assert!(!s.healthy());
        assert!(s.probe());
        assert!(s.healthy());
        store(&s, "C").unwrap();
        let rec = s.recover().unwrap();
        assert_eq!(rec.messages.len(), 2);
        assert_eq!(rec.messages[0].body_len, 4);
        assert_eq!(s.body("A").unwrap(), b"body");
        s.remove("A").unwrap();
        assert!(s.body("A").is_err());
    }
}
