//! What adaptive delivery knows of each binding x domain: its suspension, the limits the rules
//! lowered, the occurrences counted toward each rule's trigger and what happened (for
//! `bindery adaptive explain`). Sans-IO: every call is given the time, in seconds.
//!
//! Momentum's rules (`3-ad/`): a suspended binding::domain "cannot be lengthened or
//! shortened" (`ad-rules-sweep-rules.md`), so a second suspension while one runs changes
//! nothing; lowered limits are clipped to the domain's `( min max )` ranges; and they climb
//! back one step per `adaptive_positive_adjustment_interval` without a rule firing.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::duration;
use crate::rules::{Range, RuleSet};

/// A binding and a destination domain.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub binding: String,
    pub domain: String,
}

impl Key {
    pub fn new(binding: &str, domain: &str) -> Key {
        Key {
            binding: binding.to_string(),
            domain: domain.to_ascii_lowercase(),
        }
    }
}

/// The limits a binding x domain has from its configuration (what the rules adjust).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// `max_outbound_connections`; `None`: unlimited.
    pub connections: Option<u32>,
    /// `max_deliveries_per_connection`; `None`: unlimited.
    pub deliveries: Option<u32>,
    /// `outbound_throttle_messages` as messages per seconds; `None`: unlimited.
    pub throttle: Option<(u32, u64)>,
    /// `retry_interval`, seconds.
    pub retry_interval: u64,
    /// `adaptive_adjustment_interval`: a lowered limit is lowered again no sooner than this
    /// many seconds after the last change (Momentum's brake against flapping; 0: none).
    pub adjustment_interval: u64,
}

/// Where a lowered limit starts when the configuration sets none (unlimited): a value that
/// is lower than what an unlimited queue uses in practice.
pub const START_CONNECTIONS: u32 = 20;
pub const START_DELIVERIES: u32 = 100;
/// Messages per second when `throttle down` meets an unlimited queue.
pub const START_THROTTLE: (u32, u64) = (10, 1);

/// A suspension (or a blackhole) in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspension {
    pub since: u64,
    pub until: u64,
    /// Mail is failed rather than held.
    pub blackhole: bool,
    /// The rule that set it: `yahoo.com#1`, a sweep rule's name, `console`.
    pub rule: String,
    /// The reply that fired it.
    pub reply: String,
    pub message: String,
    /// `adaptive override` turns a suspension off without forgetting it (Momentum's
    /// `Enable` column); `adaptive override ... enable` turns it back on.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// One thing that happened to a binding x domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub at: u64,
    pub rule: String,
    pub reply: String,
    pub what: String,
}

/// What a firing changed, for the engine and the logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Suspended(Suspension),
    Connections(u32),
    Deliveries(u32),
    Throttle(u32, u64),
    /// Retry no sooner than this (seconds since the epoch), `retry_interval` raised.
    Greylisted {
        until: u64,
        retry_interval: u64,
    },
    /// Fail the mail waiting for this binding x domain.
    Bounce,
}

/// A limit adaptive delivery lowered, next to what the configuration says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lowered {
    pub option: &'static str,
    pub now: String,
    pub configured: String,
}

/// [`Book::explain`]'s answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The suspension that has not ended (enabled or overridden).
    pub suspension: Option<Suspension>,
    pub greylisted_until: Option<u64>,
    pub lowered: Vec<Lowered>,
    /// When the lowered limits take their next step back (seconds since the epoch).
    pub next_step: Option<u64>,
    pub history: Vec<Event>,
}

impl Change {
    /// The action's word, for the metrics.
    pub fn action(&self) -> &'static str {
        match self {
            Change::Suspended(s) if s.blackhole => "blackhole",
            Change::Suspended(_) => "suspend",
            Change::Connections(_) => "reduce_connections",
            Change::Deliveries(_) => "reduce_deliveries",
            Change::Throttle(..) => "throttle_down",
            Change::Greylisted { .. } => "greylisted",
            Change::Bounce => "bounce",
        }
    }
}

/// How many events a binding x domain keeps for `explain`.
pub const HISTORY: usize = 32;

/// The state of one binding x domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub suspension: Option<Suspension>,
    pub connections: Option<u32>,
    pub deliveries: Option<u32>,
    pub throttle: Option<(u32, u64)>,
    pub greylisted_until: Option<u64>,
    pub retry_interval: Option<u64>,
    /// When a rule last lowered something (the climb back waits for quiet).
    pub last_lowered: u64,
    /// When the climb back last took a step.
    pub last_raised: u64,
    hits: BTreeMap<(String, usize), VecDeque<u64>>,
    pub history: VecDeque<Event>,
}

impl State {
    fn note(&mut self, at: u64, rule: &str, reply: &str, what: String) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(Event {
            at,
            rule: rule.to_string(),
            reply: reply.to_string(),
            what,
        });
    }

    /// The suspension in force at `now`.
    pub fn suspended(&self, now: u64) -> Option<&Suspension> {
        self.suspension
            .as_ref()
            .filter(|s| s.until > now && s.enabled)
    }

    /// The suspension that has not ended by `now`, enabled or not (what the console lists).
    pub fn suspension_at(&self, now: u64) -> Option<&Suspension> {
        self.suspension.as_ref().filter(|s| s.until > now)
    }

    /// Whether a rule lowered any of its limits.
    pub fn is_adjusted(&self) -> bool {
        self.connections.is_some()
            || self.deliveries.is_some()
            || self.throttle.is_some()
            || self.retry_interval.is_some()
    }
}

