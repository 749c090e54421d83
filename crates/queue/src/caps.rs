//! Connection caps that cross queues: the server's total, a binding's total, and Momentum's
//! `scope_max_outbound_connections`, which counts every connection of the queues whose
//! lookup found it in one configuration scope (a `Global::Domain` cap counts every binding's
//! connections to that domain, a regex domain stanza makes its domains one, a
//! `Binding_Group::Domain` cap counts the group's).
//!
//! A connection takes a place under every cap of its queue before it starts (so connections
//! in progress count) and gives them back when it ends. A queue refused by a cap joins that
//! cap's waiters, first come first served, and is woken when a place frees: nobody polls.
//! Freed places go to the waiters in order: a queue that is not the first waiter is refused
//! while the first one has not taken its place.
//!
//! The reserve (`server_reserve_outbound_connections`) lifts a cap for a queue that has no
//! connection at all, ahead of the waiters, so a low-volume destination is not starved by
//! busy ones.
//!
//! Waiting is made short by two means the caller applies: a cap with waiters asks an idle
//! connection under it to close ([`Refused::close_idle`]), and a busy connection under a
//! cap that has waiters yields its place after its turn ([`Caps::contended`]).
//!
//! Costs: opening, closing, refusing and waking are O(caps of the queue); a waiter that
//! left (its queue emptied, or it moved to another cap) is skipped when it reaches the head.

use std::collections::VecDeque;

use indexmap::IndexMap;
use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::QueueId;

/// A cap's index; stable for the life of the process.
pub type CapId = u32;

/// What a cap counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CapKey {
    /// Every outbound connection of the server (`server_max_outbound_connections` and a
    /// global `scope_max_outbound_connections`).
    Server,
    /// Every connection through one binding (its statistics slot):
    /// `server_max_outbound_connections` set in a binding or its group.
    Binding(u32),
    /// Every connection of the queues (or hosts) whose lookup found
    /// `scope_max_outbound_connections` in this configuration scope.
    Scope(u32),
    /// Connections from one binding (slot) to one remote host: a host stanza's
    /// `max_outbound_connections`.
    Host(u32, Box<str>),
}

/// How many connections a cap lets open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    /// More a queue with no connection may open beyond `max`.
    pub reserve: u32,
}

impl Limit {
    pub fn new(max: u32) -> Limit {
        Limit { max, reserve: 0 }
    }
}

struct Cap {
    key: CapKey,
    limit: Limit,
    open: u32,
    waiters: VecDeque<QueueId>,
    /// Idle connections under the cap, per queue: the ones to ask to close for a waiter.
    idle: IndexMap<QueueId, u32, FxBuildHasher>,
}

impl Cap {
    fn room(&self, first: bool) -> bool {
        let reserve = if first { self.limit.reserve } else { 0 };
        self.open < self.limit.max.saturating_add(reserve)
    }
}

/// Why a connection may not open now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The cap that refused it; the queue now waits there.
    pub cap: CapId,
    /// A queue with an idle connection under that cap: ask it to close, its place goes to
    /// the first waiter. Given once per queue that joins the waiters.
    pub close_idle: Option<QueueId>,
}

/// Every cap, and who waits on which.
#[derive(Default)]
pub struct Caps {
    caps: Vec<Cap>,
    index: FxHashMap<CapKey, CapId>,
    /// The one cap each waiting queue waits on.
    waits_on: FxHashMap<QueueId, CapId>,
}

/// One cap as the console shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapView {
    pub key: CapKey,
    pub limit: Limit,
    pub open: u32,
    pub waiting: usize,
}

