//! Momentum's sweep rules (`modules/4-adaptive.md` "adaptive_sweep_rule",
//! `3-ad/ad-rules-sweep-rules.md`): the rate of some bounce classes (`bc:10`) or feedback
//! types (`fbl:abuse`) among a binding x domain's deliveries, over the sweep window, against
//! a low and a high threshold in percent, each with an action.
//!
//! - A bounce rule fires only past `adaptive_attempt_threshold` attempts (default 2,000);
//!   its rate is over attempts. An FBL rule fires only past `adaptive_fbl_volume_threshold`
//!   deliveries (default 20,000); its rate is over deliveries.
//! - A rule whose codes mix bounce classes and feedback types is refused (Momentum ignores
//!   it; bindery says so rather than drop it silently).
//! - A suspension a sweep rule sets must be a power of two hours, as the page warns.
//! - The two defaults apply where no rule names a bounce class (or a feedback type).

use std::collections::{BTreeMap, VecDeque};

use crate::action::Action;
use crate::state::Key;

/// One of a sweep rule's codes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Code {
    /// `bc:N`: a bounce class.
    Bounce(u16),
    /// `fbl:TYPE`: a feedback type (lowercase).
    Fbl(String),
}

impl Code {
    pub fn parse(s: &str) -> Result<Code, SweepError> {
        let t = s.trim();
        if let Some(n) = t.strip_prefix("bc:") {
            return n
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|n| *n > 0)
                .map(Code::Bounce)
                .ok_or_else(|| SweepError::Code(t.to_string()));
        }
        if let Some(k) = t.strip_prefix("fbl:")
            && !k.trim().is_empty()
        {
            return Ok(Code::Fbl(k.trim().to_ascii_lowercase()));
        }
        Err(SweepError::Code(t.to_string()))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SweepError {
    #[error(
        "`{0}` is not a sweep rule code: write `bc:` and a bounce class (`bc:10`) or `fbl:` and a feedback type (`fbl:abuse`)"
    )]
    Code(String),
    #[error("sweep rule `{0}` has no `codes`")]
    NoCodes(String),
    #[error(
        "sweep rule `{0}` mixes bounce classes and feedback types; Momentum ignores such a rule: make two"
    )]
    Mixed(String),
    #[error("sweep rule `{rule}`: {what} {value} is not a percentage from 0 to 100")]
    Threshold {
        rule: String,
        what: &'static str,
        value: String,
    },
    #[error("sweep rule `{0}`: the low threshold is above the high one")]
    Order(String),
    #[error(
        "sweep rule `{rule}`: a suspension of {secs} seconds; a sweep rule's suspension must be a power of two hours (1, 2, 4, 8 hours ...)"
    )]
    Hours { rule: String, secs: u64 },
}

/// One sweep rule.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepRule {
    pub name: String,
    pub codes: Vec<Code>,
    /// Percent.
    pub low: f64,
    pub low_action: Action,
    pub high: f64,
    pub high_action: Action,
}

fn hours_power_of_two(rule: &str, a: &Action) -> Result<(), SweepError> {
    if let Action::Suspend(s) | Action::Blackhole(s) = a {
        let ok = s % 3600 == 0 && (s / 3600).is_power_of_two();
        if !ok {
            return Err(SweepError::Hours {
                rule: rule.to_string(),
                secs: *s,
            });
        }
    }
    Ok(())
}

