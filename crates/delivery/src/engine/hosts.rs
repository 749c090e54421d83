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
//!
//! A host at its limit is zero-weighted in MX selection: the connection goes to the next
//! host of the same preference, then of the next. When every host is at its limit, the part
//! goes back to the head of its active queue, unattempted, and the queue waits a moment
//! (or until the throttle has a token) before it tries again. A stanza matches the host's
//! name first, else its address.

use std::sync::Arc;
use std::sync::LazyLock;

use bindery_config::Snapshot;
use bindery_config::schema::{OptionId, option_id};
use bindery_config::snapshot::BindingId;
use bindery_queue::throttle::ThrottleKind;
use bindery_queue::{Rate, ThrottleKey};
use rustc_hash::FxHashMap;

use super::Inner;
use crate::options::Reader;
use crate::route::Target;

/// How long a queue whose every host is at its connection limit waits before it looks
/// again (a closing connection also wakes the dispatcher, which then finds the queue due).
pub(crate) const BUSY_RETRY_MS: u64 = 250;

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
        })
    }
}

/// Connections open per (binding slot, host key).
#[derive(Default)]
pub(crate) struct HostConns(std::sync::Mutex<FxHashMap<(u32, String), u32>>);

impl HostConns {
    fn lock(&self) -> std::sync::MutexGuard<'_, FxHashMap<(u32, String), u32>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One connection's place under its host's limits; gives it back when dropped.
pub(crate) struct HostClaim {
    inner: Arc<Inner>,
    slot: u32,
    pub opts: HostOptions,
}

/// Takes a connection slot on the host for binding `slot`, and a token of its connection
/// throttle. `Err(ms)`: the host is at its limit; look again after that long.
pub(crate) fn claim(
    inner: &Arc<Inner>,
    slot: u32,
    opts: HostOptions,
    now_ms: u64,
) -> Result<HostClaim, u64> {
    let mut open = inner.hosts.lock();
    let key = (slot, opts.key.clone());
    let n = open.get(&key).copied().unwrap_or(0);
    if opts.max_connections.is_some_and(|max| n >= max) {
        return Err(BUSY_RETRY_MS);
    }
    if let Some((k, rate)) = opts.throttle_connections {
        inner.cfg.throttles.acquire(k, rate, now_ms)?;
    }
    open.insert(key, n + 1);
    drop(open);
    Ok(HostClaim {
        inner: Arc::clone(inner),
        slot,
        opts,
    })
}

impl Drop for HostClaim {
    fn drop(&mut self) {
        let key = (self.slot, std::mem::take(&mut self.opts.key));
        {
            let mut open = self.inner.hosts.lock();
            match open.get_mut(&key) {
                Some(n) if *n > 1 => *n -= 1,
                _ => {
                    open.remove(&key);
                }
            }
        }
        self.inner.wake.notify_one();
    }
}
