//! Sites: the queues that reach the same place share their connections.
//!
//! A site is where a connection goes, as its route says: one binding (its source address and
//! EHLO name), one set of hosts (a gateway, or a domain's MX hosts and their addresses) and
//! one way of talking to them (TLS wish, verification, timeouts). Twenty thousand domains
//! relayed through one `Gateway`, or hosted by one provider's MX hosts, are one site: a
//! connection that has sent everything of its own domain carries on with the next domain of
//! its site instead of saying QUIT while a new connection is opened for that domain. This is
//! KumoMTA's ready queue per site and Postfix's connection cache per next hop.
//!
//! The site gates only a queue's *first* connection. A queue with none asks [`Sites::admit`]:
//! while the site has fewer connections than its target it opens one of its own, otherwise
//! it waits for a connection of the site, first come first served. The target follows the
//! same slow start as a queue's ([`crate::pacing`]): it grows each time a connection of the
//! site delivered while queues still wait and none of the site's connections is idle, up to
//! the waiting queues' `max_outbound_connections`. A queue that got a connection this way
//! grows more of its own by its own slow start, so Momentum's per (binding, domain) limits
//! keep their meaning: a site only saves connections, it never lifts or lowers a queue's cap.
//!
//! Turns: a connection that has served one queue for a turn (the engine says how long) while
//! others wait moves on to the first waiter, and its queue, if it still has parts and no
//! other connection, waits at the tail. A waiting queue therefore gets a connection within
//! about `ceil(position / connections)` turns.
//!
//! Costs: every call is O(1) but [`Sites::next_waiter`], which skips the waiters that left
//! (amortised O(1): each was pushed once per wait).

use std::collections::VecDeque;
use std::hash::Hash;

use rustc_hash::FxHashMap;

use crate::QueueId;
use crate::pacing;

/// A site's index; stable for the life of the process.
pub type SiteId = u32;

#[derive(Default)]
struct Site {
    /// Connections serving the site, connecting ones included.
    connections: u32,
    /// Of those, the ones waiting for work.
    idle: u32,
    /// How many connections the site may have for queues that have none: slow start.
    target: u32,
    /// Queues waiting for a connection of the site, in order; one that left is skipped.
    waiters: VecDeque<QueueId>,
    /// How many of `waiters` still wait.
    waiting: u32,
}

/// The sites, keyed by whatever the caller says makes a connection reusable.
pub struct Sites<K> {
    index: FxHashMap<K, SiteId>,
    sites: Vec<Site>,
    /// The site each waiting queue waits on.
    waits_on: FxHashMap<QueueId, SiteId>,
}

impl<K> Default for Sites<K> {
    fn default() -> Self {
        Sites {
            index: FxHashMap::default(),
            sites: Vec::new(),
            waits_on: FxHashMap::default(),
        }
    }
}

/// One site as the console shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SiteView {
    pub connections: u32,
    pub idle: u32,
    pub target: u32,
    pub waiting: usize,
}

impl<K: Hash + Eq> Sites<K> {
    /// The site of `key`, if it was made.
    pub fn find(&self, key: &K) -> Option<SiteId> {
        self.index.get(key).copied()
    }

    /// The site of `key`, made on first use.
    pub fn site(&mut self, key: K) -> SiteId {
        let n = self.sites.len() as SiteId;
        *self.index.entry(key).or_insert_with(|| {
            self.sites.push(Site::default());
            n
        })
    }
}

impl<K> Sites<K> {
    fn get(&mut self, s: SiteId) -> &mut Site {
        &mut self.sites[s as usize]
    }

    /// Queue `q`, which has no connection, wants one to site `s`. `true`: it may open one,
    /// and that connection now counts for the site. `false`: it waits for one of the site's
    /// (it is the site's waiter until [`Sites::next_waiter`] gives it or it withdraws),
    /// always so while one of them idles: that one is on its way.
    pub fn admit(&mut self, s: SiteId, q: QueueId) -> bool {
        let site = self.get(s);
        if site.idle == 0 && site.connections < site.target.max(1) {
            site.connections += 1;
            self.withdraw(q);
            return true;
        }
        self.wait(s, q);
        false
    }

