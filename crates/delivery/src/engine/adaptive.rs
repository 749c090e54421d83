//! Adaptive delivery in the engine (issue 22): the replies of a binding x domain feed its
//! response rules ([`bindery_adaptive::Book::on_reply`]); what they decide holds or limits
//! that queue.
//!
//! - A suspension holds the queue until it ends: the queue is parked in the dispatcher's
//!   timer heap for that time, not looked at again every second, and a connection that is
//!   open takes no further part of it. A blackhole fails the queue's mail instead.
//! - Lowered limits (connections, deliveries per connection, the message throttle, the
//!   retry interval) replace the configured ones in the queue's options.
//! - `bounce` fails the mail waiting in the queue at once.
//!
//! The book is shared ([`bindery_adaptive::Live`]): the console overrides a suspension, a
//! restart loads it. Each queue remembers the book's generation it last saw
//! (`Conns::adaptive_seen`); a queue whose generation is behind resolves its options again
//! before it is considered, so a change costs nothing to queues while nothing changes.
//!
//! Architecture Invariant: the book's lock is never taken while the engine's is held by a
//! caller that may wait on it the other way round: the engine takes the book's lock inside
//! its own (options, holds), and the book's hooks run after the book's lock is released.

use std::sync::Arc;

use bindery_adaptive::{Change, Key};
use bindery_queue::throttle::ThrottleKind;
use bindery_queue::{QueueId, Rate, ThrottleKey};

use super::{Inner, State};
use crate::options::DeliveryOptions;

impl Inner {
    /// Puts the book's word on `o`, the freshly resolved options of `q`: lowered limits in
    /// place of the configured ones, and the queue held while its binding x domain is
    /// suspended.
    pub(super) fn adapt(&self, st: &mut State, q: QueueId, o: &mut DeliveryOptions) {
        let Some(live) = &self.cfg.adaptive else {
            return;
        };
        let generation = live.generation();
        let Some(settings) = o.adaptive.clone() else {
            Inner::conns(st, q).adaptive_seen = generation;
            self.release_hold(st, q);
            return;
        };
        let key = self.key_of(st, q);
        let now = self.now_ms() / 1000;
        let (limits, held) = {
            let book = live.book();
            let limits = book.effective(&key, &settings.base);
            let held = book.suspended(&key, now).map(|s| (s.until, s.blackhole));
            (limits, held)
        };
        // The ranges bound the configured values too, not only what rules set.
        let limits =
            bindery_adaptive::state::bounded(limits, &live.rules(), &key.domain, &settings.ranges);
        o.max_connections = limits.connections;
        o.max_deliveries_per_connection = limits.deliveries.unwrap_or(0);
        o.retry.retry_interval = limits.retry_interval;
        if limits.throttle != settings.base.throttle {
            o.throttle_messages = limits.throttle.map(|(count, per)| {
                (
                    ThrottleKey {
                        scope: q,
                        kind: ThrottleKind::Adaptive,
                    },
                    Rate {
                        count,
                        seconds: u32::try_from(per).unwrap_or(u32::MAX),
                    },
                )
            });
        }
        let c = Inner::conns(st, q);
        c.adaptive_seen = generation;
        match held {
            Some((until, blackhole)) => {
                let until_ms = until.saturating_mul(1000);
                c.held_until_ms = until_ms;
                c.held_blackhole = blackhole;
                c.not_before_ms = c.not_before_ms.max(until_ms);
            }
            None => self.release_hold(st, q),
        }
    }

    /// `q` is no longer held: what the hold put off is due now.
    fn release_hold(&self, st: &mut State, q: QueueId) {
        let c = Inner::conns(st, q);
        if c.held_until_ms != 0 {
            if c.not_before_ms == c.held_until_ms {
                c.not_before_ms = 0;
            }
            c.held_until_ms = 0;
            c.held_blackhole = false;
        }
    }

    /// Looks at the book again for `q` if it changed since `q` last did (its options are
    /// then resolved again).
    pub(super) fn adaptive_fresh(&self, st: &mut State, q: QueueId) {
        let Some(live) = &self.cfg.adaptive else {
            return;
        };
        if Inner::conns(st, q).adaptive_seen != live.generation()
            && let Some(slot) = st.opts.get_mut(q as usize)
        {
            *slot = None;
        }
    }

