//! Counters per binding and for the whole daemon, as `binding summary`, `summary` and
//! `/metrics` read them.
//!
//! Every counter is absolute (monotonic since the counters were first created, across
//! restarts), which is what Prometheus wants. The console shows figures "since start or
//! since `summary reset`" as the absolute value minus a baseline taken at the reset, so a
//! reset never makes a metric go backwards.
//!
//! Bindings are known by name, not by the configuration's `BindingId`: ids are per
//! generation and a reload may renumber them, while a binding's statistics (and its queues)
//! must outlive any number of reloads. A binding's slot is made on first use and never
//! reused; its index is what the queues are keyed by.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// The counters of one binding, or of the whole daemon.
#[derive(Default, Debug)]
pub struct Tally {
    /// Messages accepted from clients.
    pub received: AtomicU64,
    /// Recipients delivered (2xx after the data).
    pub delivered: AtomicU64,
    /// Recipients failed for good (5xx, expiry, purged).
    pub failed: AtomicU64,
    /// Recipient attempts deferred (4xx, no connection).
    pub transient: AtomicU64,
    /// Failure reports (bounces) generated.
    pub bounced: AtomicU64,
}

/// A [`Tally`] read at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub received: u64,
    pub delivered: u64,
    pub failed: u64,
    pub transient: u64,
    pub bounced: u64,
}

impl Counts {
    /// Field by field, never below zero (a baseline from an older file may exceed).
    pub fn since(self, base: Counts) -> Counts {
        Counts {
            received: self.received.saturating_sub(base.received),
            delivered: self.delivered.saturating_sub(base.delivered),
            failed: self.failed.saturating_sub(base.failed),
            transient: self.transient.saturating_sub(base.transient),
            bounced: self.bounced.saturating_sub(base.bounced),
        }
    }

    pub fn add(&mut self, o: Counts) {
        self.received += o.received;
        self.delivered += o.delivered;
        self.failed += o.failed;
        self.transient += o.transient;
        self.bounced += o.bounced;
    }
}

impl Tally {
    pub fn read(&self) -> Counts {
        Counts {
            received: self.received.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            transient: self.transient.load(Ordering::Relaxed),
            bounced: self.bounced.load(Ordering::Relaxed),
        }
    }

    fn restore(&self, c: Counts) {
        self.received.store(c.received, Ordering::Relaxed);
        self.delivered.store(c.delivered, Ordering::Relaxed);
        self.failed.store(c.failed, Ordering::Relaxed);
        self.transient.store(c.transient, Ordering::Relaxed);
        self.bounced.store(c.bounced, Ordering::Relaxed);
    }
}

/// One binding's counters and the samples its rates come from.
#[derive(Debug)]
pub struct BindingSlot {
    pub name: Box<str>,
    pub tally: Tally,
}

/// How many one-second samples the rates look back over.
const RATE_WINDOW: usize = 60;

/// The samples behind a rate: (time in seconds, done = delivered + failed, received).
#[derive(Default, Debug)]
struct Samples {
    ring: std::collections::VecDeque<(u64, u64, u64)>,
}

impl Samples {
    fn push(&mut self, now: u64, c: Counts) {
        if self.ring.back().is_some_and(|&(t, _, _)| t == now) {
            self.ring.pop_back();
        }
        self.ring
            .push_back((now, c.delivered + c.failed, c.received));
        while self.ring.len() > RATE_WINDOW + 1 {
            self.ring.pop_front();
        }
    }

    /// (delivery rate, reception rate) in messages per second over the window.
    fn rates(&self) -> (f64, f64) {
        match (self.ring.front(), self.ring.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                let dt = (b.0 - a.0) as f64;
                (
                    b.1.saturating_sub(a.1) as f64 / dt,
                    b.2.saturating_sub(a.2) as f64 / dt,
                )
            }
            _ => (0.0, 0.0),
        }
    }
}

/// What survives a restart (`stats.json` in the spool folder).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Saved {
    pub global: Counts,
    pub global_base: Counts,
    #[serde(default)]
    pub rejected: u64,
    #[serde(default)]
    pub rejected_base: u64,
    pub bindings: BTreeMap<String, Counts>,
    pub bases: BTreeMap<String, Counts>,
    /// When the console figures were last reset (seconds since the epoch).
    pub reset_at: u64,
    /// Warm-up counts of the last day counted: binding, domain, UTC day, recipients sent.
    #[serde(default)]
    pub warmup: Vec<(String, String, i64, u32)>,
}

