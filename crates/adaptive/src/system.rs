//! Momentum's system rules: the response rules and per-domain limits its `adaptive` module
//! applies before any script registers its own (`/opt/msys/ecelerity/libexec/scriptlets/msys/
//! adaptive_rules.lua`, shown in SparkPost/support-docs `3-ad/ad-appendix-adaptive-rules.md`).
//! `rules/system.json` holds their facts (reply patterns of 39 providers, 273 aliases, their
//! triggers, actions and messages, the `configuration` ranges), made from that page by
//! `rules/extract.py`; what it leaves out, and why, is in the file's `left_out` (the
//! binding-age throttle functions, one `warmup` response, one `transcode`).
//!
//! A policy's `msys.adaptive.registerRules(rules, "augment")` adds to these, `"replace"`
//! replaces them, as in Momentum.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use serde::Deserialize;

use crate::action::Action;
use crate::rules::{DomainRules, Entry, Range, Response, RuleSet};
use crate::trigger::Trigger;

const SYSTEM: &str = include_str!("../rules/system.json");

#[derive(Deserialize)]
struct File {
    source: String,
    left_out: Vec<String>,
    rules: BTreeMap<String, Raw>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Alias(String),
    Rules {
        responses: Vec<RawResponse>,
        configuration: BTreeMap<String, Limit>,
    },
}

#[derive(Deserialize)]
struct RawResponse {
    code: String,
    #[serde(default = "first")]
    trigger: String,
    action: Vec<String>,
    #[serde(default)]
    message: String,
}

fn first() -> String {
    "1".into()
}

/// `5` (forced) or `[30, 300]` (clamped).
#[derive(Deserialize)]
#[serde(untagged)]
enum Limit {
    Fixed(u64),
    Range([u64; 2]),
}

/// The system rules, or why they do not load (a test keeps them loading).
pub fn load() -> Result<(RuleSet, Vec<String>), String> {
    let file: File = serde_json::from_str(SYSTEM).map_err(|e| e.to_string())?;
    let origin = format!("system rules ({})", file.source);
    let mut entries = BTreeMap::new();
    for (domain, raw) in file.rules {
        let entry = match raw {
            Raw::Alias(target) => Entry::Alias(target),
            Raw::Rules {
                responses,
                configuration,
            } => {
                let mut rules = DomainRules::default();
                for r in responses {
                    rules.responses.push(Response {
                        trigger: Trigger::parse(&r.trigger)
                            .map_err(|e| format!("{domain}: {}: {e}", r.code))?,
                        actions: Action::parse_all(&r.action)
                            .map_err(|e| format!("{domain}: {}: {e}", r.code))?,
                        code: r.code,
                        message: r.message,
                        origin: origin.clone(),
                    });
                }
                for (option, limit) in configuration {
                    let (min, max) = match limit {
                        Limit::Fixed(n) => (n, n),
                        Limit::Range([a, b]) => (a, b),
                    };
                    rules.configuration.insert(option, Range { min, max });
                }
                Entry::Rules(rules)
            }
        };
        entries.insert(domain, entry);
    }
    let set = RuleSet::new(entries).map_err(|e| e.to_string())?;
    Ok((set, file.left_out))
}

static RULES: LazyLock<Arc<RuleSet>> = LazyLock::new(|| match load() {
    Ok((set, _)) => Arc::new(set),
    // Unreachable while `system_rules_load` passes: the file is compiled in.
    Err(_) => Arc::new(RuleSet::default()),
});

/// The system rules, loaded once.
pub fn rules() -> Arc<RuleSet> {
    Arc::clone(&RULES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_rules_load() {
        let (set, left_out) = load().expect("system.json loads");
        assert_eq!(left_out.len(), 8, "{left_out:#?}");
        // Yahoo's [TS03] suspends for 4 hours at the first occurrence, through an alias.
        let (name, _, r) = set
            .matching(
                "ymail.com",
                "421 4.7.1 [TS03] All messages from 192.0.2.1 will be permanently deferred",
            )
            .expect("matches");
        assert_eq!(name, "yahoo.com");
        assert_eq!(r.actions, vec![Action::Suspend(4 * 3600)]);
        assert_eq!(r.message, "Remediation with Yahoo required");
        // Yahoo's configuration: 5 deliveries per connection, 30 to 300 connections.
        let (_, y) = set.for_domain("yahoo.com").expect("yahoo");
        assert_eq!(
            y.configuration["max_deliveries_per_connection"],
            Range { min: 5, max: 5 }
        );
        assert_eq!(
            y.configuration["max_outbound_connections"],
            Range { min: 30, max: 300 }
        );
        // Upper-case names in the page are lower-cased.
        assert!(set.for_domain("wp.pl").is_some());
        // AOL's transcoded rule keeps its suspension.
        let (_, _, aol) = set
            .matching(
                "aol.com",
                "554 RLY:B1 http://postmaster.info.aol.com/errors/554rlyb1.html",
            )
            .expect("aol");
        assert_eq!(aol.actions, vec![Action::Suspend(2 * 3600)]);
        let responses: usize = set
            .entries()
            .values()
            .map(|e| match e {
                Entry::Rules(r) => r.responses.len(),
                Entry::Alias(_) => 0,
            })
            .sum();
        assert_eq!(responses, 167);
    }
}