/// Every binding x domain adaptive delivery has acted on.
#[derive(Clone, Debug, Default)]
pub struct Book {
    states: BTreeMap<Key, State>,
}

/// What of a binding x domain survives a restart: its suspension, lowered limits and
/// history (trigger counts start again, as a restarted Momentum's do).
#[derive(Serialize, Deserialize)]
struct Kept {
    binding: String,
    domain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    suspension: Option<Suspension>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connections: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deliveries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    throttle: Option<(u32, u64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    greylisted_until: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_interval: Option<u64>,
    #[serde(default)]
    last_lowered: u64,
    #[serde(default)]
    last_raised: u64,
    #[serde(default)]
    history: VecDeque<Event>,
}

/// Why a kept book does not load.
#[derive(Debug, thiserror::Error)]
#[error("the adaptive state file does not parse: {0}")]
pub struct BookError(String);

impl Book {
    /// The book as JSON lines, one binding x domain each (what the daemon keeps beside the
    /// spool). Pairs with nothing in force at `now` are left out.
    pub fn to_lines(&self, now: u64) -> String {
        let mut out = String::new();
        for (k, s) in &self.states {
            if s.suspension_at(now).is_none() && !s.is_adjusted() {
                continue;
            }
            let kept = Kept {
                binding: k.binding.clone(),
                domain: k.domain.clone(),
                suspension: s.suspension_at(now).cloned(),
                connections: s.connections,
                deliveries: s.deliveries,
                throttle: s.throttle,
                greylisted_until: s.greylisted_until,
                retry_interval: s.retry_interval,
                last_lowered: s.last_lowered,
                last_raised: s.last_raised,
                history: s.history.clone(),
            };
            if let Ok(line) = serde_json::to_string(&kept) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }

    /// A book from [`Book::to_lines`]; a line that does not parse is an error naming it.
    pub fn from_lines(text: &str) -> Result<Book, BookError> {
        let mut book = Book::default();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let k: Kept = serde_json::from_str(line)
                .map_err(|e| BookError(format!("line {}: {e}", n + 1)))?;
            book.states.insert(
                Key::new(&k.binding, &k.domain),
                State {
                    suspension: k.suspension,
                    connections: k.connections,
                    deliveries: k.deliveries,
                    throttle: k.throttle,
                    greylisted_until: k.greylisted_until,
                    retry_interval: k.retry_interval,
                    last_lowered: k.last_lowered,
                    last_raised: k.last_raised,
                    hits: BTreeMap::new(),
                    history: k.history,
                },
            );
        }
        Ok(book)
    }
}

/// The ranges that clip what the rules set for `domain`: the rule set's `configuration`,
/// overridden option by option by the `adaptive_<option> = ( min max )` of the binding x
/// domain's configuration (Momentum: "you may use these settings as an override").
fn ranges_of<'a>(
    rules: &'a RuleSet,
    domain: &str,
    configured: &'a BTreeMap<String, Range>,
) -> std::borrow::Cow<'a, BTreeMap<String, Range>> {
    use std::borrow::Cow;
    let from_rules = rules.for_domain(domain).map(|(_, r)| &r.configuration);
    match from_rules {
        None => Cow::Borrowed(configured),
        Some(r) if configured.is_empty() => Cow::Borrowed(r),
        Some(r) => {
            let mut m = r.clone();
            m.extend(configured.iter().map(|(k, v)| (k.clone(), *v)));
            Cow::Owned(m)
        }
    }
}

/// A limit lowered by `n` (from `start` where it is unlimited), never below 1, clipped to
/// its range.
fn reduce(cur: Option<u32>, start: u32, n: u32, r: Option<&Range>) -> u32 {
    let lowered = cur.unwrap_or(start).saturating_sub(n).max(1);
    u32::try_from(clip(u64::from(lowered), r)).unwrap_or(u32::MAX)
}

/// A message throttle clipped to an `outbound_throttle_messages` range, which counts
/// messages per hour ("In the context of the adaptive framework, outbound_throttle_messages
/// is considered to be expressed as an integer value measured in messages-per-hour", the
/// system rules' header); a throttle the range changes becomes so many per hour.
fn clip_throttle((m, per): (u32, u64), r: Option<&Range>) -> (u32, u64) {
    let hourly = u64::from(m).saturating_mul(3600) / per.max(1);
    let clipped = clip(hourly, r);
    if clipped == hourly {
        (m, per)
    } else {
        (u32::try_from(clipped.max(1)).unwrap_or(u32::MAX), 3600)
    }
}