/// Every counter of the daemon.
pub struct Stats {
    /// When this process started (seconds since the epoch): the Uptime.
    pub started: u64,
    pub global: Tally,
    /// Inbound commands or messages refused (policy or end of DATA).
    pub rejected: AtomicU64,
    rejected4: AtomicU64,
    rejected5: AtomicU64,
    slots: RwLock<Vec<Arc<BindingSlot>>>,
    names: RwLock<FxHashMap<Box<str>, u32>>,
    /// Baselines of the last `summary reset`: global, rejected, per binding name.
    bases: Mutex<(Counts, u64, FxHashMap<Box<str>, Counts>)>,
    reset_at: AtomicU64,
    samples: Mutex<FxHashMap<Box<str>, Samples>>,
    global_samples: Mutex<Samples>,
    /// Failures per binding, domain and bounce class (issue 22).
    pub bounces: BounceCounts,
    /// What adaptive delivery and warm-up plans did, per binding and action (issue 22).
    pub adaptive: ActionCounts,
    /// Recipients sent today under a warm-up plan, per binding and domain (issue 22).
    pub warmup: WarmCounts,
}

/// Recipients sent on one UTC day (days since the epoch) to a binding x domain under its
/// warm-up plan. Kept in `stats.json` with the other counters, so a restart does not give
/// the day's cap again (up to `Permastore_Interval` of counting is lost in a crash).
#[derive(Default)]
pub struct WarmCounts(Mutex<WarmMap>);

/// (binding, domain) to (UTC day, recipients sent that day).
type WarmMap = FxHashMap<(Box<str>, Box<str>), (i64, u32)>;

impl WarmCounts {
    fn lock(&self) -> std::sync::MutexGuard<'_, WarmMap> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts `n` recipients for `binding` to `domain` on `day` if fewer than `cap` have gone
    /// that day; whether it did.
    pub fn admit(&self, binding: &str, domain: &str, day: i64, cap: u32, n: u32) -> bool {
        let mut m = self.lock();
        let e = m.entry((binding.into(), domain.into())).or_insert((day, 0));
        if e.0 != day {
            *e = (day, 0);
        }
        if e.1 >= cap {
            return false;
        }
        e.1 = e.1.saturating_add(n);
        true
    }

    /// Recipients sent on `day` to `binding` x `domain`.
    pub fn sent(&self, binding: &str, domain: &str, day: i64) -> u32 {
        let m = self.lock();
        match m.get(&(Box::from(binding), Box::from(domain))) {
            Some((d, n)) if *d == day => *n,
            _ => 0,
        }
    }

    fn save(&self) -> Vec<(String, String, i64, u32)> {
        let m = self.lock();
        let mut v: Vec<_> = m
            .iter()
            .map(|((b, d), (day, n))| (b.to_string(), d.to_string(), *day, *n))
            .collect();
        v.sort();
        v
    }

    fn restore(&self, saved: &[(String, String, i64, u32)]) {
        let mut m = self.lock();
        for (b, d, day, n) in saved {
            m.insert((b.as_str().into(), d.as_str().into()), (*day, *n));
        }
    }
}

/// Adaptive actions taken (a suspension, a lowered limit, a warm-up cap reached) per
/// binding and action, since start. Bindings are few; actions are a fixed set of words.
#[derive(Default)]
pub struct ActionCounts(Mutex<BTreeMap<(Box<str>, &'static str), u64>>);

impl ActionCounts {
    pub fn count(&self, binding: &str, action: &'static str) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((binding.into(), action)).or_default() += 1;
    }

    /// (binding, action, count), sorted.
    pub fn figures(&self) -> Vec<(String, &'static str, u64)> {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.iter()
            .map(|((b, a), n)| (b.to_string(), *a, *n))
            .collect()
    }
}

/// Distinct (binding, domain) pairs [`BounceCounts`] keeps apart; later domains are counted
/// under `_other`, so a flood of one-off domains cannot grow it without bound.
pub const MAX_BOUNCE_PAIRS: usize = 20_000;

/// Recipient failures by binding, domain and bounce class (transient attempts and
/// permanent failures), and feedback reports by binding, domain and type. Since start (not
/// kept across restarts, like the metrics). One lock: a count touches every part of it.
#[derive(Default)]
pub struct BounceCounts(Mutex<Tallies>);

#[derive(Default)]
struct Tallies {
    /// The domains of each binding that are counted under their own name.
    pairs: FxHashMap<Box<str>, rustc_hash::FxHashSet<Box<str>>>,
    /// How many (binding, domain) pairs `pairs` holds.
    npairs: usize,
    /// Domains in the order first counted: what the metrics label them by.
    ranks: FxHashMap<Box<str>, u32>,
    failures: FxHashMap<BounceKey, [u64; 2]>,
    feedback: FxHashMap<FeedbackKey, u64>,
}

/// Binding, domain, feedback type.
type FeedbackKey = (Box<str>, Box<str>, Box<str>);

/// Binding, domain, class.
type BounceKey = (Box<str>, Box<str>, u16);

/// One row of [`BounceCounts::figures`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BounceFigure {
    pub binding: String,
    pub domain: String,
    /// The domain's rank in first-seen order (0 for the first).
    pub domain_rank: u32,
    pub class: u16,
    pub transient: u64,
    pub permanent: u64,
}

/// One row of [`BounceCounts::feedback_figures`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedbackFigure {
    pub binding: String,
    pub domain: String,
    /// As [`BounceFigure::domain_rank`].
    pub domain_rank: u32,
    pub kind: String,
    pub reports: u64,
}