    /// Queue `q` waits for a connection of `s` (at the tail; no-op if it already does).
    pub fn wait(&mut self, s: SiteId, q: QueueId) {
        match self.waits_on.insert(q, s) {
            Some(old) if old == s => return,
            Some(old) => self.get(old).waiting -= 1,
            None => {}
        }
        let site = self.get(s);
        site.waiters.push_back(q);
        site.waiting += 1;
    }

    /// A connection of a queue that already has one (its own slow start let it) serves `s`.
    pub fn join(&mut self, s: SiteId) {
        self.get(s).connections += 1;
    }

    /// A connection of `s` ended. Returns a waiter to wake when that leaves room under the
    /// target (the caller lets it open its own): waiters are never left with no connection.
    pub fn leave(&mut self, s: SiteId) -> Option<QueueId> {
        let site = self.get(s);
        site.connections = site.connections.saturating_sub(1);
        if site.connections == 0 && site.waiters.is_empty() {
            // Next time, slow start from one.
            site.target = 0;
        }
        if site.connections < site.target.max(1) {
            return self.next_waiter(s);
        }
        None
    }

    /// A connect for `s` failed: its target halves.
    pub fn shrink(&mut self, s: SiteId) {
        let site = self.get(s);
        site.target = pacing::shrink(site.target);
    }

    /// A connection of `s` delivered: while queues wait and no connection of the site is
    /// idle, its target grows toward `max` (the waiters' `max_outbound_connections`). Returns
    /// a waiter to wake into the new room.
    pub fn proven(&mut self, s: SiteId, max: u32, ramp: f64) -> Option<QueueId> {
        let site = self.get(s);
        if site.waiting == 0 || site.idle > 0 {
            return None;
        }
        site.target = pacing::grow(site.target, site.connections, site.waiting, max, ramp);
        if site.connections < site.target {
            return self.next_waiter(s);
        }
        None
    }

    /// The first queue still waiting on `s`, which stops waiting: a connection of the site
    /// moves to it (or, from [`Sites::leave`] and [`Sites::proven`], it opens its own).
    pub fn next_waiter(&mut self, s: SiteId) -> Option<QueueId> {
        while let Some(q) = self.get(s).waiters.pop_front() {
            if self.waits_on.get(&q) == Some(&s) {
                self.waits_on.remove(&q);
                self.get(s).waiting -= 1;
                return Some(q);
            }
        }
        None
    }

    /// Whether a queue waits on `s`.
    pub fn has_waiters(&self, s: SiteId) -> bool {
        self.sites[s as usize].waiting > 0
    }

    /// Queue `q` no longer waits (it has nothing to send, or opens its own).
    pub fn withdraw(&mut self, q: QueueId) {
        if let Some(s) = self.waits_on.remove(&q) {
            self.get(s).waiting -= 1;
        }
    }

    /// The site `q` waits on.
    pub fn waiting_on(&self, q: QueueId) -> Option<SiteId> {
        self.waits_on.get(&q).copied()
    }

    /// A connection of `s` became idle (`true`) or took work again.
    pub fn idle(&mut self, s: SiteId, idle: bool) {
        let site = self.get(s);
        if idle {
            site.idle += 1;
        } else {
            site.idle = site.idle.saturating_sub(1);
        }
    }

    pub fn has_idle(&self, s: SiteId) -> bool {
        self.sites[s as usize].idle > 0
    }

    /// Connections serving `s`, connecting ones included.
    pub fn connections(&self, s: SiteId) -> u32 {
        self.sites[s as usize].connections
    }

