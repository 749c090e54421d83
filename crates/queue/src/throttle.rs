//! Throttles: token buckets shared by every lookup that resolved to the same defining scope.
//!
//! Momentum resolves throttles "by reference": `outbound_throttle_messages = "10"` set on a
//! binding group is one bucket of 10 per second for every binding and domain under it that
//! does not set its own. So the key of a bucket is the scope that defined the value (the
//! config's `Origin`), not the (binding, domain) asking.

use std::sync::Mutex;

use rustc_hash::FxHashMap;

/// Which throttle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ThrottleKind {
    Messages,
    Connections,
    /// A message throttle adaptive delivery lowered for one queue (`scope`: the queue).
    Adaptive,
}

/// A bucket's identity: the defining scope (its id in the configuration tree) and the kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ThrottleKey {
    pub scope: u32,
    pub kind: ThrottleKind,
}

/// `count` events per `seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub seconds: u32,
}

/// The throttle store seam: node-local buckets now, a shared store for a cluster later.
pub trait ThrottleStore: Send + Sync + 'static {
    /// Takes one token from `key`'s bucket at `now_ms`. `Err(ms)` says how long until one is
    /// available; nothing is taken then.
    fn acquire(&self, key: ThrottleKey, rate: Rate, now_ms: u64) -> Result<(), u64>;
}

/// One token bucket: at most `count` tokens (the burst), refilled at `count / seconds`. Kept
/// in thousandths of a token, so sub-token refills accumulate exactly. A rate of 0 lets
/// nothing through. [`TokenBuckets`] keeps one per throttle; the engine's connect pacing one
/// per remote address.
#[derive(Debug)]
pub struct Bucket {
    milli_tokens: u64,
    last_ms: u64,
    rate: Rate,
}

impl Bucket {
    /// A full bucket at `now_ms`.
    pub fn new(rate: Rate, now_ms: u64) -> Bucket {
        Bucket {
            milli_tokens: u64::from(rate.count) * 1000,
            last_ms: now_ms,
            rate,
        }
    }

    /// Takes one token at `now_ms` under `rate`. `Err(ms)` says how long until one is
    /// available; nothing is taken then. A changed rate keeps the level and applies from now.
    pub fn take(&mut self, rate: Rate, now_ms: u64) -> Result<(), u64> {
        if rate.count == 0 {
            return Err(1000);
        }
        let cap = u64::from(rate.count) * 1000;
        if self.rate != rate {
            self.rate = rate;
            self.milli_tokens = self.milli_tokens.min(cap);
        }
        let elapsed = now_ms.saturating_sub(self.last_ms);
        // `count` tokens per `seconds` is `count * 1000` milli-tokens per `seconds * 1000` ms.
        let refill = elapsed.saturating_mul(u64::from(rate.count)) / u64::from(rate.seconds);
        self.milli_tokens = (self.milli_tokens + refill).min(cap);
        self.last_ms = now_ms.max(self.last_ms);
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            Ok(())
        } else {
            let missing = 1000 - self.milli_tokens;
            let wait = (missing * u64::from(rate.seconds)).div_ceil(u64::from(rate.count));
            Err(wait.max(1))
        }
    }

    /// Whether it was full when last taken from or made: forgetting it loses nothing.
    pub fn is_full(&self) -> bool {
        self.milli_tokens >= u64::from(self.rate.count) * 1000
    }
}

/// In-process token buckets, one [`Bucket`] per key.
#[derive(Debug, Default)]
pub struct TokenBuckets {
    buckets: Mutex<FxHashMap<ThrottleKey, Bucket>>,
}

impl ThrottleStore for TokenBuckets {
    fn acquire(&self, key: ThrottleKey, rate: Rate, now_ms: u64) -> Result<(), u64> {
        if rate.count == 0 {
            return Err(1000);
        }
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key)
            .or_insert_with(|| Bucket::new(rate, now_ms))
            .take(rate, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: ThrottleKey = ThrottleKey {
        scope: 7,
        kind: ThrottleKind::Messages,
    };

    #[test]
    fn burst_then_steady_rate() {
        let t = TokenBuckets::default();
        let r = Rate {
            count: 10,
            seconds: 1,
        };
        for _ in 0..10 {
            assert_eq!(t.acquire(K, r, 0), Ok(()));
        }
        assert_eq!(t.acquire(K, r, 0), Err(100));
        assert_eq!(t.acquire(K, r, 99), Err(1));
        assert_eq!(t.acquire(K, r, 100), Ok(()));
        // Over 10 simulated seconds, 100 more get through.
        let mut passed = 0;
        for ms in (110..=10_100).step_by(10) {
            if t.acquire(K, r, ms).is_ok() {
                passed += 1;
            }
        }
        assert_eq!(passed, 100);
    }

    #[test]
    fn slow_rates_and_separate_keys() {
        let t = TokenBuckets::default();
        let r = Rate {
            count: 2,
            seconds: 60,
        };
        assert!(t.acquire(K, r, 0).is_ok());
        assert!(t.acquire(K, r, 0).is_ok());
        assert_eq!(t.acquire(K, r, 0), Err(30_000));
        let other = ThrottleKey { scope: 8, ..K };
        assert!(t.acquire(other, r, 0).is_ok());
        assert!(t.acquire(K, r, 30_000).is_ok());
    }
}