impl SweepRule {
    /// A checked rule. Omitted parts take Momentum's defaults: 5 % and `throttle down`,
    /// 10 % and `suspend 4 hours`.
    pub fn new(
        name: &str,
        codes: Vec<Code>,
        low: Option<f64>,
        low_action: Option<Action>,
        high: Option<f64>,
        high_action: Option<Action>,
    ) -> Result<SweepRule, SweepError> {
        if codes.is_empty() {
            return Err(SweepError::NoCodes(name.to_string()));
        }
        let bounce = codes.iter().any(|c| matches!(c, Code::Bounce(_)));
        let fbl = codes.iter().any(|c| matches!(c, Code::Fbl(_)));
        if bounce && fbl {
            return Err(SweepError::Mixed(name.to_string()));
        }
        let low = low.unwrap_or(5.0);
        let high = high.unwrap_or(10.0);
        for (what, v) in [("low_threshold", low), ("high_threshold", high)] {
            if !(0.0..=100.0).contains(&v) || v.is_nan() {
                return Err(SweepError::Threshold {
                    rule: name.to_string(),
                    what,
                    value: v.to_string(),
                });
            }
        }
        if low > high {
            return Err(SweepError::Order(name.to_string()));
        }
        let low_action = low_action.unwrap_or(Action::ThrottleDown);
        let high_action = high_action.unwrap_or(Action::Suspend(4 * 3600));
        hours_power_of_two(name, &low_action)?;
        hours_power_of_two(name, &high_action)?;
        Ok(SweepRule {
            name: name.to_string(),
            codes,
            low,
            low_action,
            high,
            high_action,
        })
    }

    pub fn is_fbl(&self) -> bool {
        matches!(self.codes.first(), Some(Code::Fbl(_)))
    }

    /// Momentum's `default_bounce_rule` and `default_fbl_rule`.
    pub fn defaults() -> [SweepRule; 2] {
        [
            SweepRule {
                name: "default_bounce_rule".into(),
                codes: vec![Code::Bounce(10), Code::Bounce(24)],
                low: 3.0,
                low_action: Action::ThrottleDown,
                high: 10.0,
                high_action: Action::Suspend(4 * 3600),
            },
            SweepRule {
                name: "default_fbl_rule".into(),
                codes: vec![Code::Fbl("abuse".into())],
                low: 0.2,
                low_action: Action::ThrottleDown,
                high: 0.5,
                high_action: Action::Suspend(4 * 3600),
            },
        ]
    }

    /// The rules for a binding x domain: `configured` (already chosen by scope), plus each
    /// default where no configured rule covers its kind.
    pub fn with_defaults(configured: Vec<SweepRule>) -> Vec<SweepRule> {
        let has_bounce = configured.iter().any(|r| !r.is_fbl());
        let has_fbl = configured.iter().any(SweepRule::is_fbl);
        let [b, f] = SweepRule::defaults();
        let mut out = configured;
        if !has_bounce {
            out.push(b);
        }
        if !has_fbl {
            out.push(f);
        }
        out
    }
}

/// What one binding x domain did in the sweep window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Window {
    pub attempts: u64,
    pub delivered: u64,
    pub bounces: BTreeMap<u16, u64>,
    pub feedback: BTreeMap<String, u64>,
}

/// The minimum volumes before a rule may fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Volumes {
    /// `adaptive_attempt_threshold` (2,000).
    pub attempts: u64,
    /// `adaptive_fbl_volume_threshold` (20,000).
    pub fbl: u64,
}

impl Default for Volumes {
    fn default() -> Volumes {
        Volumes {
            attempts: 2000,
            fbl: 20_000,
        }
    }
}

/// A rule that fired: which threshold, at what rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Fired<'a> {
    pub rule: &'a SweepRule,
    pub high: bool,
    /// Percent.
    pub rate: f64,
    pub action: &'a Action,
}

impl SweepRule {
    /// What the rule's codes counted in `w`, and over what: attempts for a bounce rule,
    /// deliveries for an FBL rule (the console's `count/total`).
    pub fn count(&self, w: &Window) -> (u64, u64) {
        let (count, base, _) = self.measure(w, &Volumes::default());
        (count, base)
    }

    fn measure(&self, w: &Window, v: &Volumes) -> (u64, u64, u64) {
        if self.is_fbl() {
            let n: u64 = self
                .codes
                .iter()
                .filter_map(|c| match c {
                    Code::Fbl(k) => w.feedback.get(k),
                    Code::Bounce(_) => None,
                })
                .sum();
            (n, w.delivered, v.fbl)
        } else {
            let n: u64 = self
                .codes
                .iter()
                .filter_map(|c| match c {
                    Code::Bounce(b) => w.bounces.get(b),
                    Code::Fbl(_) => None,
                })
                .sum();
            (n, w.attempts, v.attempts)
        }
    }

