//! Keys read from files, kept for `pos_keycache_ttl` seconds (a file that could not be used
//! is remembered for `neg_keycache_ttl`), at most `keycache_size` of them.
//!
//! Every configuration generation has its own cache, so `config reload` reads every key
//! again: that is how an operator who replaced a key file makes it count at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::key::Key;

/// How long entries live, and how many there may be.
#[derive(Clone, Copy, Debug)]
pub struct CachePolicy {
    pub positive: Duration,
    pub negative: Duration,
    pub size: usize,
}

impl Default for CachePolicy {
    /// Momentum's defaults: 300 s, 3600 s, 2048 keys.
    fn default() -> Self {
        CachePolicy {
            positive: Duration::from_secs(300),
            negative: Duration::from_secs(3600),
            size: 2048,
        }
    }
}

struct Entry {
    key: Result<Arc<Key>, String>,
    read: Instant,
}

/// Keys by file path.
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl KeyCache {
    /// The key in `path`, from the cache while its entry is fresh, else read now. The error
    /// says which file and why, ready for a log line or a reply.
    pub fn get(&self, path: &str, policy: CachePolicy) -> Result<Arc<Key>, String> {
        let now = Instant::now();
        {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = entries.get(path) {
                let ttl = if e.key.is_ok() {
                    policy.positive
                } else {
                    policy.negative
                };
                if now.duration_since(e.read) < ttl {
                    return e.key.clone();
                }
            }
        }
        // Read outside the lock: a slow disk holds up only the messages that need this key.
        let key = read(path);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= policy.size.max(1) && !entries.contains_key(path) {
            // Full: the entry read longest ago makes room.
            if let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.read)
                .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            path.to_string(),
            Entry {
                key: key.clone(),
                read: now,
            },
        );
        key
    }

    /// Puts a key read elsewhere (at configuration check) in the cache.
    pub fn put(&self, path: &str, key: Arc<Key>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.insert(
            path.to_string(),
            Entry {
                key: Ok(key),
                read: Instant::now(),
            },
        );
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads and parses one key file.
pub fn read(path: &str) -> Result<Arc<Key>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read key {path}: {e}"))?;
    Key::from_pem(&bytes)
        .map(Arc::new)
        .map_err(|e| format!("key {path}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_remembered_until_its_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let p = path.to_str().unwrap();
        let cache = KeyCache::default();
        let policy = CachePolicy {
            negative: Duration::from_secs(3600),
            ..CachePolicy::default()
        };
        let err = cache.get(p, policy).unwrap_err();
        assert!(err.contains("cannot read key"), "{err}");
        // Still "missing" for the negative TTL, even once the file exists.
        std::fs::write(&path, b"not a key").unwrap();
        assert!(
            cache
                .get(p, policy)
                .unwrap_err()
                .contains("cannot read key")
        );
        // With no negative TTL the file is read again, and found malformed.
        let now = CachePolicy {
            negative: Duration::ZERO,
            ..policy
        };
        let err = cache.get(p, now).unwrap_err();
        assert!(err.contains("not a PEM private key"), "{err}");
    }

    #[test]
    fn a_full_cache_drops_its_oldest_entry() {
        let cache = KeyCache::default();
        let policy = CachePolicy {
            size: 2,
            ..CachePolicy::default()
        };
        for p in ["/nonexistent/a", "/nonexistent/b", "/nonexistent/c"] {
            let _ = cache.get(p, policy);
        }
        assert_eq!(cache.len(), 2);
    }
}
