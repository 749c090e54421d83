//! Momentum's adaptive rule sets (`3-ad/ad-custom-rules.md`): per domain, `responses` (a
//! regular expression on the reply, a trigger, an action, a message) and `configuration`
//! (the `( min max )` ranges the actions are clipped to); a domain whose value is a string is
//! an alias of that domain ("Aliasing is not recursive").
//!
//! `msys.adaptive.registerRules(rules, "augment"|"replace")`: `augment` puts the new
//! responses of a domain before the ones it had (the page's example shows them first) and
//! merges its configuration, the new values winning; `replace` replaces the whole set.

use std::collections::BTreeMap;

use regex::{RegexSet, RegexSetBuilder};

use crate::action::Action;
use crate::trigger::Trigger;

/// One response rule.
#[derive(Clone, Debug)]
pub struct Response {
    /// The regular expression on the reply (`550 5.7.1 text`).
    pub code: String,
    pub trigger: Trigger,
    pub actions: Vec<Action>,
    pub message: String,
    /// Where it was written (`policy.lua` or a configuration file and line), for `explain`.
    pub origin: String,
}

/// A `( min max )` range an action's result is clipped to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub min: u64,
    pub max: u64,
}

/// The rules of one domain.
#[derive(Clone, Debug, Default)]
pub struct DomainRules {
    pub responses: Vec<Response>,
    /// Option name (lowercase) to its range.
    pub configuration: BTreeMap<String, Range>,
}

#[derive(Clone, Debug)]
pub enum Entry {
    Rules(DomainRules),
    Alias(String),
}

/// Why a rule set is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleSetError {
    #[error(
        "`{domain}` is an alias of `{target}`, which is an alias too: aliasing is not recursive"
    )]
    AliasOfAlias { domain: String, target: String },
    #[error("`{domain}` is an alias of `{target}`, which has no rules")]
    AliasOfNothing { domain: String, target: String },
    #[error("`{domain}`, response {index}: code {code:?} is not a regular expression: {error}")]
    Regex {
        domain: String,
        index: usize,
        code: String,
        error: String,
    },
    #[error("`{domain}`: {option} = ( {min} {max} ): the least is more than the most")]
    Range {
        domain: String,
        option: String,
        min: u64,
        max: u64,
    },
    #[error("`{domain}`: `{option}` is not a parameter adaptive delivery adjusts ({})", ADJUSTED.join(", "))]
    Option { domain: String, option: String },
}

/// The options the actions adjust (`ad-adaptive-rules-parameters.md`), which a
/// `configuration` may bound.
pub const ADJUSTED: &[&str] = &[
    "max_outbound_connections",
    "max_deliveries_per_connection",
    "outbound_throttle_messages",
    "retry_interval",
    "max_retry_interval",
];

/// `augment` or `replace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Augment,
    Replace,
}

/// A checked rule set, with one `RegexSet` per domain for matching.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    entries: BTreeMap<String, Entry>,
    sets: BTreeMap<String, RegexSet>,
}

impl RuleSet {
    /// Checks `entries` (aliases, ranges, expressions) and compiles them.
    pub fn new(entries: BTreeMap<String, Entry>) -> Result<RuleSet, RuleSetError> {
        let mut sets = BTreeMap::new();
        for (domain, e) in &entries {
            match e {
                Entry::Alias(target) => match entries.get(target) {
                    Some(Entry::Alias(_)) => {
                        return Err(RuleSetError::AliasOfAlias {
                            domain: domain.clone(),
                            target: target.clone(),
                        });
                    }
                    None => {
                        return Err(RuleSetError::AliasOfNothing {
                            domain: domain.clone(),
                            target: target.clone(),
                        });
                    }
                    Some(Entry::Rules(_)) => {}
                },
                Entry::Rules(r) => {
                    for (option, range) in &r.configuration {
                        if !ADJUSTED.contains(&option.as_str()) {
                            return Err(RuleSetError::Option {
                                domain: domain.clone(),
                                option: option.clone(),
                            });
                        }
                        if range.min > range.max {
                            return Err(RuleSetError::Range {
                                domain: domain.clone(),
                                option: option.clone(),
                                min: range.min,
                                max: range.max,
                            });
                        }
                    }
                    for (i, resp) in r.responses.iter().enumerate() {
                        if let Err(e) = regex::Regex::new(&resp.code) {
                            return Err(RuleSetError::Regex {
                                domain: domain.clone(),
                                index: i + 1,
                                code: resp.code.clone(),
                                error: e.to_string(),
                            });
                        }
                    }
                    let set = RegexSetBuilder::new(r.responses.iter().map(|x| x.code.as_str()))
                        .dfa_size_limit(8 << 20)
                        .build()
                        .map_err(|e| RuleSetError::Regex {
                            domain: domain.clone(),
                            index: 0,
                            code: String::new(),
                            error: e.to_string(),
                        })?;
                    sets.insert(domain.clone(), set);
                }
            }
        }
        Ok(RuleSet { entries, sets })
    }

    /// This set with `incoming` registered over it.
    pub fn register(&self, incoming: &RuleSet, mode: Mode) -> Result<RuleSet, RuleSetError> {
        if mode == Mode::Replace {
            return RuleSet::new(incoming.entries.clone());
        }
        let mut merged = self.entries.clone();
        for (domain, e) in &incoming.entries {
            match (merged.get_mut(domain), e) {
                (Some(Entry::Rules(old)), Entry::Rules(new)) => {
                    let mut responses = new.responses.clone();
                    responses.append(&mut old.responses);
                    old.responses = responses;
                    for (k, v) in &new.configuration {
                        old.configuration.insert(k.clone(), *v);
                    }
                }
                _ => {
                    merged.insert(domain.clone(), e.clone());
                }
            }
        }
        RuleSet::new(merged)
    }