impl Tallies {
    /// The domain a (binding, domain) pair is counted under: its own, or `_other` once
    /// [`MAX_BOUNCE_PAIRS`] pairs are known. Ranks the domain on first sight.
    fn label<'d>(&mut self, binding: &str, domain: &'d str) -> &'d str {
        let known = self.pairs.get(binding).is_some_and(|d| d.contains(domain));
        let label = if known {
            domain
        } else if self.npairs < MAX_BOUNCE_PAIRS {
            self.pairs
                .entry(binding.into())
                .or_default()
                .insert(domain.into());
            self.npairs += 1;
            domain
        } else {
            "_other"
        };
        if !self.ranks.contains_key(label) {
            let next = self.ranks.len() as u32;
            self.ranks.insert(label.into(), next);
        }
        label
    }

    fn rank(&self, domain: &str) -> u32 {
        self.ranks.get(domain).copied().unwrap_or(u32::MAX)
    }
}

impl BounceCounts {
    fn lock(&self) -> std::sync::MutexGuard<'_, Tallies> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts `n` failures of `class` for `binding` to `domain`.
    pub fn count(&self, binding: &str, domain: &str, class: u16, permanent: bool, n: u64) {
        if n == 0 {
            return;
        }
        let mut t = self.lock();
        let domain = t.label(binding, domain);
        let slot = t
            .failures
            .entry((binding.into(), domain.into(), class))
            .or_default();
        slot[usize::from(permanent)] += n;
    }

    /// Counts one feedback report of `kind` (abuse, fraud, ...) about mail `binding` sent
    /// to `domain`.
    pub fn feedback(&self, binding: &str, domain: &str, kind: &str) {
        let mut t = self.lock();
        let domain = t.label(binding, domain);
        *t.feedback
            .entry((binding.into(), domain.into(), kind.into()))
            .or_default() += 1;
    }

    /// Feedback reports by (binding, domain, type), sorted.
    pub fn feedback_figures(&self) -> Vec<FeedbackFigure> {
        let t = self.lock();
        let mut out: Vec<FeedbackFigure> = t
            .feedback
            .iter()
            .map(|((b, d, k), n)| FeedbackFigure {
                binding: b.to_string(),
                domain: d.to_string(),
                domain_rank: t.rank(d),
                kind: k.to_string(),
                reports: *n,
            })
            .collect();
        out.sort_by(|a, b| (&a.binding, &a.domain, &a.kind).cmp(&(&b.binding, &b.domain, &b.kind)));
        out
    }

    /// Every (binding, domain, class) counted, sorted.
    pub fn figures(&self) -> Vec<BounceFigure> {
        let t = self.lock();
        let mut out: Vec<BounceFigure> = t
            .failures
            .iter()
            .map(|((b, d, c), [tr, p])| BounceFigure {
                binding: b.to_string(),
                domain: d.to_string(),
                domain_rank: t.rank(d),
                class: *c,
                transient: *tr,
                permanent: *p,
            })
            .collect();
        out.sort_by(|a, b| (&a.binding, &a.domain, a.class).cmp(&(&b.binding, &b.domain, b.class)));
        out
    }
}

impl Stats {
    pub fn new(started: u64) -> Stats {
        Stats {
            started,
            global: Tally::default(),
            rejected: AtomicU64::new(0),
            rejected4: AtomicU64::new(0),
            rejected5: AtomicU64::new(0),
            slots: RwLock::new(Vec::new()),
            names: RwLock::new(FxHashMap::default()),
            bases: Mutex::new((Counts::default(), 0, FxHashMap::default())),
            reset_at: AtomicU64::new(started),
            samples: Mutex::new(FxHashMap::default()),
            global_samples: Mutex::new(Samples::default()),
            bounces: BounceCounts::default(),
            adaptive: ActionCounts::default(),
            warmup: WarmCounts::default(),
        }
    }