    /// Whether this rule fires on `w`.
    pub fn evaluate<'a>(&'a self, w: &Window, v: &Volumes) -> Option<Fired<'a>> {
        let (count, base, min) = self.measure(w, v);
        if base == 0 || base < min {
            return None;
        }
        let rate = 100.0 * count as f64 / base as f64;
        if rate >= self.high {
            Some(Fired {
                rule: self,
                high: true,
                rate,
                action: &self.high_action,
            })
        } else if rate >= self.low {
            Some(Fired {
                rule: self,
                high: false,
                rate,
                action: &self.low_action,
            })
        } else {
            None
        }
    }
}

/// Momentum's rejection-rate suspension (`adaptive_rejection_rate_suspension_percentage`,
/// on with `adaptive_default_suspension_enabled`): the share of a window's attempts the
/// destination refused (every bounce class, transient and permanent), in percent, when it
/// reaches `percent` past `min_attempts` (`adaptive_attempt_threshold`).
pub fn rejection_rate(w: &Window, min_attempts: u64, percent: f64) -> Option<f64> {
    if w.attempts == 0 || w.attempts < min_attempts {
        return None;
    }
    let refused: u64 = w.bounces.values().sum();
    let rate = 100.0 * refused as f64 / w.attempts as f64;
    (rate >= percent).then_some(rate)
}

/// What one binding x domain has done since the process started: the figures the
/// windows are cut from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Recipient attempts: delivered, failed and deferred.
    pub attempts: u64,
    pub delivered: u64,
    /// Failures (transient and permanent) by bounce class.
    pub bounces: BTreeMap<u16, u64>,
    /// Feedback reports by type.
    pub feedback: BTreeMap<String, u64>,
}

impl Totals {
    /// What happened since `before`. Counters that went back (a restart) start from
    /// nothing.
    fn since(&self, before: Option<&Totals>) -> Totals {
        let Some(b) = before.filter(|b| b.attempts <= self.attempts) else {
            return self.clone();
        };
        fn diff<K: Ord + Clone>(
            now: &BTreeMap<K, u64>,
            then: &BTreeMap<K, u64>,
        ) -> BTreeMap<K, u64> {
            now.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.saturating_sub(then.get(k).copied().unwrap_or(0)),
                    )
                })
                .filter(|(_, v)| *v > 0)
                .collect()
        }
        Totals {
            attempts: self.attempts - b.attempts,
            delivered: self.delivered.saturating_sub(b.delivered),
            bounces: diff(&self.bounces, &b.bounces),
            feedback: diff(&self.feedback, &b.feedback),
        }
    }
}

/// Deliveries and feedback in one FBL window slice.
type Slice = BTreeMap<Key, (u64, BTreeMap<String, u64>)>;

/// Cuts sweep windows out of running totals, as Momentum's statistics do (`modules/4-
/// adaptive.md`, "adaptive rules"): a bounce rule sees the attempts and bounces since the
/// previous sweep; an FBL rule sees deliveries and reports over `fbl_stats_monitor`, COUNT
/// slices of SIZE seconds (a day by default), since complaints come long after the mail.
#[derive(Clone, Debug)]
pub struct Windows {
    last: BTreeMap<Key, Totals>,
    /// (slice number, what it holds), oldest first.
    slices: VecDeque<(u64, Slice)>,
    size: u64,
    count: u64,
    /// The windows of the last sweep, for the console.
    seen: BTreeMap<Key, Window>,
}

impl Windows {
    /// `size` seconds per FBL slice, `count` slices.
    pub fn new(size: u64, count: u64) -> Windows {
        Windows {
            last: BTreeMap::new(),
            slices: VecDeque::new(),
            size: size.max(1),
            count: count.max(1),
            seen: BTreeMap::new(),
        }
    }

    /// Whether the FBL window is still `size` x `count` (a reload may change it; the
    /// slices kept are then dropped).
    pub fn shaped(&self, size: u64, count: u64) -> bool {
        self.size == size.max(1) && self.count == count.max(1)
    }

