//! Host scope: what `host "mx.example" { ... }` stanzas limit, for each MX host (or gateway,
//! or route host) a connection goes to.
//!
//! Host options have their own chain, `B::H > G::H > H`, and never fall back to binding,
//! domain or global values (Momentum: "the two chains are independent"). They add to the
//! (binding, domain) limits, never replace them:
//! - `max_outbound_connections`: connections open from one binding to that host (unset in a
//!   host stanza: unlimited).
//! - `outbound_throttle_connections`, `outbound_throttle_messages`: token buckets keyed by
//!   the scope that set them, as for domains, so a regex host stanza is one bucket for every
//!   host it matches.
//! - `scope_max_outbound_connections`: connections to every host the stanza matches, from
//!   every binding the stanza applies to (a global host stanza: every binding).
//!
//! A host at its limit is zero-weighted in MX selection: the connection goes to the next
//! host of the same preference, then of the next. When every host is at its connection
//! limit, the part goes back to the head of its active queue, unattempted, and the queue
//! waits on the cap that refused it until a connection to that host ends
//! (`bindery_queue::caps`); when a throttle refused, until it has a token. A stanza matches
//! the host's name first, else its address.

use std::sync::Arc;
use std::sync::LazyLock;

use bindery_config::Snapshot;
use bindery_config::schema::{OptionId, option_id};
use bindery_config::snapshot::BindingId;
use bindery_queue::throttle::ThrottleKind;
use bindery_queue::{CapKey, Limit, QueueId, Rate, ThrottleKey};

use super::{CapList, Inner};
use crate::options::Reader;
use crate::route::Target;

struct Ids {
    max_connections: OptionId,
    throttle_messages: OptionId,
    throttle_connections: OptionId,
}

static IDS: LazyLock<Ids> = LazyLock::new(|| Ids {
    max_connections: option_id("Max_Outbound_Connections"),
    throttle_messages: option_id("Outbound_Throttle_Messages"),
    throttle_connections: option_id("Outbound_Throttle_Connections"),
});

/// The host-scope limits for mail on one binding to one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostOptions {
    /// The name the stanza matched: the host's name or its address.
    pub key: String,
    /// `None`: unlimited.
    pub max_connections: Option<u32>,
    pub throttle_messages: Option<(ThrottleKey, Rate)>,
    pub throttle_connections: Option<(ThrottleKey, Rate)>,
    /// `scope_max_outbound_connections` per host stanza on the chain: (scope, cap).
    pub scope_caps: Vec<(u32, u32)>,
}

impl HostOptions {
    /// The limits for `target`, or `None` when no host stanza matches it (nothing to check).
    pub fn resolve(snap: &Snapshot, binding: BindingId, target: &Target) -> Option<HostOptions> {
        if !snap.has_hosts() {
            return None;
        }
        let ip = target.addr.ip().to_string();
        let (key, dk) = [target.host.as_str(), ip.as_str()]
            .into_iter()
            .map(|name| (name, snap.domain_key(name)))
            .find(|(_, dk)| snap.host_matches(binding, dk))?;
        let ids = &*IDS;
        let r = Reader(snap.host_chain(Some(binding), None, &dk));
        Some(HostOptions {
            key: key.to_string(),
            max_connections: u32::try_from(r.int(ids.max_connections)).ok(),
            throttle_messages: r.throttle(ids.throttle_messages, ThrottleKind::Messages),
            throttle_connections: r.throttle(ids.throttle_connections, ThrottleKind::Connections),
            scope_caps: r.scope_caps().map(|(_, scope, cap)| (scope, cap)).collect(),
        })
    }
}

/// One connection's place under its host's caps; gives it back when dropped.
pub(crate) struct HostClaim {
    inner: Arc<Inner>,
    caps: CapList,
    pub opts: HostOptions,
}

/// Why a host takes no connection now.
pub(crate) enum HostBusy {
    /// At a connection cap: the queue now waits on it, and is woken when a place frees.
    Capped,
    /// Its connection throttle has no token for this many ms.
    Throttled(u64),
}

/// Takes a place under the host's caps for a connection of queue `q` (binding `slot`), and
/// a token of its connection throttle.
pub(crate) fn claim(
    inner: &Arc<Inner>,
    q: QueueId,
    slot: u32,
    opts: HostOptions,
    now_ms: u64,
) -> Result<HostClaim, HostBusy> {
    let mut woken = Vec::new();
    let mut st = inner.lock();
    let mut caps = CapList::new();
    if let Some(max) = opts.max_connections {
        let key = CapKey::Host(slot, opts.key.as_str().into());
        caps.push(st.caps.cap(key, Limit::new(max), &mut woken));
    }
    for &(scope, max) in &opts.scope_caps {
        caps.push(
            st.caps
                .cap(CapKey::Scope(scope), Limit::new(max), &mut woken),
        );
    }
    let claimed = match st.caps.open(q, &caps, false, &mut woken) {
        Err(_) => Err(HostBusy::Capped),
        Ok(()) => match opts.throttle_connections {
            Some((k, rate)) => match inner.cfg.throttles.acquire(k, rate, now_ms) {
                Ok(()) => Ok(()),
                Err(wait) => {
                    st.caps.close(&caps, &mut woken);
                    Err(HostBusy::Throttled(wait))
                }
            },
            None => Ok(()),
        },
    };
    st.ready.append(&mut woken);
    drop(st);
    claimed?;
    Ok(HostClaim {
        inner: Arc::clone(inner),
        caps,
        opts,
    })
}

impl HostClaim {
    pub fn caps(&self) -> &[bindery_queue::CapId] {
        &self.caps
    }
}

impl Drop for HostClaim {
    fn drop(&mut self) {
        self.inner.release(&self.caps);
    }
}