    /// The slot of binding `name`, made on first use.
    pub fn slot(&self, name: &str) -> u32 {
        if let Some(&i) = self
            .names
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return i;
        }
        let mut names = self.names.write().unwrap_or_else(|p| p.into_inner());
        if let Some(&i) = names.get(name) {
            return i;
        }
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let i = slots.len() as u32;
        slots.push(Arc::new(BindingSlot {
            name: name.into(),
            tally: Tally::default(),
        }));
        names.insert(name.into(), i);
        i
    }

    pub fn binding(&self, slot: u32) -> Option<Arc<BindingSlot>> {
        self.slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(slot as usize)
            .cloned()
    }

    /// Every binding that has a slot, in slot order.
    pub fn bindings(&self) -> Vec<Arc<BindingSlot>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Adds to a binding's tally and the global one.
    pub fn count(&self, slot: u32, f: impl Fn(&Tally)) {
        if let Some(b) = self.binding(slot) {
            f(&b.tally);
        }
        f(&self.global);
    }

    /// Counts an inbound refusal with reply `code`.
    pub fn reject(&self, code: u16) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        let class = if code >= 500 {
            &self.rejected5
        } else {
            &self.rejected4
        };
        class.fetch_add(1, Ordering::Relaxed);
    }

    /// Inbound refusals since the process started: (4xx, 5xx).
    pub fn rejected_by_class(&self) -> (u64, u64) {
        (
            self.rejected4.load(Ordering::Relaxed),
            self.rejected5.load(Ordering::Relaxed),
        )
    }

    /// The figures since the last reset: global, rejected, and per binding name.
    pub fn since_reset(&self) -> (Counts, u64, FxHashMap<Box<str>, Counts>) {
        let bases = self.bases.lock().unwrap_or_else(|p| p.into_inner());
        let global = self.global.read().since(bases.0);
        let rejected = self
            .rejected
            .load(Ordering::Relaxed)
            .saturating_sub(bases.1);
        let per = self
            .bindings()
            .iter()
            .map(|b| {
                let base = bases.2.get(&b.name).copied().unwrap_or_default();
                (b.name.clone(), b.tally.read().since(base))
            })
            .collect();
        (global, rejected, per)
    }

    pub fn reset_at(&self) -> u64 {
        self.reset_at.load(Ordering::Relaxed)
    }

    /// `summary reset`: the console's figures start again from zero; metrics do not move.
    pub fn reset(&self, now: u64) {
        let mut bases = self.bases.lock().unwrap_or_else(|p| p.into_inner());
        bases.0 = self.global.read();
        bases.1 = self.rejected.load(Ordering::Relaxed);
        bases.2 = self
            .bindings()
            .iter()
            .map(|b| (b.name.clone(), b.tally.read()))
            .collect();
        self.reset_at.store(now, Ordering::Relaxed);
    }

    /// Takes a rate sample for every binding; call about once a second.
    pub fn sample(&self, now: u64) {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        for b in self.bindings() {
            samples
                .entry(b.name.clone())
                .or_default()
                .push(now, b.tally.read());
        }
        drop(samples);
        self.global_samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(now, self.global.read());
    }

    /// (delivery, reception) rate of a binding over the last minute.
    pub fn rates(&self, name: &str) -> (f64, f64) {
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .map_or((0.0, 0.0), Samples::rates)
    }

    pub fn global_rates(&self) -> (f64, f64) {
        self.global_samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .rates()
    }

    pub fn save(&self) -> Saved {
        let bases = self.bases.lock().unwrap_or_else(|p| p.into_inner());
        Saved {
            global: self.global.read(),
            global_base: bases.0,
            rejected: self.rejected.load(Ordering::Relaxed),
            rejected_base: bases.1,
            bindings: self
                .bindings()
                .iter()
                .map(|b| (b.name.to_string(), b.tally.read()))
                .collect(),
            bases: bases.2.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            reset_at: self.reset_at(),
            warmup: self.warmup.save(),
        }
    }

    /// Puts back what [`Stats::save`] wrote before a restart. Call before any counting.
    pub fn restore(&self, saved: &Saved) {
        self.global.restore(saved.global);
        self.rejected.store(saved.rejected, Ordering::Relaxed);
        for (name, c) in &saved.bindings {
            let slot = self.slot(name);
            if let Some(b) = self.binding(slot) {
                b.tally.restore(*c);
            }
        }
        let mut bases = self.bases.lock().unwrap_or_else(|p| p.into_inner());
        bases.0 = saved.global_base;
        bases.1 = saved.rejected_base;
        bases.2 = saved
            .bases
            .iter()
            .map(|(k, v)| (Box::from(k.as_str()), *v))
            .collect();
        self.reset_at.store(saved.reset_at, Ordering::Relaxed);
        self.warmup.restore(&saved.warmup);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_moves_the_baseline_not_the_counters_and_both_survive_a_restart() {
        let s = Stats::new(100);
        let b = s.slot("b1");
        assert_eq!(s.slot("b1"), b);
        s.count(b, |t| {
            t.delivered.fetch_add(3, Ordering::Relaxed);
        });
        s.reset(150);
        s.count(b, |t| {
            t.delivered.fetch_add(2, Ordering::Relaxed);
        });
        let (g, _, per) = s.since_reset();
        assert_eq!(g.delivered, 2);
        assert_eq!(per.get("b1").map(|c| c.delivered), Some(2));
        assert_eq!(s.global.read().delivered, 5);
        let saved = serde_json::to_string(&s.save()).expect("json");
        let again = Stats::new(200);
        again.slot("other");
        again.restore(&serde_json::from_str(&saved).expect("parse"));
        let (g, _, per) = again.since_reset();
        assert_eq!((g.delivered, again.global.read().delivered), (2, 5));
        assert_eq!(per.get("b1").map(|c| c.delivered), Some(2));
        assert_eq!(again.reset_at(), 150);
    }

    #[test]
    fn rates_are_over_the_last_minute() {
        let s = Stats::new(0);
        let b = s.slot("b");
        for t in 0..=120u64 {
            s.count(b, |x| {
                x.delivered
                    .fetch_add(if t > 60 { 10 } else { 1 }, Ordering::Relaxed);
            });
            s.sample(t);
        }
        assert_eq!(s.rates("b"), (10.0, 0.0));
        assert_eq!(s.global_rates(), (10.0, 0.0));
    }
}

