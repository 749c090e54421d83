//! Momentum's rules for a destination that does not answer:
//!
//! - `host_failure_retry` (domain, global; 120 s): an address whose connect failed is
//!   skipped for that long, by every queue that sends from the same source address, before
//!   it is tried again. A failure of one binding's connection says nothing of another
//!   binding's source address (a remote may refuse one IP and take the next), so an address
//!   is marked per (source, remote) pair.
//! - `mx_failures_to_delay` (domain, global; 50) and `connect_timeout_to_delay` (binding,
//!   group, domain, global; 900 s): when a destination is given up on for now. While neither
//!   is reached, a part whose every address failed goes back to its active queue
//!   unattempted (no attempt counted, nothing logged) and is tried again when the first
//!   address comes back; once one is reached, the queue's parts are deferred together
//!   (Momentum's "moved into the delayed queue"). The count is of consecutive failures of
//!   every address of the route; the time, from the first failure of the queue's current
//!   streak. Both restart when a connection to the destination works.
//!
//! `mx_failures_to_delay = 0` turns the count rule off (Momentum: "disable the auto-delay
//! feature"); the time rule still gives up. `connect_timeout_to_delay = 0` gives up at the
//! first round in which every address failed: a part is never held unattempted.
//!
//! Only connect-phase failures mark an address (the TCP connect, the greeting, EHLO,
//! STARTTLS); a connection that fails in a transaction has its part deferred by the
//! outcome rules. A failed connect while other connections of the queue work is slow
//! start's step too far, not a failure of the address, and marks nothing (`connection.rs`).

use std::net::IpAddr;
use std::sync::Mutex;

use rustc_hash::FxHashMap;

/// A (source, remote) address pair. `None` for the source lets the kernel choose.
type Pair = (Option<IpAddr>, IpAddr);

#[derive(Clone, Copy, Debug, Default)]
struct Mark {
    /// Connect failures since the last connect that worked.
    consecutive: u32,
    /// Skipped until this time (ms).
    down_until_ms: u64,
}

/// The failure marks of every remote address, per source address.
#[derive(Default)]
pub(crate) struct Health {
    marks: Mutex<FxHashMap<Pair, Mark>>,
}

/// When a destination whose addresses all fail is given up on for now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DelayRule {
    /// `mx_failures_to_delay`; 0: no count rule.
    pub mx_failures: u32,
    /// `connect_timeout_to_delay` in ms; 0: at once.
    pub connect_timeout_ms: u64,
}

impl DelayRule {
    /// Whether to give up: the streak began at `since_ms`, and `consecutive` are the
    /// failure counts of the route's addresses.
    pub fn gives_up(
        self,
        since_ms: u64,
        now_ms: u64,
        consecutive: impl IntoIterator<Item = u32>,
    ) -> bool {
        if now_ms.saturating_sub(since_ms) >= self.connect_timeout_ms {
            return true;
        }
        if self.mx_failures == 0 {
            return false;
        }
        let mut any = false;
        for c in consecutive {
            if c < self.mx_failures {
                return false;
            }
            any = true;
        }
        any
    }
}

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, FxHashMap<Pair, Mark>> {
        self.marks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Until when `remote` is skipped from `source`, if it is now.
    pub fn down_until(&self, source: Option<IpAddr>, remote: IpAddr, now_ms: u64) -> Option<u64> {
        let marks = self.lock();
        marks
            .get(&(source, remote))
            .map(|m| m.down_until_ms)
            .filter(|&t| t > now_ms)
    }

    /// A connect from `source` to `remote` failed: it is skipped for `retry_ms`. Returns
    /// its consecutive failures.
    pub fn failed(
        &self,
        source: Option<IpAddr>,
        remote: IpAddr,
        now_ms: u64,
        retry_ms: u64,
    ) -> u32 {
        let mut marks = self.lock();
        if marks.len() >= 4096 && !marks.contains_key(&(source, remote)) {
            // Marks of addresses nobody tried again go; a live streak keeps its count.
            marks.retain(|_, m| m.down_until_ms > now_ms || m.consecutive > 1);
        }
        let m = marks.entry((source, remote)).or_default();
        m.consecutive = m.consecutive.saturating_add(1);
        m.down_until_ms = now_ms.saturating_add(retry_ms);
        m.consecutive
    }

    /// A connect from `source` to `remote` worked: its mark goes.
    pub fn succeeded(&self, source: Option<IpAddr>, remote: IpAddr) {
        let mut marks = self.lock();
        if !marks.is_empty() {
            marks.remove(&(source, remote));
        }
    }

    /// The consecutive connect failures from `source` to `remote`.
    pub fn consecutive(&self, source: Option<IpAddr>, remote: IpAddr) -> u32 {
        self.lock()
            .get(&(source, remote))
            .map_or(0, |m| m.consecutive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_failed_address_is_skipped_for_host_failure_retry_from_that_source_only() {
        let h = Health::default();
        let (a, b, r) = (
            Some(ip("127.0.0.2")),
            Some(ip("127.0.0.3")),
            ip("192.0.2.1"),
        );
        assert_eq!(h.failed(a, r, 1_000, 120_000), 1);
        assert_eq!(h.down_until(a, r, 1_000), Some(121_000));
        assert_eq!(
            h.down_until(b, r, 1_000),
            None,
            "another source is not marked"
        );
        assert_eq!(
            h.down_until(a, r, 121_000),
            None,
            "back after the retry time"
        );
        assert_eq!(h.failed(a, r, 121_000, 120_000), 2);
        h.succeeded(a, r);
        assert_eq!(h.consecutive(a, r), 0);
        assert_eq!(h.down_until(a, r, 121_001), None);
    }

    #[test]
    fn the_delay_rule_needs_every_address_at_the_count_or_the_time() {
        let rule = DelayRule {
            mx_failures: 3,
            connect_timeout_ms: 900_000,
        };
        assert!(
            !rule.gives_up(0, 1_000, [3, 2]),
            "one address short of the count"
        );
        assert!(rule.gives_up(0, 1_000, [3, 4]));
        assert!(rule.gives_up(0, 900_000, [1]), "the time is up");
        assert!(
            !rule.gives_up(0, 1_000, []),
            "no address: only the time counts"
        );
        let off = DelayRule {
            mx_failures: 0,
            connect_timeout_ms: 900_000,
        };
        assert!(
            !off.gives_up(0, 1_000, [1_000]),
            "0 turns the count rule off"
        );
        let at_once = DelayRule {
            mx_failures: 0,
            connect_timeout_ms: 0,
        };
        assert!(at_once.gives_up(5, 5, [1]));
    }

    #[test]
    fn marks_of_addresses_nobody_retries_are_swept() {
        let h = Health::default();
        let src = Some(ip("127.0.0.2"));
        for i in 0..4096u32 {
            h.failed(src, IpAddr::from(i.to_be_bytes()), 0, 10);
        }
        h.failed(src, ip("192.0.2.1"), 100, 10);
        assert!(h.lock().len() < 10, "swept: {}", h.lock().len());
    }
}
