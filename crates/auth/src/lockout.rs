//! Failed logins, counted per client address, so that a password cannot be guessed at: a
//! client with `max_failures` failures within `window` seconds is turned away until the
//! window has passed, and every failure is logged by the server with its address and the
//! user name tried. The console uses it (before it, one address tried 9,810 passwords a
//! second and nothing was logged), and so does SMTP AUTH. Time comes in as seconds; no clock
//! is read here.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failed logins from one address that lock it out, unless told otherwise.
pub const MAX_FAILURES: u32 = 10;
/// The window failures are counted in, and how long a lockout lasts, unless told otherwise.
pub const WINDOW_SECS: u64 = 60;
/// Addresses remembered at most; past it, those whose window is over are forgotten first.
const MAX_ADDRESSES: usize = 10_000;

pub struct Lockout {
    by_addr: Mutex<HashMap<IpAddr, (u64, u32)>>,
    max_failures: u32,
    window: u64,
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout::new(MAX_FAILURES, WINDOW_SECS)
    }
}

impl Lockout {
    /// Locks an address out after `max_failures` failures within `window` seconds.
    pub fn new(max_failures: u32, window: u64) -> Lockout {
        Lockout {
            by_addr: Mutex::default(),
            max_failures: max_failures.max(1),
            window: window.max(1),
        }
    }

    /// Whether `ip` may not try now.
    pub fn locked(&self, ip: IpAddr, now: u64) -> bool {
        let map = self.by_addr.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&ip)
            .is_some_and(|&(since, n)| n >= self.max_failures && now < since + self.window)
    }

    /// Counts a failure from `ip`; returns the failures in its window so far.
    pub fn failed(&self, ip: IpAddr, now: u64) -> u32 {
        let mut map = self.by_addr.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&ip) {
            let window = self.window;
            map.retain(|_, (since, _)| now < *since + window);
            if map.len() >= MAX_ADDRESSES {
                // Still full of live windows: the oldest one goes.
                if let Some(oldest) = map.iter().min_by_key(|(_, (s, _))| *s).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        let e = map.entry(ip).or_insert((now, 0));
        if now >= e.0 + self.window {
            *e = (now, 0);
        }
        e.1 += 1;
        e.1
    }

    /// A login from `ip` succeeded: its count starts again.
    pub fn succeeded(&self, ip: IpAddr) {
        self.by_addr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_failures_lock_an_address_out_for_the_window() {
        let l = Lockout::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for i in 1..=MAX_FAILURES {
            assert!(!l.locked(a, 100));
            assert_eq!(l.failed(a, 100), i);
        }
        assert!(l.locked(a, 100) && l.locked(a, 159));
        assert!(!l.locked(b, 100), "another address is not");
        assert!(!l.locked(a, 160), "the window is over");
        assert_eq!(l.failed(a, 160), 1, "a new window");
        l.succeeded(a);
        assert!(!l.locked(a, 160));
    }

    #[test]
    fn memory_is_bounded() {
        let l = Lockout::default();
        for i in 0..(MAX_ADDRESSES as u32 + 50) {
            l.failed(IpAddr::from(i.to_be_bytes()), 1);
        }
        assert!(l.by_addr.lock().unwrap().len() <= MAX_ADDRESSES);
    }
}