/// `limits` bounded by the ranges in force for `domain` (the rules' `configuration`, then
/// the configuration's `adaptive_*` options): Momentum's page says these "set upper and lower
/// bounds on the effective values of the corresponding core configuration options", and the
/// system rules' header that a number "forces the parameter to be the value". An unlimited
/// value takes the range's top.
pub fn bounded(
    limits: Limits,
    rules: &RuleSet,
    domain: &str,
    configured: &BTreeMap<String, Range>,
) -> Limits {
    let ranges = ranges_of(rules, domain, configured);
    if ranges.is_empty() {
        return limits;
    }
    let count = |v: Option<u32>, name: &str| match (v, ranges.get(name)) {
        (v, None) => v,
        (Some(v), r) => u32::try_from(clip(u64::from(v), r)).ok(),
        (None, Some(r)) => u32::try_from(r.max).ok(),
    };
    let throttle = match (limits.throttle, ranges.get("outbound_throttle_messages")) {
        (t, None) => t,
        (Some(t), r) => Some(clip_throttle(t, r)),
        (None, Some(r)) => Some((u32::try_from(r.max.max(1)).unwrap_or(u32::MAX), 3600)),
    };
    Limits {
        connections: count(limits.connections, "max_outbound_connections"),
        deliveries: count(limits.deliveries, "max_deliveries_per_connection"),
        throttle,
        retry_interval: clip(limits.retry_interval, ranges.get("retry_interval")),
        adjustment_interval: limits.adjustment_interval,
    }
}

fn clip(v: u64, r: Option<&Range>) -> u64 {
    match r {
        Some(r) => v.clamp(r.min, r.max),
        None => v,
    }
}

impl Book {
    pub fn get(&self, key: &Key) -> Option<&State> {
        self.states.get(key)
    }

    pub fn states(&self) -> impl Iterator<Item = (&Key, &State)> {
        self.states.iter()
    }

    /// The suspension of `key` in force at `now`.
    pub fn suspended(&self, key: &Key, now: u64) -> Option<&Suspension> {
        self.states.get(key).and_then(|s| s.suspended(now))
    }

    /// A reply to mail of `key`: the first response rule of the domain that it matches
    /// counts an occurrence; if that fires the trigger, its actions apply. Returns what
    /// changed (nothing when no rule fired, or a suspension already runs).
    pub fn on_reply(
        &mut self,
        rules: &RuleSet,
        key: &Key,
        reply: &str,
        now: u64,
        base: &Limits,
        configured: &BTreeMap<String, Range>,
    ) -> Vec<Change> {
        let Some((name, index, response)) = rules.matching(&key.domain, reply) else {
            return Vec::new();
        };
        let ranges = ranges_of(rules, &key.domain, configured);
        let ranges = ranges.as_ref();
        let rule = format!("{name}#{}", index + 1);
        let state = self.states.entry(key.clone()).or_default();
        let seen = state.hits.entry((name.to_string(), index)).or_default();
        if !response.trigger.hit(seen, now) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for action in &response.actions {
            let change = apply(
                state,
                action,
                now,
                base,
                ranges,
                &rule,
                reply,
                &response.message,
            );
            if let Some(c) = change {
                out.push(c);
            }
        }
        out
    }

    /// The sweep: each of `sweep` that fires on `key`'s window applies its action (Momentum:
    /// every rule whose criteria are met acts; a suspension that runs is not changed). Each
    /// change comes with why, in words: the rule, its threshold and the rate.
    #[allow(clippy::too_many_arguments)]
    pub fn sweep(
        &mut self,
        rules: &RuleSet,
        sweep: &[crate::sweep::SweepRule],
        key: &Key,
        window: &crate::sweep::Window,
        volumes: &crate::sweep::Volumes,
        now: u64,
        base: &Limits,
        configured: &BTreeMap<String, Range>,
    ) -> Vec<(Change, String)> {
        let ranges = ranges_of(rules, &key.domain, configured);
        let ranges = ranges.as_ref();
        let mut out = Vec::new();
        for rule in sweep {
            let Some(f) = rule.evaluate(window, volumes) else {
                continue;
            };
            let state = self.states.entry(key.clone()).or_default();
            let (count, total) = rule.count(window);
            let why = format!(
                "{} threshold {} % met: {:.2} % ({count}/{total})",
                if f.high { "high" } else { "low" },
                if f.high { rule.high } else { rule.low },
                f.rate
            );
            if let Some(c) = apply(state, f.action, now, base, ranges, &rule.name, &why, "") {
                out.push((c, format!("sweep rule {}: {why}", rule.name)));
            }
        }
        out
    }

    /// Suspends `key` by hand or by a sweep rule (`rule` names which).
    pub fn suspend(
        &mut self,
        key: &Key,
        seconds: u64,
        blackhole: bool,
        rule: &str,
        now: u64,
    ) -> Option<Change> {
        let state = self.states.entry(key.clone()).or_default();
        let action = if blackhole {
            Action::Blackhole(seconds)
        } else {
            Action::Suspend(seconds)
        };
        apply(
            state,
            &action,
            now,
            &Limits::default(),
            &BTreeMap::new(),
            rule,
            "",
            "",
        )
    }

    /// Lifts `key`'s suspension and lowered limits (console `adaptive reset`); whether
    /// there was anything to lift.
    pub fn lift(&mut self, key: &Key, now: u64) -> bool {
        let Some(state) = self.states.get_mut(key) else {
            return false;
        };
        let had = state.suspended(now).is_some() || state.is_adjusted();
        state.suspension = None;
        state.connections = None;
        state.deliveries = None;
        state.throttle = None;
        state.greylisted_until = None;
        state.retry_interval = None;
        if had {
            state.note(
                now,
                "console",
                "",
                "reset: suspension and adjustments cleared".into(),
            );
        }
        had
    }

