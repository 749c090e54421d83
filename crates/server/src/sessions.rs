//! `Listener_Sessions` and `Service_Sessions`: caps on the inbound sessions open at once,
//! counted per scope that sets them (a cap set in a listener is one budget for all its
//! clients; set in a `Peer`, one budget per matching CIDR block), as Momentum counts them.
//! A session holds its places for its whole life; past a cap the client gets
//! `421 4.4.5 Service unavailable, concurrency limit reached.` and the connection closes.
//!
//! Budgets are keyed by the setting scope's path, which a reload keeps, so sessions of an
//! older generation still count against the same budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Open sessions per budget.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, u64>>,
}

/// One budget a session counts against: its key and its cap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    pub key: String,
    pub cap: u64,
}

/// The places a session holds; given back when it drops.
pub struct Held {
    sessions: Arc<Sessions>,
    keys: Vec<String>,
}

impl Sessions {
    /// Takes a place in every budget, or none when one of them is full.
    pub fn enter(self: &Arc<Self>, budgets: &[Budget]) -> Option<Held> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if budgets
            .iter()
            .any(|b| open.get(&b.key).copied().unwrap_or(0) >= b.cap)
        {
            return None;
        }
        for b in budgets {
            *open.entry(b.key.clone()).or_default() += 1;
        }
        Some(Held {
            sessions: Arc::clone(self),
            keys: budgets.iter().map(|b| b.key.clone()).collect(),
        })
    }

    /// Sessions open against `key` (for tests and the console).
    pub fn open(&self, key: &str) -> u64 {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(key).copied().unwrap_or(0)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self.sessions.open.lock().unwrap_or_else(|p| p.into_inner());
        for k in &self.keys {
            if let Some(n) = open.get_mut(k) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(k);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_budget_refuses_and_a_closed_session_frees_its_place() {
        let s = Arc::new(Sessions::default());
        let listener = Budget {
            key: "listener".into(),
            cap: 2,
        };
        let peer = Budget {
            key: "peer 10.0.0.0/8".into(),
            cap: 1,
        };
        let a = s.enter(&[listener.clone(), peer.clone()]).expect("first");
        assert!(
            s.enter(&[listener.clone(), peer.clone()]).is_none(),
            "peer full"
        );
        let b = s
            .enter(std::slice::from_ref(&listener))
            .expect("listener has room");
        assert!(
            s.enter(std::slice::from_ref(&listener)).is_none(),
            "listener full"
        );
        // A refusal takes nothing.
        assert_eq!((s.open("listener"), s.open("peer 10.0.0.0/8")), (2, 1));
        drop(a);
        assert_eq!((s.open("listener"), s.open("peer 10.0.0.0/8")), (1, 0));
        drop(b);
        assert!(s.enter(&[listener, peer]).is_some());
    }
}

/// Inbound SMTP sessions open now, by listener and client address: what
/// `msys.audit.inbound_session_count` and `ac:inbound_session_count` count.
#[derive(Default)]
pub struct Peers {
    open: Mutex<HashMap<(Arc<str>, std::net::IpAddr), u64>>,
}

/// A session's place in [`Peers`], given back when it drops.
pub struct PeerHeld {
    peers: Arc<Peers>,
    key: (Arc<str>, std::net::IpAddr),
}

impl Peers {
    pub fn enter(self: &Arc<Self>, listener: &str, ip: std::net::IpAddr) -> PeerHeld {
        let key: (Arc<str>, std::net::IpAddr) = (Arc::from(listener), ip);
        *self
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_insert(0) += 1;
        PeerHeld {
            peers: Arc::clone(self),
            key,
        }
    }
}

impl Drop for PeerHeld {
    fn drop(&mut self) {
        let mut open = self.peers.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

impl bindery_policy::inject::LiveSessions for Peers {
    fn count(
        &self,
        net: ipnet::IpNet,
        _service: bindery_policy::inject::Service,
        listener: Option<&str>,
    ) -> u64 {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|((l, ip), _)| net.contains(ip) && listener.is_none_or(|w| **l == *w))
            .map(|(_, n)| *n)
            .sum()
    }
}