    /// A sweep at `now` with the running `totals`: the window of every binding x domain
    /// that did anything in it.
    pub fn advance(&mut self, now: u64, totals: BTreeMap<Key, Totals>) -> &BTreeMap<Key, Window> {
        let slice = now / self.size;
        let oldest = slice.saturating_sub(self.count - 1);
        while self.slices.front().is_some_and(|(n, _)| *n < oldest) {
            self.slices.pop_front();
        }
        if self.slices.back().is_none_or(|(n, _)| *n != slice) {
            self.slices.push_back((slice, Slice::new()));
        }
        let mut seen = BTreeMap::new();
        for (key, now_totals) in totals {
            let d = now_totals.since(self.last.get(&key));
            self.last.insert(key.clone(), now_totals);
            if d.delivered > 0 || !d.feedback.is_empty() {
                let current = &mut self.slices.back_mut().expect("pushed above").1;
                let (delivered, feedback) = current.entry(key.clone()).or_default();
                *delivered += d.delivered;
                for (k, n) in &d.feedback {
                    *feedback.entry(k.clone()).or_default() += n;
                }
            }
            seen.insert(
                key,
                Window {
                    attempts: d.attempts,
                    delivered: 0,
                    bounces: d.bounces,
                    feedback: BTreeMap::new(),
                },
            );
        }
        for (_, slice) in &self.slices {
            for (key, (delivered, feedback)) in slice {
                let w = seen.entry(key.clone()).or_default();
                w.delivered += delivered;
                for (k, n) in feedback {
                    *w.feedback.entry(k.clone()).or_default() += n;
                }
            }
        }
        seen.retain(|_, w| w.attempts > 0 || w.delivered > 0 || !w.feedback.is_empty());
        self.seen = seen;
        &self.seen
    }