    pub fn view(&self, s: SiteId) -> SiteView {
        let site = &self.sites[s as usize];
        SiteView {
            connections: site.connections,
            idle: site.idle,
            target: site.target,
            waiting: site.waiting as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one() -> (Sites<&'static str>, SiteId) {
        let mut s = Sites::default();
        let id = s.site("gw");
        (s, id)
    }

    #[test]
    fn the_same_key_is_the_same_site() {
        let mut s = Sites::default();
        let a = s.site("gw");
        let b = s.site("mx");
        assert_ne!(a, b);
        assert_eq!(s.site("gw"), a);
        assert_eq!((s.find(&"mx"), s.find(&"other")), (Some(b), None));
    }

    #[test]
    fn the_first_queue_opens_the_others_wait_in_order() {
        let (mut s, gw) = one();
        assert!(s.admit(gw, 1), "an empty site lets the first one open");
        assert!(!s.admit(gw, 2));
        assert!(!s.admit(gw, 3));
        assert!(!s.admit(gw, 2), "asking again keeps its place");
        assert_eq!(s.waiting_on(2), Some(gw));
        assert_eq!(s.view(gw).waiting, 2);
        assert_eq!(s.next_waiter(gw), Some(2));
        assert_eq!(s.next_waiter(gw), Some(3));
        assert_eq!(s.next_waiter(gw), None);
        assert_eq!(s.waiting_on(2), None);
    }

    #[test]
    fn a_waiter_that_left_is_skipped() {
        let (mut s, gw) = one();
        assert!(s.admit(gw, 1));
        assert!(!s.admit(gw, 2));
        assert!(!s.admit(gw, 3));
        s.withdraw(2);
        assert!(s.has_waiters(gw));
        assert_eq!(s.next_waiter(gw), Some(3));
        assert!(!s.has_waiters(gw));
    }

    #[test]
    fn the_target_grows_while_queues_wait_and_no_connection_idles() {
        let (mut s, gw) = one();
        assert!(s.admit(gw, 0));
        for q in 1..=100 {
            assert!(!s.admit(gw, q));
        }
        s.idle(gw, true);
        assert_eq!(s.proven(gw, 20, pacing::RAMP_NORMAL), None, "one idles");
        s.idle(gw, false);
        // One connection, 100 waiting, max 20: 1 → 1 + floor(0.3 × 19) = 6.
        assert_eq!(s.proven(gw, 20, pacing::RAMP_NORMAL), Some(1));
        assert_eq!(s.view(gw).target, 6);
        // The woken queue opens its own.
        assert!(s.admit(gw, 1));
        assert_eq!(s.view(gw).connections, 2);
        // Growth never passes the max.
        for _ in 0..20 {
            s.proven(gw, 20, pacing::RAMP_NORMAL);
        }
        assert_eq!(s.view(gw).target, 20);
    }

    #[test]
    fn the_last_connection_gone_wakes_a_waiter_so_none_is_stranded() {
        let (mut s, gw) = one();
        assert!(s.admit(gw, 1));
        assert!(!s.admit(gw, 2));
        s.shrink(gw);
        assert_eq!(s.leave(gw), Some(2), "no connection left to serve it");
        assert!(s.admit(gw, 2));
        assert_eq!(s.leave(gw), None);
        assert_eq!(s.view(gw).target, 0, "empty: slow start from one again");
    }

    #[test]
    fn an_idle_connection_is_waited_for_even_under_the_target() {
        let (mut s, gw) = one();
        assert!(s.admit(gw, 0));
        for q in 1..=10 {
            assert!(!s.admit(gw, q));
        }
        s.proven(gw, 20, pacing::RAMP_HIGH);
        assert!(s.view(gw).target > 1);
        s.idle(gw, true);
        assert!(!s.admit(gw, 11), "an idle connection will take it");
        s.idle(gw, false);
        assert!(s.admit(gw, 12));
    }

    #[test]
    fn a_queue_with_connections_of_its_own_joins_without_asking() {
        let (mut s, gw) = one();
        assert!(s.admit(gw, 1));
        s.join(gw);
        s.join(gw);
        assert_eq!(s.view(gw).connections, 3);
        assert!(!s.admit(gw, 2), "over the target of one");
        assert_eq!(s.leave(gw), None, "two still serve it");
    }
}