    /// Whether `q` is held at `now_ms` (a suspension of its binding x domain), and whether
    /// the hold is a blackhole. Callers have made `q` fresh ([`Inner::adaptive_fresh`]) and
    /// resolved its options, which sets the hold.
    pub(super) fn held(st: &mut State, q: QueueId, now_ms: u64) -> Option<bool> {
        let c = Inner::conns(st, q);
        (c.held_until_ms > now_ms).then_some(c.held_blackhole)
    }

    /// The binding x domain of `q`.
    pub(super) fn key_of(&self, st: &State, q: QueueId) -> Key {
        let queue = st.queues.get(q);
        let binding = self
            .cfg
            .stats
            .binding(queue.binding)
            .map_or_else(|| "default".to_string(), |b| b.name.to_string());
        Key::new(&binding, &queue.domain)
    }

    /// The book changed (a rule fired, the console lifted or set a suspension): queues that
    /// are held are looked at again now.
    pub(super) fn book_changed(&self) {
        let mut st = self.lock();
        let held: Vec<QueueId> = st
            .conns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.held_until_ms != 0)
            .map(|(q, _)| q as QueueId)
            .collect();
        st.ready.extend(held);
        drop(st);
        self.wake.notify_one();
    }
}

/// The replies a settled part of `q` got (its distinct failures, in order) go through the
/// response rules of its binding x domain.
pub(super) async fn replies(
    inner: &Arc<Inner>,
    q: QueueId,
    opts: &DeliveryOptions,
    replies: &[String],
) {
    let (Some(live), Some(settings)) = (&inner.cfg.adaptive, &opts.adaptive) else {
        return;
    };
    if replies.is_empty() {
        return;
    }
    let rules = live.rules();
    let key = {
        let st = inner.lock();
        inner.key_of(&st, q)
    };
    if rules.for_domain(&key.domain).is_none() {
        return;
    }
    let now = inner.now_ms() / 1000;
    let mut changes = Vec::new();
    for reply in replies {
        let fired = live.update(|book| {
            let c = book.on_reply(&rules, &key, reply, now, &settings.base, &settings.ranges);
            let changed = !c.is_empty();
            (c, changed)
        });
        changes.extend(fired.into_iter().map(|c| (c, reply)));
    }
    for (change, reply) in changes {
        tell(inner, &key, &change, reply, now);
        if matches!(change, Change::Bounce) {
            bounce_waiting(inner, q);
        }
    }
}

/// An adaptive `bounce` fired for `q`: the dispatcher fails its waiting mail at its next
/// pass (failing it here would settle parts, which comes back to the rules).
pub(super) fn bounce_waiting(inner: &Inner, q: QueueId) {
    let mut st = inner.lock();
    Inner::conns(&mut st, q).bounce_waiting = true;
    st.ready.push(q);
    drop(st);
    inner.wake.notify_one();
}

/// A rule's change, in the paniclog (`adaptive:` lines, as Momentum writes them) and the
/// JSON mainlog.
pub(super) fn tell(inner: &Inner, key: &Key, change: &Change, reply: &str, now: u64) {
    let what = describe(change);
    inner
        .cfg
        .stats
        .adaptive
        .count(&key.binding, change.action());
    let line = format!(
        "adaptive: {}::{} {what} after \"{reply}\"",
        key.binding, key.domain
    );
    inner.cfg.eclogs.panic(now, &line);
    tracing::warn!(binding = %key.binding, domain = %key.domain, reply, "adaptive: {what}");
    inner.log(&super::records::Adaptive {
        kind: "adaptive",
        time: now,
        binding: &key.binding,
        domain: &key.domain,
        action: &what,
        reply,
    });
}

/// What a change did, in words.
pub fn describe(change: &Change) -> String {
    match change {
        Change::Suspended(s) => format!(
            "{} until {} by rule {}",
            if s.blackhole {
                "blackholed"
            } else {
                "suspended"
            },
            s.until,
            s.rule
        ),
        Change::Connections(n) => format!("max_outbound_connections lowered to {n}"),
        Change::Deliveries(n) => format!("max_deliveries_per_connection lowered to {n}"),
        Change::Throttle(m, p) => format!("outbound_throttle_messages lowered to {m}/{p}"),
        Change::Greylisted {
            until,
            retry_interval,
        } => format!("greylisted until {until}: retry_interval {retry_interval}"),
        Change::Bounce => "waiting mail failed".into(),
    }
}