    /// The binding x domain pairs that `binding` and `domain` select (`None`: any), in
    /// order: the console's `--binding` and `--domain`.
    pub fn select(&self, binding: Option<&str>, domain: Option<&str>) -> Vec<Key> {
        self.states
            .keys()
            .filter(|k| binding.is_none_or(|b| k.binding == b))
            .filter(|k| domain.is_none_or(|d| k.domain.eq_ignore_ascii_case(d)))
            .cloned()
            .collect()
    }

    /// Console `adaptive override`: turns the running suspension of each of `keys` off
    /// (`enable`: back on). Returns how many changed.
    pub fn set_enabled(&mut self, keys: &[Key], enable: bool, now: u64) -> usize {
        let what = if enable {
            "suspension enabled again"
        } else {
            "override: suspension disabled"
        };
        self.each_running(keys, now, what, |sus| {
            let changed = sus.enabled != enable;
            sus.enabled = enable;
            changed
        })
    }

    /// Console `adaptive override ... ttl N`: the running suspension of each of `keys` ends
    /// `seconds` from now. Returns how many changed.
    pub fn set_ttl(&mut self, keys: &[Key], seconds: u64, now: u64) -> usize {
        let what = format!("override: suspension ends in {}", duration::format(seconds));
        self.each_running(keys, now, &what, |sus| {
            sus.until = now.saturating_add(seconds);
            true
        })
    }

    /// Runs `f` on the suspension of each of `keys` that has not ended by `now`, noting
    /// `what` where `f` says it changed it; how many changed.
    fn each_running(
        &mut self,
        keys: &[Key],
        now: u64,
        what: &str,
        mut f: impl FnMut(&mut Suspension) -> bool,
    ) -> usize {
        let mut n = 0;
        for k in keys {
            let Some(s) = self.states.get_mut(k) else {
                continue;
            };
            let Some(sus) = s.suspension.as_mut().filter(|x| x.until > now) else {
                continue;
            };
            if f(sus) {
                s.note(now, "console", "", what.to_string());
                n += 1;
            }
        }
        n
    }

    /// Drops suspensions that ended by `now`; the keys whose suspension ended.
    pub fn expire(&mut self, now: u64) -> Vec<Key> {
        let mut out = Vec::new();
        for (k, s) in &mut self.states {
            if let Some(sus) = &s.suspension
                && sus.until <= now
            {
                let rule = sus.rule.clone();
                s.suspension = None;
                s.note(now, &rule, "", "suspension ended".into());
                out.push(k.clone());
            }
            if s.greylisted_until.is_some_and(|g| g <= now) {
                s.greylisted_until = None;
            }
        }
        out
    }

    /// The climb back: every binding x domain whose limits were lowered and that has seen no
    /// firing for `interval` seconds (and no step for as long) takes one step toward its
    /// configuration: one more connection, one more delivery, twice the throttle, the retry
    /// interval back. A limit that reaches its configured value is no longer adjusted.
    pub fn climb(&mut self, now: u64, interval: u64, base_of: impl Fn(&Key) -> Limits) -> Vec<Key> {
        let keys: Vec<Key> = self.states.keys().cloned().collect();
        keys.into_iter()
            .filter(|k| self.climb_one(k, now, interval, &base_of(k)))
            .collect()
    }

    /// [`Book::climb`] for one binding x domain, whose own interval and configured limits
    /// are given; whether it took a step.
    pub fn climb_one(&mut self, key: &Key, now: u64, interval: u64, base: &Limits) -> bool {
        let Some(s) = self.states.get_mut(key) else {
            return false;
        };
        if !s.is_adjusted()
            || now.saturating_sub(s.last_lowered) < interval
            || now.saturating_sub(s.last_raised) < interval
        {
            return false;
        }
        s.connections = s.connections.and_then(|c| {
            let n = c.saturating_add(1);
            (base.connections.is_none_or(|b| n < b)).then_some(n)
        });
        s.deliveries = s.deliveries.and_then(|c| {
            let n = c.saturating_add(1);
            (base.deliveries.is_none_or(|b| n < b)).then_some(n)
        });
        s.throttle = s.throttle.and_then(|(m, per)| {
            let n = m.saturating_mul(2);
            match base.throttle {
                None if n >= START_THROTTLE.0.saturating_mul(64) => None,
                Some((bm, bp)) if u64::from(n) * bp >= u64::from(bm) * per => None,
                _ => Some((n, per)),
            }
        });
        s.retry_interval = None;
        s.last_raised = now;
        s.note(
            now,
            "climb",
            "",
            "one step back toward the configured limits".into(),
        );
        true
    }