    /// The window `key` had at the last sweep.
    pub fn window(&self, key: &Key) -> Option<&Window> {
        self.seen.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_rules_as_momentum_writes_them() {
        assert_eq!(Code::parse("bc:10"), Ok(Code::Bounce(10)));
        assert_eq!(Code::parse("fbl:Abuse"), Ok(Code::Fbl("abuse".into())));
        assert!(Code::parse("10").is_err());
        assert!(Code::parse("bc:x").is_err());
        assert!(Code::parse("fbl:").is_err());
        // The page's "x": codes and thresholds, the actions by default.
        let r = SweepRule::new(
            "x",
            vec![Code::Bounce(10)],
            Some(2.0),
            None,
            Some(7.0),
            None,
        )
        .unwrap();
        assert_eq!(
            (r.low_action.clone(), r.high_action.clone()),
            (Action::ThrottleDown, Action::Suspend(14_400))
        );
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(matches!(
            SweepRule::new(
                "m",
                vec![Code::Bounce(10), Code::Fbl("abuse".into())],
                None,
                None,
                None,
                None
            ),
            Err(SweepError::Mixed(_))
        ));
        assert!(matches!(
            SweepRule::new("e", vec![], None, None, None, None),
            Err(SweepError::NoCodes(_))
        ));
        assert!(matches!(
            SweepRule::new(
                "o",
                vec![Code::Bounce(10)],
                Some(8.0),
                None,
                Some(3.0),
                None
            ),
            Err(SweepError::Order(_))
        ));
        assert!(matches!(
            SweepRule::new("t", vec![Code::Bounce(10)], Some(120.0), None, None, None),
            Err(SweepError::Threshold { .. })
        ));
        assert!(matches!(
            SweepRule::new(
                "h",
                vec![Code::Bounce(10)],
                None,
                None,
                None,
                Some(Action::Suspend(3 * 3600))
            ),
            Err(SweepError::Hours { .. })
        ));
        assert!(
            SweepRule::new(
                "h8",
                vec![Code::Bounce(10)],
                None,
                None,
                None,
                Some(Action::Suspend(8 * 3600))
            )
            .is_ok()
        );
    }

    #[test]
    fn the_defaults_fire_on_a_rising_rate() {
        let rules = SweepRule::with_defaults(Vec::new());
        assert_eq!(rules.len(), 2);
        let v = Volumes::default();
        let mut w = Window {
            attempts: 5000,
            delivered: 4000,
            ..Window::default()
        };
        // 2 % invalid recipients: nothing.
        w.bounces.insert(10, 100);
        assert!(rules[0].evaluate(&w, &v).is_none());
        // 4 %: the low action.
        w.bounces.insert(24, 100);
        let f = rules[0].evaluate(&w, &v).unwrap();
        assert!(!f.high && (f.rate - 4.0).abs() < 1e-9 && *f.action == Action::ThrottleDown);
        // 12 %: the high action.
        w.bounces.insert(10, 500);
        let f = rules[0].evaluate(&w, &v).unwrap();
        assert!(f.high && *f.action == Action::Suspend(14_400));
        // Below the attempt threshold nothing fires, whatever the rate.
        let small = Window {
            attempts: 100,
            bounces: [(10, 90)].into(),
            ..Window::default()
        };
        assert!(rules[0].evaluate(&small, &v).is_none());
        // FBL: over deliveries, past its own volume.
        let w = Window {
            delivered: 30_000,
            feedback: [("abuse".to_string(), 200)].into(),
            ..Window::default()
        };
        let f = rules[1].evaluate(&w, &v).unwrap();
        assert!(f.high, "0.67 % is past 0.5 %");
        // A configured bounce rule replaces the bounce default, not the FBL one.
        let own = SweepRule::new(
            "y",
            vec![Code::Bounce(10), Code::Bounce(20)],
            None,
            None,
            None,
            None,
        )
        .unwrap();
        let rules = SweepRule::with_defaults(vec![own]);
        assert_eq!(
            rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["y", "default_fbl_rule"]
        );
    }

    #[test]
    fn the_rejection_rate_counts_every_class_past_the_attempts() {
        let mut w = Window {
            attempts: 100,
            ..Window::default()
        };
        w.bounces.insert(10, 5);
        w.bounces.insert(52, 10);
        assert_eq!(rejection_rate(&w, 50, 20.0), None, "15 %");
        w.bounces.insert(21, 10);
        assert_eq!(rejection_rate(&w, 50, 20.0), Some(25.0));
        assert_eq!(
            rejection_rate(&w, 500, 20.0),
            None,
            "under the attempt threshold"
        );
    }

    #[test]
    fn windows_cut_bounces_per_sweep_and_feedback_over_slices() {
        let k = Key::new("b1", "one.test");
        let totals = |attempts, delivered, bc10, abuse| {
            let mut t = Totals {
                attempts,
                delivered,
                ..Totals::default()
            };
            if bc10 > 0 {
                t.bounces.insert(10, bc10);
            }
            if abuse > 0 {
                t.feedback.insert("abuse".into(), abuse);
            }
            [(k.clone(), t)].into()
        };
        // FBL window: 3 slices of 100 s.
        let mut w = Windows::new(100, 3);
        let first = w
            .advance(50, totals(100, 90, 10, 1))
            .get(&k)
            .cloned()
            .unwrap();
        assert_eq!(
            (first.attempts, first.delivered, first.bounces[&10]),
            (100, 90, 10)
        );
        // The next sweep sees only what happened since; the FBL window keeps adding up.
        let second = w
            .advance(150, totals(130, 118, 11, 2))
            .get(&k)
            .cloned()
            .unwrap();
        assert_eq!((second.attempts, second.bounces[&10]), (30, 1));
        assert_eq!((second.delivered, second.feedback["abuse"]), (118, 2));
        // Nothing new: no bounce window, the FBL window still holds the last 3 slices.
        let third = w
            .advance(250, totals(130, 118, 11, 2))
            .get(&k)
            .cloned()
            .unwrap();
        assert_eq!((third.attempts, third.delivered), (0, 118));
        // Slice 0 (the first 90 deliveries) leaves the window at slice 3.
        let fourth = w
            .advance(350, totals(130, 118, 11, 2))
            .get(&k)
            .cloned()
            .unwrap();
        assert_eq!((fourth.delivered, fourth.feedback["abuse"]), (28, 1));
        assert!(w.advance(650, totals(130, 118, 11, 2)).is_empty());
        // Counters that went back (a restart) count from nothing.
        let after = w.advance(700, totals(5, 5, 0, 0)).get(&k).cloned().unwrap();
        assert_eq!((after.attempts, after.delivered), (5, 5));
        assert!(w.shaped(100, 3) && !w.shaped(14_400, 6));
    }
}
