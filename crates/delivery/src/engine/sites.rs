//! The engine's side of [`bindery_queue::sites`]: what makes two queues one site, a
//! connection entering its site after routing, and moving a connection from a queue that has
//! nothing left to the next queue waiting on the same site.
//!
//! A queue learns its site from its first route (a gateway, or its MX hosts); until then it
//! opens its own connection, which, once routed, either counts for the site (the site had
//! room) or hands its part back unattempted and waits for a connection of the site. No
//! attempt is counted and nothing is logged for that: the part simply goes out on a
//! connection that is already open.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bindery_queue::{QueueId, SiteId};
use bindery_smtp::client::{Protocol, TlsWish};
use tokio::sync::Notify;

use super::{CapList, Inner, State};
use crate::options::{DeliveryOptions, Timeouts};
use crate::route::Target;
use crate::tls::TlsVerify;

/// Where a connection goes and how it talks there: two queues whose routes give the same key
/// can send on each other's connections.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SiteKey {
    /// The binding's statistics slot: its source address and the rest of its identity.
    binding: u32,
    bind: Option<IpAddr>,
    ehlo: Box<str>,
    /// Every host and address of the route, sorted: MX selection rotates equal preferences,
    /// which must not make a new site.
    hosts: Box<[(u32, Box<str>, SocketAddr)]>,
    /// SMTP, ESMTP or LMTP: a connection speaks one.
    protocol: Protocol,
    tls: TlsWish,
    tls_fallback: bool,
    tls_verify: TlsVerify,
    tls_ca: Option<Box<std::path::Path>>,
    tls_protocols: bindery_config::tls_protocols::Protocols,
    timeouts: Timeouts,
    /// The login (`outbound_smtp_auth`): a connection logged in as one user carries no mail
    /// of another.
    auth: Option<bindery_smtp::client::ClientAuth>,
}

impl SiteKey {
    pub fn new(binding: u32, targets: &[Target], ehlo: &str, opts: &DeliveryOptions) -> SiteKey {
        let mut hosts: Vec<_> = targets
            .iter()
            .map(|t| (t.preference, Box::from(t.host.as_str()), t.addr))
            .collect();
        hosts.sort_unstable();
        SiteKey {
            binding,
            bind: opts.bind_address,
            ehlo: ehlo.into(),
            hosts: hosts.into_boxed_slice(),
            protocol: opts.protocol,
            tls: opts.tls,
            tls_fallback: opts.tls_fallback,
            tls_verify: opts.tls_verify,
            tls_ca: opts.tls_ca.as_deref().map(Box::from),
            tls_protocols: opts.tls_protocols,
            timeouts: opts.timeouts,
            auth: opts.auth.login().ok().flatten(),
        }
    }
}

impl SiteKey {
    /// How the console names the site: `site HOST[:PORT]`, with `+N` for the other hosts.
    pub fn name(&self) -> String {
        let mut hosts: Vec<&str> = self.hosts.iter().map(|(_, h, _)| &**h).collect();
        hosts.dedup();
        match hosts.split_first() {
            None => "site".into(),
            Some((h, [])) => format!("site {h}"),
            Some((h, rest)) => format!("site {h} +{}", rest.len()),
        }
    }
}

/// What the engine keeps per site beside [`bindery_queue::Sites`], made with the site.
pub(crate) struct SiteInfo {
    /// Wakes the site's idle connections when a queue starts waiting on it.
    pub notify: Arc<Notify>,
    /// How the console names it.
    pub name: Box<str>,
}

impl State {
    /// What wakes the idle connections of site `s`.
    pub fn site_notify(&self, s: SiteId) -> Arc<Notify> {
        Arc::clone(&self.site_info[s as usize].notify)
    }

    /// The site of `key`, made (with its [`SiteInfo`]) on first use.
    fn site_of(&mut self, key: SiteKey) -> SiteId {
        if let Some(s) = self.sites.find(&key) {
            return s;
        }
        let name = key.name().into();
        let s = self.sites.site(key);
        self.site_info.push(SiteInfo {
            notify: Arc::default(),
            name,
        });
        s
    }

    /// A connection of site `s` delivered: while queues wait on the site and none of its
    /// connections idles, the site's target grows, and a waiter may open its own. Returns
    /// whether one was put on `ready`.
    pub fn site_proven(&mut self, s: SiteId, opts: &DeliveryOptions) -> bool {
        let max = opts.max_connections.unwrap_or(u32::MAX);
        match self.sites.proven(s, max, opts.ramp) {
            Some(w) => {
                self.ready.push(w);
                true
            }
            None => false,
        }
    }

    /// Queue `q` waits on site `s`: an idle connection of the site, if any, comes for it.
    pub fn wait_on_site(&mut self, s: SiteId, q: QueueId) {
        self.sites.wait(s, q);
        self.nudge_site(s);
    }

    /// Wakes an idle connection of `s` if one idles and a queue waits.
    pub fn nudge_site(&mut self, s: SiteId) {
        if self.sites.has_idle(s) && self.sites.has_waiters(s) {
            self.site_notify(s).notify_one();
        }
    }