    /// What adaptive delivery holds against `key` at `now`, and why (`bindery adaptive
    /// explain`): the suspension that has not ended, each limit lowered next to its
    /// configured value (`base`), when the climb back takes its next step (every `interval`
    /// seconds of quiet), and the history of firings, oldest first.
    pub fn explain(&self, key: &Key, now: u64, base: &Limits, interval: u64) -> Explanation {
        let Some(s) = self.states.get(key) else {
            return Explanation::default();
        };
        let unlimited = || "unlimited".to_string();
        let mut lowered = Vec::new();
        if let Some(c) = s.connections {
            lowered.push(Lowered {
                option: "max_outbound_connections",
                now: c.to_string(),
                configured: base.connections.map_or_else(unlimited, |b| b.to_string()),
            });
        }
        if let Some(d) = s.deliveries {
            lowered.push(Lowered {
                option: "max_deliveries_per_connection",
                now: d.to_string(),
                configured: base.deliveries.map_or_else(unlimited, |b| b.to_string()),
            });
        }
        if let Some((m, per)) = s.throttle {
            lowered.push(Lowered {
                option: "outbound_throttle_messages",
                now: format!("{m}/{per}"),
                configured: base
                    .throttle
                    .map_or_else(unlimited, |(bm, bp)| format!("{bm}/{bp}")),
            });
        }
        if let Some(r) = s.retry_interval {
            lowered.push(Lowered {
                option: "retry_interval",
                now: r.to_string(),
                configured: base.retry_interval.to_string(),
            });
        }
        let next_step = s.is_adjusted().then(|| {
            s.last_lowered
                .max(s.last_raised)
                .saturating_add(interval)
                .max(now)
        });
        Explanation {
            suspension: s.suspension_at(now).cloned(),
            greylisted_until: s.greylisted_until.filter(|&g| g > now),
            lowered,
            next_step,
            history: s.history.iter().cloned().collect(),
        }
    }

