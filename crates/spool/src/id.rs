//! Message ids: 16 upper-case hex digits, `SSSSSSSSQQQQQQQQ` (reception second, then a
//! per-process sequence that starts at a random point). Unique in practice across restarts;
//! the spool creates files with `O_EXCL`, so a collision fails a write instead of overwriting.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};

/// Hands out ids.
pub struct IdGenerator {
    seq: AtomicU32,
}

impl Default for IdGenerator {
    fn default() -> Self {
        Self::new()
    }
}

impl IdGenerator {
    pub fn new() -> IdGenerator {
        // RandomState is seeded from the OS; hashing the pid spreads restarts further.
        let start = RandomState::new().hash_one(std::process::id()) as u32;
        IdGenerator {
            seq: AtomicU32::new(start),
        }
    }

    /// A fresh id for a message received at `now` (seconds since the epoch).
    pub fn next(&self, now: u64) -> String {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{:08X}{:08X}", now as u32, seq)
    }
}

/// The spool folder (`00`..`ff`) an id lives in. Consecutive ids share a folder for 64
/// messages, so one group commit touches one or two folders, not one per message.
pub fn folder_of(id: &str) -> Option<String> {
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let seq = u32::from_str_radix(&id[8..], 16).ok()?;
    Some(format!("{:02x}", (seq >> 6) & 0xff))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_foldered() {
        let g = IdGenerator::new();
        let a = g.next(5);
        let b = g.next(5);
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(folder_of(&a).is_some());
        assert_eq!(folder_of("nothex!!00000000"), None);
        assert_eq!(folder_of("0000000000000040").as_deref(), Some("01"));
    }
}