    /// A connection of `s` ended: the waiter that leaves room for, if any, opens its own.
    pub fn leave_site(&mut self, s: SiteId) {
        if let Some(w) = self.sites.leave(s) {
            self.ready.push(w);
        }
    }
}

impl Inner {
    /// The connection of `q`, just routed to `key`, enters its site. `joined`: the site the
    /// dispatcher admitted it to (the queue's site as last known). Returns the site it now
    /// counts for, or `None` when it should hand its part back and wait for a connection
    /// of the site: the queue had no other connection and the site has no room.
    pub fn enter_site(&self, q: QueueId, key: SiteKey, joined: Option<SiteId>) -> Option<SiteId> {
        let mut st = self.lock();
        let s = st.site_of(key);
        Inner::conns(&mut st, q).site = Some(s);
        if joined == Some(s) {
            return Some(s);
        }
        if let Some(j) = joined {
            // The route changed since the queue last went out.
            st.leave_site(j);
        }
        // This connection is among the queue's own.
        let others = st.queues.get(q).connections.saturating_sub(1);
        if others > 0 {
            st.sites.join(s);
            return Some(s);
        }
        if st.sites.admit(s, q) {
            return Some(s);
        }
        st.nudge_site(s);
        None
    }

    /// Moves the connection serving `slot.q` (with places under `slot.caps`) to the next
    /// queue waiting on site `s` that can take it: it still has parts, its delivery is not
    /// suspended, and the caps it has besides the connection's own have room. An old queue
    /// that still has parts (its turn is up) and no other connection waits again at the
    /// site's tail. Returns the queue it moved to; `caps` are then its caps.
    pub fn migrate(
        &self,
        st: &mut State,
        s: SiteId,
        from: QueueId,
        caps: &mut CapList,
    ) -> Option<QueueId> {
        while let Some(q2) = st.sites.next_waiter(s) {
            if st.queues.get(q2).active_len() == 0 || self.options(st, q2).suspend {
                continue;
            }
            let theirs = self.caps_of(st, q2);
            if theirs != *caps {
                let add: CapList = theirs
                    .iter()
                    .filter(|c| !caps.contains(c))
                    .copied()
                    .collect();
                let first = st.queues.get(q2).connections == 0;
                let mut woken = Vec::new();
                if st.caps.open(q2, &add, first, &mut woken).is_err() {
                    // It now waits on that cap, which wakes it when a place frees.
                    st.ready.append(&mut woken);
                    continue;
                }
                let gone: CapList = caps
                    .iter()
                    .filter(|c| !theirs.contains(c))
                    .copied()
                    .collect();
                st.caps.close(&gone, &mut woken);
                st.ready.append(&mut woken);
                *caps = theirs;
            }
            let (left, active) = st.leave_queue(from);
            if active && left == 0 {
                st.wait_on_site(s, from);
            }
            st.queues.get_mut(q2).connections += 1;
            Inner::conns(st, q2).site = Some(s);
            return Some(q2);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bindery_config::snapshot::BindingId;

    fn opts(text: &str) -> DeliveryOptions {
        let snap = bindery_config::snapshot_from_str("t.conf", text).unwrap();
        let key = snap.domain_key("a.test");
        DeliveryOptions::resolve(&snap, BindingId::DEFAULT, &key)
    }

    fn target(host: &str, addr: &str, preference: u32) -> Target {
        Target {
            host: host.into(),
            addr: addr.parse().unwrap(),
            preference,
        }
    }

    #[test]
    fn mx_rotation_makes_no_new_site() {
        let o = opts("");
        let a = target("mx1.test", "127.0.0.2:25", 10);
        let b = target("mx2.test", "127.0.0.3:25", 10);
        let one = SiteKey::new(0, &[a.clone(), b.clone()], "me.test", &o);
        let other = SiteKey::new(0, &[b, a], "me.test", &o);
        assert_eq!(one, other);
        assert_eq!(one.name(), "site mx1.test +1");
    }

    #[test]
    fn a_connection_is_shared_only_between_equals() {
        let o = opts("");
        let t = [target("gw.test", "127.0.0.2:25", 0)];
        let base = SiteKey::new(0, &t, "me.test", &o);
        assert_ne!(base, SiteKey::new(1, &t, "me.test", &o), "another binding");
        assert_ne!(
            base,
            SiteKey::new(0, &t, "other.test", &o),
            "another EHLO name"
        );
        let required = opts("TLS = required\n");
        assert_ne!(
            base,
            SiteKey::new(0, &t, "me.test", &required),
            "another TLS wish"
        );
        let bound = opts("Bind_Address = 127.0.0.9\n");
        assert_ne!(
            base,
            SiteKey::new(0, &t, "me.test", &bound),
            "another source"
        );
        let elsewhere = [target("gw.test", "127.0.0.3:25", 0)];
        assert_ne!(
            base,
            SiteKey::new(0, &elsewhere, "me.test", &o),
            "another address"
        );
        assert_eq!(base.name(), "site gw.test");
    }
}
