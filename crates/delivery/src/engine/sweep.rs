//! The adaptive module's two timers, run by the daemon:
//!
//! - the suspend sweep (`suspend_sweep_interval`) drops suspensions that ended and lets
//!   limits lowered by a rule that has been quiet climb one step back;
//! - the bounce sweep (`bounce_sweep_interval`) cuts each binding x domain's window out of
//!   the running counts (recipient attempts and deliveries per queue, failures per bounce
//!   class and feedback reports per type from [`crate::stats::BounceCounts`]) and runs the
//!   pair's sweep rules ([`crate::sweep_rules`]) on it.
//!
//! Architecture Invariant: neither sweep holds the engine's lock while it takes the book's:
//! the counts are copied out first.

use std::collections::BTreeMap;

use bindery_adaptive::{Change, Key, Totals, Windows};
use bindery_config::snapshot::BindingId;
use bindery_queue::QueueId;

use super::{Engine, Inner};
use crate::options::DeliveryOptions;
use crate::sweep_rules::SweepRules;

/// What the bounce sweep reads from the `adaptive { }` stanza.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SweepStats {
    /// `enable_bounce_stats`: bounce rules see the attempts and bounces.
    pub bounces: bool,
    /// `enable_fbl_stats`: FBL rules see the deliveries and reports.
    pub fbl: bool,
    /// `fbl_stats_monitor = "SIZE,COUNT"`: the FBL window's slices.
    pub fbl_slice: u64,
    pub fbl_slices: u64,
}

impl Default for SweepStats {
    fn default() -> SweepStats {
        SweepStats {
            bounces: true,
            fbl: true,
            fbl_slice: 14_400,
            fbl_slices: 6,
        }
    }
}

impl Engine {
    /// Adaptive delivery's suspend sweep (`suspend_sweep_interval`): suspensions that ended
    /// are dropped from the book, and limits lowered by a rule that has been quiet for the
    /// binding x domain's `adaptive_positive_adjustment_interval` climb one step back.
    pub fn adaptive_sweep(&self) {
        let Some(live) = &self.inner.cfg.adaptive else {
            return;
        };
        let now = self.inner.now_ms() / 1000;
        let snap = self.inner.snapshot.load_full();
        let settings = |k: &Key| {
            let b = snap.binding_id(&k.binding).unwrap_or(BindingId::DEFAULT);
            DeliveryOptions::resolve(&snap, b, &snap.domain_key(&k.domain)).adaptive
        };
        live.update(|book| {
            let ended = book.expire(now);
            // One interval for every pair would be wrong where scopes set their own: each
            // pair climbs by its own, so the book is asked pair by pair.
            let mut climbed = false;
            for key in book.select(None, None) {
                if let Some(s) = settings(&key) {
                    climbed |= book.climb_one(&key, now, s.positive_interval, &s.base);
                }
            }
            ((), !ended.is_empty() || climbed)
        });
    }

    /// Adaptive delivery's bounce sweep (`bounce_sweep_interval`): every binding x domain
    /// with adaptive delivery on and traffic in its window goes through its sweep rules.
    /// Returns how many changes the rules made.
    pub fn bounce_sweep(&self, rules: &SweepRules, stats: &SweepStats) -> usize {
        let inner = &self.inner;
        let Some(live) = &inner.cfg.adaptive else {
            return 0;
        };
        let now = inner.now_ms() / 1000;
        let totals = self.pair_totals(stats);
        let windows: BTreeMap<Key, bindery_adaptive::Window> = {
            let mut w = live.windows();
            if !w.shaped(stats.fbl_slice, stats.fbl_slices) {
                *w = Windows::new(stats.fbl_slice, stats.fbl_slices);
            }
            w.advance(now, totals).clone()
        };
        let snap = inner.snapshot.load_full();
        let ruleset = live.rules();
        let mut made = 0;
        for (key, window) in windows {
            let b = snap.binding_id(&key.binding).unwrap_or(BindingId::DEFAULT);
            let domain = snap.domain_key(&key.domain);
            let Some(settings) = DeliveryOptions::resolve(&snap, b, &domain).adaptive else {
                continue;
            };
            let pair_rules = rules.for_pair(&snap, b, &domain);
            let refused = settings.rejection_suspension.and_then(|(percent, secs)| {
                bindery_adaptive::sweep::rejection_rate(&window, settings.volumes.attempts, percent)
                    .map(|rate| (rate, percent, secs))
            });
            if pair_rules.is_empty() && refused.is_none() {
                continue;
            }
            let changes = live.update(|book| {
                let mut c = book.sweep(
                    &ruleset,
                    &pair_rules,
                    &key,
                    &window,
                    &settings.volumes,
                    now,
                    &settings.base,
                    &settings.ranges,
                );
                // Momentum's rejection-rate suspension, after the sweep rules (a suspension
                // one of them set stands).
                if let Some((rate, percent, secs)) = refused
                    && let Some(s) =
                        book.suspend(&key, secs, false, "rejection_rate_suspension", now)
                {
                    c.push((
                        s,
                        format!(
                            "rejection rate {rate:.2} % of {} attempts, over adaptive_rejection_rate_suspension_percentage {percent} %",
                            window.attempts
                        ),
                    ));
                }
                let changed = !c.is_empty();
                (c, changed)
            });
            made += changes.len();
            for (change, why) in changes {
                super::adaptive::tell(inner, &key, &change, &why, now);
                if matches!(change, Change::Bounce) {
                    for q in queues_of(inner, &key) {
                        super::adaptive::bounce_waiting(inner, q);
                    }
                }
            }
        }
        made
    }

    /// Every binding x domain's running counts: the queues' (all variants of a pair
    /// together) and the bounce and feedback counts, as `stats` lets the rules see them.
    fn pair_totals(&self, stats: &SweepStats) -> BTreeMap<Key, Totals> {
        let inner = &self.inner;
        let mut totals: BTreeMap<Key, Totals> = BTreeMap::new();
        {
            let mut st = inner.lock();
            for q in 0..st.queues.len() as QueueId {
                let queue = st.queues.get(q);
                let (slot, domain) = (queue.binding, queue.domain.to_string());
                let c = Inner::conns(&mut st, q);
                let (delivered, failed, transient) = (c.delivered, c.failed, c.transient);
                let key = Key::new(&inner.binding_name(slot), &domain);
                let t = totals.entry(key).or_default();
                t.attempts += delivered + failed + transient;
                t.delivered += delivered;
            }
        }
        let counts = &inner.cfg.stats.bounces;
        if stats.bounces {
            for f in counts.figures() {
                let t = totals.entry(Key::new(&f.binding, &f.domain)).or_default();
                *t.bounces.entry(f.class).or_default() += f.transient + f.permanent;
            }
        }
        if stats.fbl {
            for f in counts.feedback_figures() {
                let t = totals.entry(Key::new(&f.binding, &f.domain)).or_default();
                *t.feedback.entry(f.kind.to_ascii_lowercase()).or_default() += f.reports;
            }
        }
        for t in totals.values_mut() {
            if !stats.bounces {
                t.attempts = 0;
            }
            if !stats.fbl {
                t.delivered = 0;
            }
        }
        totals
    }
}

/// The queues of a binding x domain (one per login variant).
fn queues_of(inner: &Inner, key: &Key) -> Vec<QueueId> {
    let st = inner.lock();
    (0..st.queues.len() as QueueId)
        .filter(|&q| {
            let queue = st.queues.get(q);
            queue.domain.eq_ignore_ascii_case(&key.domain)
                && inner.binding_name(queue.binding) == key.binding
        })
        .collect()
}