impl Caps {
    /// The cap that counts `key`, made on first use, with its limit as the configuration in
    /// force says. A raised limit wakes waiters into the new room.
    pub fn cap(&mut self, key: CapKey, limit: Limit, woken: &mut Vec<QueueId>) -> CapId {
        let id = match self.index.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.caps.len() as CapId;
                self.caps.push(Cap {
                    key: key.clone(),
                    limit,
                    open: 0,
                    waiters: VecDeque::new(),
                    idle: IndexMap::default(),
                });
                self.index.insert(key, id);
                return id;
            }
        };
        let cap = &mut self.caps[id as usize];
        if cap.limit != limit {
            cap.limit = limit;
            self.wake_next(id, woken);
        }
        id
    }

    /// The first queue still waiting on `c`, dropping those that left.
    fn head(&mut self, c: CapId) -> Option<QueueId> {
        let cap = &mut self.caps[c as usize];
        while let Some(&q) = cap.waiters.front() {
            if self.waits_on.get(&q) == Some(&c) {
                return Some(q);
            }
            cap.waiters.pop_front();
        }
        None
    }

    /// Wakes the first waiter of `c` if it has room for it.
    fn wake_next(&mut self, c: CapId, woken: &mut Vec<QueueId>) {
        if let Some(q) = self.head(c)
            && self.caps[c as usize].room(false)
        {
            woken.push(q);
        }
    }

    /// Takes a place under every cap in `caps` for a new connection of queue `q` (`first`:
    /// the queue has none open), or refuses it and makes `q` wait on the cap that refused.
    pub fn open(
        &mut self,
        q: QueueId,
        caps: &[CapId],
        first: bool,
        woken: &mut Vec<QueueId>,
    ) -> Result<(), Refused> {
        for &c in caps {
            let head = self.head(c);
            let cap = &self.caps[c as usize];
            let in_turn = head.is_none_or(|h| h == q) && cap.room(false);
            let reserved = first && cap.open >= cap.limit.max && cap.room(true);
            if !(in_turn || reserved) {
                return Err(self.refuse(q, c, woken));
            }
        }
        for &c in caps {
            self.caps[c as usize].open += 1;
        }
        if let Some(c) = self.waits_on.remove(&q) {
            // Its turn came (or the reserve let it in): the next waiter may have room too.
            self.wake_next(c, woken);
        }
        Ok(())
    }

    fn refuse(&mut self, q: QueueId, c: CapId, woken: &mut Vec<QueueId>) -> Refused {
        match self.waits_on.insert(q, c) {
            Some(old) if old == c => {
                return Refused {
                    cap: c,
                    close_idle: None,
                };
            }
            Some(old) => self.wake_next(old, woken),
            None => {}
        }
        let cap = &mut self.caps[c as usize];
        cap.waiters.push_back(q);
        let close_idle = cap
            .idle
            .keys()
            .copied()
            .find(|&p| p != q)
            .filter(|_| !cap.room(false));
        Refused { cap: c, close_idle }
    }

    /// A connection that held places under `caps` ended.
    pub fn close(&mut self, caps: &[CapId], woken: &mut Vec<QueueId>) {
        for &c in caps {
            let cap = &mut self.caps[c as usize];
            cap.open = cap.open.saturating_sub(1);
            self.wake_next(c, woken);
        }
    }

    /// Queue `q` no longer wants a connection (it has nothing to send): it leaves the
    /// waiters, and the next one is woken if there is room.
    pub fn withdraw(&mut self, q: QueueId, woken: &mut Vec<QueueId>) {
        if let Some(c) = self.waits_on.remove(&q) {
            self.wake_next(c, woken);
        }
    }

    /// Whether `q` waits on a cap that has no place for it yet: opening would be refused,
    /// so the caller need not try until `q` is woken.
    pub fn held_back(&mut self, q: QueueId) -> bool {
        let Some(&c) = self.waits_on.get(&q) else {
            return false;
        };
        self.head(c) != Some(q) || !self.caps[c as usize].room(false)
    }

    /// A connection of queue `q` holding `caps` became idle (`true`) or took work again.
    pub fn idle(&mut self, q: QueueId, caps: &[CapId], idle: bool) {
        for &c in caps {
            let map = &mut self.caps[c as usize].idle;
            if idle {
                *map.entry(q).or_insert(0) += 1;
            } else if let Some(n) = map.get_mut(&q) {
                *n -= 1;
                if *n == 0 {
                    map.swap_remove(&q);
                }
            }
        }
    }

    /// Whether another queue waits on one of `caps`: a connection holding them should give
    /// its place back after its turn.
    pub fn contended(&mut self, q: QueueId, caps: &[CapId]) -> bool {
        caps.iter().any(|&c| self.head(c).is_some_and(|h| h != q))
    }

    /// The queue `q` waits on, if any.
    pub fn waiting_on(&self, q: QueueId) -> Option<CapId> {
        self.waits_on.get(&q).copied()
    }

    /// Every cap with its figures.
    pub fn views(&mut self) -> Vec<CapView> {
        (0..self.caps.len() as CapId)
            .map(|c| {
                self.head(c);
                let cap = &self.caps[c as usize];
                let waiting = cap
                    .waiters
                    .iter()
                    .filter(|&&q| self.waits_on.get(&q) == Some(&c))
                    .count();
                CapView {
                    key: cap.key.clone(),
                    limit: cap.limit,
                    open: cap.open,
                    waiting,
                }
            })
            .collect()
    }

    /// What cap `c` counts.
    pub fn key(&self, c: CapId) -> CapKey {
        self.caps[c as usize].key.clone()
    }

    /// Places taken under cap `c`.
    pub fn open_under(&self, c: CapId) -> u32 {
        self.caps[c as usize].open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps_with(max: u32, reserve: u32) -> (Caps, CapId) {
        let mut caps = Caps::default();
        let c = caps.cap(CapKey::Server, Limit { max, reserve }, &mut Vec::new());
        (caps, c)
    }

    #[test]
    fn a_full_cap_refuses_and_wakes_its_waiters_in_order() {
        let (mut caps, c) = caps_with(2, 0);
        let mut woken = Vec::new();
        assert!(caps.open(0, &[c], true, &mut woken).is_ok());
        assert!(caps.open(0, &[c], false, &mut woken).is_ok());
        assert_eq!(caps.open(1, &[c], true, &mut woken).unwrap_err().cap, c);
        assert!(caps.open(2, &[c], true, &mut woken).is_err());
        assert!(caps.held_back(1) && caps.held_back(2));
        caps.close(&[c], &mut woken);
        assert_eq!(woken, vec![1], "the first waiter, and only it");
        assert!(!caps.held_back(1) && caps.held_back(2));
        // Queue 0 closed a connection and wants it back: 1 is first in line.
        assert!(caps.open(0, &[c], false, &mut woken).is_err());
        woken.clear();
        assert!(caps.open(1, &[c], false, &mut woken).is_ok());
        assert_eq!(woken, Vec::<QueueId>::new(), "no room for 2 yet");
        caps.close(&[c], &mut woken);
        assert_eq!(woken, vec![2], "2 waited before 0 asked again");
        assert_eq!(caps.open_under(c), 1);
    }

    #[test]
    fn the_reserve_lets_a_queue_with_no_connection_in() {
        let (mut caps, c) = caps_with(2, 1);
        let mut woken = Vec::new();
        for _ in 0..2 {
            assert!(caps.open(0, &[c], false, &mut woken).is_ok());
        }
        assert!(
            caps.open(0, &[c], false, &mut woken).is_err(),
            "no reserve for 0"
        );
        assert!(caps.open(1, &[c], true, &mut woken).is_ok(), "1 has none");
        assert!(
            caps.open(2, &[c], true, &mut woken).is_err(),
            "reserve used up"
        );
        assert_eq!(caps.open_under(c), 3);
    }

    #[test]
    fn every_cap_of_a_queue_must_have_room_and_none_is_taken_otherwise() {
        let mut caps = Caps::default();
        let mut woken = Vec::new();
        let server = caps.cap(CapKey::Server, Limit::new(10), &mut woken);
        let domain = caps.cap(CapKey::Scope(7), Limit::new(1), &mut woken);
        assert!(caps.open(0, &[server, domain], true, &mut woken).is_ok());
        let refused = caps
            .open(1, &[server, domain], true, &mut woken)
            .unwrap_err();
        assert_eq!(refused.cap, domain);
        assert_eq!(caps.open_under(server), 1, "the server place was not taken");
        assert!(caps.open(2, &[server], true, &mut woken).is_ok());
        caps.close(&[server, domain], &mut woken);
        assert_eq!(woken, vec![1]);
    }

    #[test]
    fn a_waiter_that_leaves_passes_its_turn_on() {
        let (mut caps, c) = caps_with(1, 0);
        let mut woken = Vec::new();
        assert!(caps.open(0, &[c], true, &mut woken).is_ok());
        assert!(caps.open(1, &[c], true, &mut woken).is_err());
        assert!(caps.open(2, &[c], true, &mut woken).is_err());
        caps.close(&[c], &mut woken);
        assert_eq!(woken, vec![1]);
        woken.clear();
        caps.withdraw(1, &mut woken);
        assert_eq!(woken, vec![2], "1 had nothing to send any more");
        assert!(caps.open(2, &[c], true, &mut woken).is_ok());
        assert_eq!(caps.waiting_on(1), None);
    }

    #[test]
    fn a_waiter_may_ask_an_idle_holder_to_close_once() {
        let (mut caps, c) = caps_with(1, 0);
        let mut woken = Vec::new();
        assert!(caps.open(0, &[c], true, &mut woken).is_ok());
        caps.idle(0, &[c], true);
        assert_eq!(
            caps.open(1, &[c], true, &mut woken).unwrap_err().close_idle,
            Some(0)
        );
        assert_eq!(
            caps.open(1, &[c], true, &mut woken).unwrap_err().close_idle,
            None
        );
        caps.idle(0, &[c], false);
        assert!(
            caps.contended(0, &[c]),
            "1 waits: 0 should yield after its turn"
        );
        assert!(!caps.contended(1, &[c]));
    }

    #[test]
    fn a_raised_limit_wakes_the_first_waiter() {
        let (mut caps, c) = caps_with(1, 0);
        let mut woken = Vec::new();
        assert!(caps.open(0, &[c], true, &mut woken).is_ok());
        assert!(caps.open(1, &[c], true, &mut woken).is_err());
        assert_eq!(caps.cap(CapKey::Server, Limit::new(1), &mut woken), c);
        assert!(woken.is_empty());
        caps.cap(CapKey::Server, Limit::new(2), &mut woken);
        assert_eq!(woken, vec![1]);
        let view = &caps.views()[0];
        assert_eq!((view.open, view.waiting), (1, 1));
    }

    #[test]
    fn a_queue_moving_to_another_cap_wakes_the_one_it_left() {
        let mut caps = Caps::default();
        let mut woken = Vec::new();
        let a = caps.cap(CapKey::Scope(1), Limit::new(1), &mut woken);
        let b = caps.cap(CapKey::Scope(2), Limit::new(1), &mut woken);
        assert!(caps.open(0, &[a, b], true, &mut woken).is_ok());
        assert!(caps.open(1, &[a], true, &mut woken).is_err());
        assert!(caps.open(2, &[a], true, &mut woken).is_err());
        caps.close(&[a], &mut woken);
        assert_eq!(woken, vec![1]);
        woken.clear();
        // 1's turn at `a` came, but `b` is full: it waits on `b`, and 2 gets `a`.
        assert_eq!(caps.open(1, &[a, b], false, &mut woken).unwrap_err().cap, b);
        assert_eq!(woken, vec![2]);
    }
}