    /// The rules for `domain` (through one alias) and the name they are kept under.
    pub fn for_domain(&self, domain: &str) -> Option<(&str, &DomainRules)> {
        let d = domain.to_ascii_lowercase();
        let (name, e) = self.entries.get_key_value(d.as_str())?;
        match e {
            Entry::Rules(r) => Some((name.as_str(), r)),
            Entry::Alias(t) => match self.entries.get_key_value(t.as_str()) {
                Some((n, Entry::Rules(r))) => Some((n.as_str(), r)),
                _ => None,
            },
        }
    }

    /// The first response of `domain`'s rules that `reply` matches, by index.
    pub fn matching(&self, domain: &str, reply: &str) -> Option<(&str, usize, &Response)> {
        let (name, rules) = self.for_domain(domain)?;
        let set = self.sets.get(name)?;
        let i = set.matches(reply).iter().next()?;
        Some((name, i, &rules.responses[i]))
    }

    pub fn entries(&self) -> &BTreeMap<String, Entry> {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(code: &str, action: &[&str]) -> Response {
        Response {
            code: code.into(),
            trigger: Trigger::FIRST,
            actions: vec![Action::parse(action).unwrap()],
            message: String::new(),
            origin: "test".into(),
        }
    }

    fn rules(responses: Vec<Response>, conf: &[(&str, u64, u64)]) -> Entry {
        Entry::Rules(DomainRules {
            responses,
            configuration: conf
                .iter()
                .map(|(k, a, b)| (k.to_string(), Range { min: *a, max: *b }))
                .collect(),
        })
    }

    /// The page's example: yahoo.com and google.com system rules, then a custom yahoo.com
    /// rule registered with `augment`.
    #[test]
    fn augment_puts_new_responses_first_and_keeps_the_rest() {
        let mut system = BTreeMap::new();
        system.insert(
            "yahoo.com".to_string(),
            rules(
                vec![resp(
                    "^553 Mail from a@b.com is not allowed",
                    &["suspend", "4 hours"],
                )],
                &[("max_outbound_connections", 30, 300)],
            ),
        );
        system.insert(
            "google.com".to_string(),
            rules(
                vec![resp("^553 You are not trusted.", &["blackhole", "4 hours"])],
                &[("max_outbound_connections", 20, 400)],
            ),
        );
        system.insert("live.com".to_string(), Entry::Alias("google.com".into()));
        let system = RuleSet::new(system).unwrap();
        let mut custom = BTreeMap::new();
        custom.insert(
            "yahoo.com".to_string(),
            rules(
                vec![resp(
                    "^540 Too many connections.",
                    &["reduce_connections", "1"],
                )],
                &[],
            ),
        );
        let custom = RuleSet::new(custom).unwrap();
        let merged = system.register(&custom, Mode::Augment).unwrap();
        let (_, y) = merged.for_domain("Yahoo.com").unwrap();
        assert_eq!(y.responses.len(), 2);
        assert_eq!(y.responses[0].code, "^540 Too many connections.");
        assert_eq!(
            y.configuration["max_outbound_connections"],
            Range { min: 30, max: 300 }
        );
        let (n, i, r) = merged
            .matching("yahoo.com", "553 Mail from a@b.com is not allowed")
            .unwrap();
        assert_eq!((n, i), ("yahoo.com", 1));
        assert_eq!(r.actions, vec![Action::Suspend(14_400)]);
        // The alias reaches google.com's rules.
        let (n, _, r) = merged
            .matching("live.com", "553 You are not trusted.")
            .unwrap();
        assert_eq!(n, "google.com");
        assert_eq!(r.actions, vec![Action::Blackhole(14_400)]);
        assert!(
            merged
                .matching("other.com", "553 You are not trusted.")
                .is_none()
        );
        let replaced = system.register(&custom, Mode::Replace).unwrap();
        assert!(replaced.for_domain("google.com").is_none());
    }

    #[test]
    fn bad_sets_are_refused() {
        let mut m = BTreeMap::new();
        m.insert("a.com".to_string(), Entry::Alias("b.com".into()));
        m.insert("b.com".to_string(), Entry::Alias("c.com".into()));
        m.insert("c.com".to_string(), rules(vec![], &[]));
        assert!(matches!(
            RuleSet::new(m),
            Err(RuleSetError::AliasOfAlias { .. })
        ));
        let mut m = BTreeMap::new();
        m.insert("a.com".to_string(), Entry::Alias("nowhere.com".into()));
        assert!(matches!(
            RuleSet::new(m),
            Err(RuleSetError::AliasOfNothing { .. })
        ));
        let mut m = BTreeMap::new();
        m.insert(
            "a.com".to_string(),
            rules(vec![resp("(unclosed", &["bounce"])], &[]),
        );
        assert!(matches!(
            RuleSet::new(m),
            Err(RuleSetError::Regex { index: 1, .. })
        ));
        let mut m = BTreeMap::new();
        m.insert(
            "a.com".to_string(),
            rules(vec![], &[("max_outbound_connections", 9, 3)]),
        );
        assert!(matches!(RuleSet::new(m), Err(RuleSetError::Range { .. })));
        let mut m = BTreeMap::new();
        m.insert(
            "a.com".to_string(),
            rules(vec![], &[("bind_address", 1, 3)]),
        );
        assert!(matches!(RuleSet::new(m), Err(RuleSetError::Option { .. })));
    }
}