    /// The limits in force for `key`: the configuration's, lowered where a rule lowered them.
    pub fn effective(&self, key: &Key, base: &Limits) -> Limits {
        let Some(s) = self.states.get(key) else {
            return *base;
        };
        Limits {
            connections: s.connections.or(base.connections),
            deliveries: s.deliveries.or(base.deliveries),
            throttle: s.throttle.or(base.throttle),
            retry_interval: s.retry_interval.unwrap_or(base.retry_interval),
            adjustment_interval: base.adjustment_interval,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn apply(
    state: &mut State,
    action: &Action,
    now: u64,
    base: &Limits,
    ranges: &BTreeMap<String, Range>,
    rule: &str,
    reply: &str,
    message: &str,
) -> Option<Change> {
    let range = |name: &str| ranges.get(name);
    let adjusts = matches!(
        action,
        Action::ReduceConnections(_)
            | Action::ReduceDeliveries(_)
            | Action::ThrottleDown
            | Action::Greylisted(_)
    );
    if adjusts
        && state.is_adjusted()
        && now.saturating_sub(state.last_lowered) < base.adjustment_interval
    {
        // `adaptive_adjustment_interval`: not again so soon.
        return None;
    }
    let change = match action {
        Action::Suspend(secs) | Action::Blackhole(secs) => {
            // One overridden by the console counts too: the operator let it send until the
            // suspension's end.
            if state.suspension_at(now).is_some() {
                // Momentum: a suspended binding::domain cannot be lengthened or shortened.
                return None;
            }
            let s = Suspension {
                since: now,
                until: now.saturating_add(*secs),
                blackhole: matches!(action, Action::Blackhole(_)),
                rule: rule.to_string(),
                reply: reply.to_string(),
                message: message.to_string(),
                enabled: true,
            };
            state.suspension = Some(s.clone());
            Change::Suspended(s)
        }
        Action::ReduceConnections(n) => {
            let cur = state.connections.or(base.connections);
            let v = reduce(
                cur,
                START_CONNECTIONS,
                *n,
                range("max_outbound_connections"),
            );
            state.connections = Some(v);
            Change::Connections(v)
        }
        Action::ReduceDeliveries(n) => {
            let cur = state.deliveries.or(base.deliveries);
            let v = reduce(
                cur,
                START_DELIVERIES,
                *n,
                range("max_deliveries_per_connection"),
            );
            state.deliveries = Some(v);
            Change::Deliveries(v)
        }
        Action::ThrottleDown => {
            let halved = match state.throttle.or(base.throttle) {
                Some((m, per)) => ((m / 2).max(1), per),
                None => START_THROTTLE,
            };
            let (m, per) = clip_throttle(halved, range("outbound_throttle_messages"));
            state.throttle = Some((m, per));
            Change::Throttle(m, per)
        }
        Action::Greylisted(secs) => {
            let retry = clip(*secs, range("retry_interval"));
            state.retry_interval = Some(retry);
            let until = now.saturating_add(retry);
            state.greylisted_until = Some(until);
            Change::Greylisted {
                until,
                retry_interval: retry,
            }
        }
        Action::Bounce => Change::Bounce,
    };
    if !matches!(change, Change::Bounce) {
        state.last_lowered = now;
    }
    let what = match &change {
        Change::Suspended(s) if s.blackhole => {
            format!("blackholed for {}", duration::format(s.until - s.since))
        }
        Change::Suspended(s) => format!("suspended for {}", duration::format(s.until - s.since)),
        Change::Connections(v) => format!("max_outbound_connections lowered to {v}"),
        Change::Deliveries(v) => format!("max_deliveries_per_connection lowered to {v}"),
        Change::Throttle(m, p) => format!("outbound_throttle_messages lowered to {m}/{p}"),
        Change::Greylisted { retry_interval, .. } => {
            format!(
                "greylisted: retry_interval {}",
                duration::format(*retry_interval)
            )
        }
        Change::Bounce => "waiting mail failed".into(),
    };
    state.note(now, rule, reply, what);
    Some(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{DomainRules, Entry, Response};
    use crate::trigger::Trigger;

    fn set(responses: Vec<(&str, &str, Vec<&str>)>, conf: &[(&str, u64, u64)]) -> RuleSet {
        let mut m = BTreeMap::new();
        m.insert(
            "yahoo.test".to_string(),
            Entry::Rules(DomainRules {
                responses: responses
                    .into_iter()
                    .map(|(code, trigger, action)| Response {
                        code: code.into(),
                        trigger: Trigger::parse(trigger).unwrap(),
                        actions: vec![Action::parse(&action).unwrap()],
                        message: "call yahoo".into(),
                        origin: "test".into(),
                    })
                    .collect(),
                configuration: conf
                    .iter()
                    .map(|(k, a, b)| (k.to_string(), Range { min: *a, max: *b }))
                    .collect(),
            }),
        );
        RuleSet::new(m).unwrap()
    }

    static NONE: BTreeMap<String, Range> = BTreeMap::new();

    const TSS04: &str = "421 4.7.0 [TSS04] Messages from 127.0.0.2 temporarily deferred";

    #[test]
    fn a_storm_suspends_that_binding_x_domain_once_for_the_rule_s_duration() {
        let rules = set(
            vec![(r"\[TSS04\]", "3/60", vec!["suspend", "2 hours"])],
            &[],
        );
        let mut book = Book::default();
        let k = Key::new("b1", "yahoo.test");
        let base = Limits::default();
        for t in 0..3 {
            assert!(
                book.on_reply(&rules, &k, TSS04, 100 + t, &base, &NONE)
                    .is_empty()
            );
        }
        let c = book.on_reply(&rules, &k, TSS04, 110, &base, &NONE);
        assert!(
            matches!(&c[..], [Change::Suspended(s)] if s.until == 110 + 7200 && s.rule == "yahoo.test#1")
        );
        // Other pairs are untouched.
        assert!(book.suspended(&Key::new("b2", "yahoo.test"), 111).is_none());
        assert!(book.suspended(&Key::new("b1", "other.test"), 111).is_none());
        // A second storm while suspended changes nothing.
        for t in 0..10 {
            book.on_reply(&rules, &k, TSS04, 200 + t, &base, &NONE);
        }
        assert_eq!(book.suspended(&k, 300).map(|s| s.until), Some(110 + 7200));
        // It ends, is expired, and says so.
        assert!(book.suspended(&k, 110 + 7200).is_none());
        assert_eq!(book.expire(110 + 7200), vec![k.clone()]);
        let h = &book.get(&k).unwrap().history;
        assert_eq!(h.front().unwrap().what, "suspended for 2 hours");
        assert_eq!(h.back().unwrap().what, "suspension ended");
    }

    #[test]
    fn lowered_limits_are_clipped_and_climb_back() {
        let rules = set(
            vec![
                (
                    "^421 .*too many connections",
                    "1",
                    vec!["reduce_connections", "5"],
                ),
                ("^451 .*slow down", "1", vec!["throttle", "down"]),
                ("^450 .*greylisted", "1", vec!["greylisted", "15 minutes"]),
            ],
            &[("max_outbound_connections", 4, 30)],
        );
        let mut book = Book::default();
        let k = Key::new("b1", "yahoo.test");
        let base = Limits {
            connections: Some(12),
            deliveries: None,
            throttle: Some((100, 60)),
            retry_interval: 1200,
            adjustment_interval: 0,
        };
        assert_eq!(
            book.on_reply(
                &rules,
                &k,
                "421 4.7.0 too many connections",
                0,
                &base,
                &NONE
            ),
            vec![Change::Connections(7)]
        );
        assert_eq!(
            book.on_reply(
                &rules,
                &k,
                "421 4.7.0 too many connections",
                1,
                &base,
                &NONE
            ),
            vec![Change::Connections(4)],
            "clipped to the range's 4"
        );
        assert_eq!(
            book.on_reply(&rules, &k, "451 4.7.1 slow down", 2, &base, &NONE),
            vec![Change::Throttle(50, 60)]
        );
        assert_eq!(
            book.on_reply(&rules, &k, "450 4.2.0 greylisted", 3, &base, &NONE),
            vec![Change::Greylisted {
                until: 903,
                retry_interval: 900
            }]
        );
        let e = book.effective(&k, &base);
        assert_eq!(
            (e.connections, e.throttle, e.retry_interval),
            (Some(4), Some((50, 60)), 900)
        );
        // Quiet for an interval: one step back.
        assert!(
            book.climb(100, 3600, |_| base).is_empty(),
            "not quiet long enough"
        );
        assert_eq!(book.climb(3603, 3600, |_| base), vec![k.clone()]);
        let e = book.effective(&k, &base);
        // The throttle doubled back to the configured 100/60: no longer adjusted.
        assert_eq!(
            (e.connections, e.throttle, e.retry_interval),
            (Some(5), Some((100, 60)), 1200)
        );
        // And on until the configuration is reached.
        let mut t = 3603;
        for _ in 0..10 {
            t += 3600;
            book.climb(t, 3600, |_| base);
        }
        assert_eq!(book.effective(&k, &base), base);
    }

    #[test]
    fn unlimited_limits_start_somewhere_and_the_console_lifts() {
        let rules = set(
            vec![
                ("^421 ", "1", vec!["reduce_connections", "1"]),
                ("^452 ", "1", vec!["throttle", "down"]),
                ("^554 ", "1", vec!["blackhole", "1 hour"]),
            ],
            &[],
        );
        let mut book = Book::default();
        let k = Key::new("b1", "yahoo.test");
        let base = Limits::default();
        assert_eq!(
            book.on_reply(&rules, &k, "421 busy", 0, &base, &NONE),
            vec![Change::Connections(START_CONNECTIONS - 1)]
        );
        assert_eq!(
            book.on_reply(&rules, &k, "452 later", 0, &base, &NONE),
            vec![Change::Throttle(10, 1)]
        );
        let c = book.on_reply(&rules, &k, "554 go away", 0, &base, &NONE);
        assert!(matches!(&c[..], [Change::Suspended(s)] if s.blackhole));
        assert!(book.lift(&k, 5));
        assert_eq!(book.effective(&k, &base), base);
        assert!(book.suspended(&k, 6).is_none());
        assert!(!book.lift(&k, 7), "nothing left to lift");
        assert!(!book.lift(&Key::new("x", "y"), 7));
        // No rule matches: nothing happens and nothing is kept.
        assert!(
            book.on_reply(
                &rules,
                &Key::new("b9", "other.test"),
                "421 busy",
                0,
                &base,
                &NONE
            )
            .is_empty()
        );
        assert!(book.get(&Key::new("b9", "other.test")).is_none());
    }

    #[test]
    fn a_rising_5_7_1_rate_fires_the_sweep_rule() {
        use crate::sweep::{Code, SweepRule, Volumes, Window};
        let rules = RuleSet::default();
        let sweep = vec![
            SweepRule::new(
                "blocks",
                vec![Code::Bounce(50), Code::Bounce(51)],
                Some(2.0),
                None,
                Some(5.0),
                Some(Action::Suspend(2 * 3600)),
            )
            .unwrap(),
        ];
        let mut book = Book::default();
        let k = Key::new("b1", "provider.test");
        let v = Volumes {
            attempts: 100,
            fbl: 100,
        };
        let base = Limits {
            throttle: Some((60, 60)),
            ..Limits::default()
        };
        let mut w = Window {
            attempts: 1000,
            ..Window::default()
        };
        w.bounces.insert(50, 10);
        assert!(
            book.sweep(&rules, &sweep, &k, &w, &v, 0, &base, &NONE)
                .is_empty(),
            "1 %"
        );
        w.bounces.insert(51, 20);
        let low = book.sweep(&rules, &sweep, &k, &w, &v, 10, &base, &NONE);
        assert_eq!(low[0].0, Change::Throttle(30, 60), "3 %: low");
        assert_eq!(
            low[0].1,
            "sweep rule blocks: low threshold 2 % met: 3.00 % (30/1000)"
        );
        w.bounces.insert(51, 60);
        let c = book.sweep(&rules, &sweep, &k, &w, &v, 20, &base, &NONE);
        assert!(
            matches!(&c[..], [(Change::Suspended(s), _)] if s.rule == "blocks" && s.until == 20 + 7200 && s.reply.starts_with("high threshold 5 % met: 7.00 %")),
            "{c:?}"
        );
    }

    #[test]
    fn the_adjustment_interval_brakes_lowering_again() {
        let rules = set(vec![("^421 4.7.28", "1", vec!["throttle", "down"])], &[]);
        let mut book = Book::default();
        let k = Key::new("b1", "yahoo.test");
        let base = Limits {
            throttle: Some((80, 1)),
            adjustment_interval: 60,
            ..Limits::default()
        };
        let reply = "421 4.7.28 rate limited";
        let at = |book: &mut Book, now| book.on_reply(&rules, &k, reply, now, &base, &NONE);
        assert_eq!(at(&mut book, 100), vec![Change::Throttle(40, 1)]);
        assert!(at(&mut book, 130).is_empty(), "30 s later: braked");
        assert_eq!(at(&mut book, 161), vec![Change::Throttle(20, 1)]);
    }

    #[test]
    fn ranges_bound_the_configured_values_too() {
        let rules = set(
            vec![],
            &[
                ("max_outbound_connections", 30, 300),
                ("max_deliveries_per_connection", 5, 5),
                ("outbound_throttle_messages", 45, 2011),
            ],
        );
        let base = Limits {
            connections: Some(1000),
            deliveries: None,
            throttle: None,
            retry_interval: 60,
            adjustment_interval: 0,
        };
        let b = bounded(base, &rules, "yahoo.test", &NONE);
        assert_eq!(
            (b.connections, b.deliveries, b.throttle, b.retry_interval),
            (Some(300), Some(5), Some((2011, 3600)), 60),
            "clipped, forced, and unlimited taking the top (per hour)"
        );
        // The configuration's own range wins over the rules'.
        let conf = BTreeMap::from([(
            "max_outbound_connections".to_string(),
            Range { min: 1, max: 2 },
        )]);
        assert_eq!(
            bounded(base, &rules, "yahoo.test", &conf).connections,
            Some(2)
        );
        // 10 a second is 36,000 an hour: down to 2,011 an hour; 20 a minute (1,200 an hour)
        // is inside the range and stays as written.
        let fast = Limits {
            throttle: Some((10, 1)),
            ..base
        };
        assert_eq!(
            bounded(fast, &rules, "yahoo.test", &NONE).throttle,
            Some((2011, 3600))
        );
        let mid = Limits {
            throttle: Some((20, 60)),
            ..base
        };
        assert_eq!(
            bounded(mid, &rules, "yahoo.test", &NONE).throttle,
            Some((20, 60))
        );
        // A domain without ranges keeps its configuration.
        assert_eq!(bounded(base, &rules, "other.test", &NONE), base);
    }

    #[test]
    fn explain_says_what_fired_on_which_reply_and_when_it_lifts() {
        let rules = set(
            vec![
                (r"\[TSS04\]", "1", vec!["suspend", "1 hour"]),
                ("^421 4.7.28", "1", vec!["throttle", "down"]),
            ],
            &[],
        );
        let mut book = Book::default();
        let k = Key::new("b1", "yahoo.test");
        let base = Limits {
            connections: Some(20),
            throttle: None,
            deliveries: None,
            retry_interval: 60,
            adjustment_interval: 0,
        };
        assert_eq!(book.explain(&k, 0, &base, 600), Explanation::default());
        book.on_reply(&rules, &k, "421 4.7.28 rate limited", 100, &base, &NONE);
        book.on_reply(&rules, &k, TSS04, 200, &base, &NONE);
        let e = book.explain(&k, 300, &base, 600);
        let s = e.suspension.as_ref().expect("suspended");
        assert_eq!(
            (s.until, s.rule.as_str(), s.reply.as_str()),
            (3800, "yahoo.test#1", TSS04)
        );
        assert_eq!(
            e.lowered,
            vec![Lowered {
                option: "outbound_throttle_messages",
                now: "10/1".into(),
                configured: "unlimited".into(),
            }]
        );
        // The last firing was at 200: the climb waits 600 s of quiet from then.
        assert_eq!(e.next_step, Some(800));
        let said: Vec<(u64, &str, &str)> = e
            .history
            .iter()
            .map(|h| (h.at, h.rule.as_str(), h.what.as_str()))
            .collect();
        assert_eq!(
            said,
            [
                (
                    100,
                    "yahoo.test#2",
                    "outbound_throttle_messages lowered to 10/1"
                ),
                (200, "yahoo.test#1", "suspended for 1 hour"),
            ]
        );
        assert_eq!(e.history[1].reply, TSS04);
        // After the suspension and the climb, nothing is held; the history stays.
        let later = book.explain(&k, 4000, &base, 600);
        assert!(later.suspension.is_none() && later.history.len() == 2);
    }

    #[test]
    fn suspensions_and_limits_survive_a_restart() {
        let rules = set(
            vec![
                (r"\[TSS04\]", "1", vec!["suspend", "2 hours"]),
                ("^421 ", "1", vec!["reduce_connections", "2"]),
            ],
            &[],
        );
        let mut book = Book::default();
        let (a, b) = (Key::new("b1", "yahoo.test"), Key::new("b2", "yahoo.test"));
        book.on_reply(&rules, &a, TSS04, 100, &Limits::default(), &NONE);
        book.on_reply(&rules, &b, "421 busy", 100, &Limits::default(), &NONE);
        let text = book.to_lines(200);
        let back = Book::from_lines(&text).unwrap();
        assert_eq!(back.suspended(&a, 200).map(|s| s.until), Some(7300));
        assert_eq!(
            back.effective(&b, &Limits::default()).connections,
            Some(START_CONNECTIONS - 2)
        );
        assert_eq!(back.get(&a).unwrap().history, book.get(&a).unwrap().history);
        // What ended is not kept.
        assert_eq!(
            Book::from_lines(&book.to_lines(8000))
                .unwrap()
                .suspended(&a, 100),
            None
        );
        let e = Book::from_lines("{\"binding\": 1}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn an_override_turns_a_suspension_off_and_keeps_it() {
        let rules = set(vec![(r"\[TSS04\]", "1", vec!["suspend", "1 hour"])], &[]);
        let mut book = Book::default();
        let k = Key::new("b1", "yahoo.test");
        book.on_reply(&rules, &k, TSS04, 100, &Limits::default(), &NONE);
        assert!(book.suspended(&k, 101).is_some());
        assert_eq!(book.set_enabled(std::slice::from_ref(&k), false, 101), 1);
        assert!(book.suspended(&k, 102).is_none(), "off");
        assert!(book.get(&k).unwrap().suspension_at(102).is_some(), "kept");
        // A new storm does not suspend it again while the overridden one runs.
        book.on_reply(&rules, &k, TSS04, 103, &Limits::default(), &NONE);
        assert!(book.suspended(&k, 104).is_none());
        // Kept across a restart, still off; `enable` turns it back on; `ttl` shortens it.
        let mut back = Book::from_lines(&book.to_lines(105)).unwrap();
        assert!(back.suspended(&k, 106).is_none());
        assert_eq!(back.set_enabled(std::slice::from_ref(&k), true, 106), 1);
        assert!(back.suspended(&k, 107).is_some());
        assert_eq!(back.set_ttl(std::slice::from_ref(&k), 10, 107), 1);
        assert!(back.suspended(&k, 118).is_none());
    }

    #[test]
    fn history_is_bounded() {
        let rules = set(vec![("^421 ", "1", vec!["reduce_connections", "1"])], &[]);
        let mut book = Book::default();
        let k = Key::new("b1", "yahoo.test");
        for t in 0..100 {
            book.on_reply(&rules, &k, "421 busy", t, &Limits::default(), &NONE);
        }
        assert_eq!(book.get(&k).unwrap().history.len(), HISTORY);
    }
}