#[cfg(test)]
mod bounce_count_tests {
    use super::*;

    #[test]
    fn pairs_past_the_bound_count_as_other_and_feedback_domains_are_ranked() {
        let c = BounceCounts::default();
        c.count("b", "one.test", 10, true, 2);
        c.count("b", "one.test", 10, false, 3);
        c.feedback("b", "two.test", "abuse");
        for i in 0..MAX_BOUNCE_PAIRS {
            c.count("flood", &format!("d{i}.test"), 10, true, 1);
        }
        c.feedback("late", "new.test", "abuse");
        let f = c.figures();
        let one = f.iter().find(|x| x.domain == "one.test").unwrap();
        assert_eq!((one.transient, one.permanent, one.domain_rank), (3, 2, 0));
        assert!(
            f.iter()
                .any(|x| x.binding == "flood" && x.domain == "_other")
        );
        let fb = c.feedback_figures();
        assert_eq!(fb[0].domain_rank, 1, "two.test was the second domain seen");
        let late = fb.iter().find(|x| x.binding == "late").unwrap();
        assert_eq!(late.domain, "_other");
    }
}

#[cfg(test)]
mod warm_count_tests {
    use super::*;

    #[test]
    fn a_days_count_stops_at_the_cap_and_survives_a_restart() {
        let s = Stats::new(0);
        assert!(s.warmup.admit("b1", "one.test", 100, 3, 2));
        assert!(s.warmup.admit("b1", "one.test", 100, 3, 1));
        assert!(!s.warmup.admit("b1", "one.test", 100, 3, 1), "3 of 3 sent");
        assert_eq!(s.warmup.sent("b1", "one.test", 100), 3);
        let saved: Saved = serde_json::from_slice(&serde_json::to_vec(&s.save()).unwrap()).unwrap();
        let after = Stats::new(0);
        after.restore(&saved);
        assert!(
            !after.warmup.admit("b1", "one.test", 100, 3, 1),
            "still full after a restart"
        );
        // The next day starts from nothing; a file from before warm-up plans still reads.
        assert!(after.warmup.admit("b1", "one.test", 101, 3, 1));
        let mut before = serde_json::to_value(Stats::new(0).save()).unwrap();
        before.as_object_mut().unwrap().remove("warmup");
        let old: Saved = serde_json::from_value(before).unwrap();
        assert!(old.warmup.is_empty());
    }
}
