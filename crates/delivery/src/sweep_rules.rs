//! Momentum's `adaptive_sweep_rule` stanzas (`modules/4-adaptive.md`, "adaptive_sweep_rule
//! Scope" and "How Sweep Rules are Determined"), read once per configuration generation,
//! and the rules that apply to one binding::domain.
//!
//! The page's rules, in the order [`SweepRules::for_pair`] applies them:
//!
//! - the stanzas of every scope along the binding::domain's fallback chain apply, the
//!   narrowest first; of two with one name, the narrowest wins, even when it is disabled;
//! - a scope whose effective `adaptive_sweep_rule_enabled` is 0 contributes none, and a
//!   stanza that sets it to 0 itself does not apply;
//! - where the pair's own effective value is 1, Momentum's `default_bounce_rule` and
//!   `default_fbl_rule` join unless some applicable rule names a bounce class (or a feedback
//!   type); where it is 0, no rule applies at all (the page's binding1 example).
//!
//! Momentum ignores a stanza without `codes`, or one that mixes bounce classes with feedback
//! types. Bindery refuses both at their line instead: a rule that is written and never runs
//! is what the configuration checks exist to catch.

use std::collections::BTreeSet;

use bindery_adaptive::{Action, Code, SweepRule};
use bindery_config::schema::{OptionId, ScopeKind, option_id};
use bindery_config::snapshot::{BindingId, DomainKey, Snapshot, default_value};
use bindery_config::span::Span;
use bindery_config::tree::{ConfigTree, ScopeId};
use bindery_config::value::Value;
use rustc_hash::FxHashMap;

/// A stanza that cannot be used, with where it is and what to write instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SweepConfigError {
    pub span: Option<Span>,
    pub message: String,
    pub help: Option<String>,
}

/// One stanza, checked.
#[derive(Clone, Debug)]
struct Stanza {
    rule: SweepRule,
    /// `adaptive_sweep_rule_enabled` written in the stanza itself.
    enabled: bool,
}

/// Every `adaptive_sweep_rule` stanza of a configuration, by scope.
#[derive(Clone, Debug, Default)]
pub struct SweepRules {
    stanzas: FxHashMap<ScopeId, Stanza>,
}

struct Ids {
    codes: OptionId,
    low: OptionId,
    low_action: OptionId,
    high: OptionId,
    high_action: OptionId,
    enabled: OptionId,
}

fn ids() -> Ids {
    Ids {
        codes: option_id("Codes"),
        low: option_id("Low_Threshold"),
        low_action: option_id("Low_Action"),
        high: option_id("High_Threshold"),
        high_action: option_id("High_Action"),
        enabled: option_id("Adaptive_Sweep_Rule_Enabled"),
    }
}

fn err(span: Option<Span>, message: String, help: Option<&str>) -> SweepConfigError {
    SweepConfigError {
        span,
        message,
        help: help.map(str::to_string),
    }
}

/// The bounce classes `bc:N` may name: the built-in ones and the `custom_classes` of the
/// `bounce_classifier_override` stanza.
fn known_classes(tree: &ConfigTree) -> BTreeSet<u16> {
    let mut known: BTreeSet<u16> = bindery_bounce::class::CLASSES
        .iter()
        .map(|c| c.code)
        .collect();
    let custom = option_id("Custom_Classes");
    for id in tree.scope_ids() {
        let s = tree.scope(id);
        if s.kind == ScopeKind::BounceClassifierOverride
            && let Some(set) = s.setting(custom)
            && let Value::Dict(entries) = &set.value
        {
            known.extend(
                entries
                    .iter()
                    .filter_map(|(k, _)| k.trim().parse::<u16>().ok()),
            );
        }
    }
    known
}

impl SweepRules {
    /// Reads and checks every stanza of `snap`.
    pub fn of(snap: &Snapshot) -> Result<SweepRules, SweepConfigError> {
        let tree = &snap.tree;
        let ids = ids();
        let mut out = SweepRules::default();
        let mut known = None;
        for id in tree.scope_ids() {
            let scope = tree.scope(id);
            if scope.kind != ScopeKind::AdaptiveSweepRule {
                continue;
            }
            let name = scope.name.clone().unwrap_or_default();
            let opened = scope.opened.first().copied();
            let Some(codes) = scope.setting(ids.codes) else {
                return Err(err(
                    opened,
                    format!(
                        "adaptive_sweep_rule \"{name}\" has no `codes`: Momentum ignores such a rule, so it would never fire"
                    ),
                    Some(
                        "add `codes = ( \"bc:10\" \"bc:24\" )` (bounce classes) or `codes = ( \"fbl:abuse\" )` (feedback types), or remove the stanza",
                    ),
                ));
            };
            let Value::List(words) = &codes.value else {
                continue;
            };
            let mut parsed = Vec::new();
            for w in words {
                let code =
                    Code::parse(w).map_err(|e| err(Some(codes.span), e.to_string(), None))?;
                if let Code::Bounce(n) = code {
                    let known = known.get_or_insert_with(|| known_classes(tree));
                    if !known.contains(&n) {
                        let list: Vec<String> = known.iter().map(u16::to_string).collect();
                        return Err(err(
                            Some(codes.span),
                            format!(
                                "`bc:{n}` is not a bounce class, so the rule would count nothing"
                            ),
                            Some(&format!(
                                "the classes are {}; register your own in bounce_classifier_override's custom_classes",
                                list.join(", ")
                            )),
                        ));
                    }
                }
                parsed.push(code);
            }
            let percent = |o: OptionId| -> Option<f64> {
                match &scope.setting(o)?.value {
                    Value::Str(s) => s.parse().ok(),
                    _ => None,
                }
            };
            let action = |o: OptionId| -> Result<Option<Action>, SweepConfigError> {
                let Some(set) = scope.setting(o) else {
                    return Ok(None);
                };
                let Value::List(words) = &set.value else {
                    return Ok(None);
                };
                Action::parse(words)
                    .map(Some)
                    .map_err(|e| err(Some(set.span), e.to_string(), None))
            };
            let rule = SweepRule::new(
                &name,
                parsed,
                percent(ids.low),
                action(ids.low_action)?,
                percent(ids.high),
                action(ids.high_action)?,
            )
            .map_err(|e| {
                let at = scope
                    .setting(ids.high_action)
                    .filter(|_| matches!(e, bindery_adaptive::SweepError::Hours { .. }))
                    .or_else(|| scope.setting(ids.codes))
                    .map_or(opened, |s| Some(s.span));
                err(at, e.to_string(), None)
            })?;
            let enabled = !matches!(
                scope.setting(ids.enabled).map(|s| &s.value),
                Some(Value::Bool(false))
            );
            out.stanzas.insert(id, Stanza { rule, enabled });
        }
        Ok(out)
    }

    /// How many stanzas the configuration has.
    pub fn len(&self) -> usize {
        self.stanzas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stanzas.is_empty()
    }

    /// The rules that apply to `binding` sending to `domain`, each with whether it is in
    /// force (a disabled one still hides a wider one of its name), Momentum's defaults
    /// included where they apply.
    pub fn for_pair(
        &self,
        snap: &Snapshot,
        binding: BindingId,
        domain: &DomainKey,
    ) -> Vec<SweepRule> {
        let enabled_id = option_id("Adaptive_Sweep_Rule_Enabled");
        let tree = &snap.tree;
        let chain = snap.chain(Some(binding), None, Some(domain));
        let links: Vec<ScopeId> = chain.links().filter_map(|(_, id)| id).collect();
        let default_on = !matches!(default_value(enabled_id), Some(Value::Bool(false)));
        // The effective value at each link: its own, else the next wider one's.
        let mut on = vec![default_on; links.len()];
        let mut wider = default_on;
        for (i, id) in links.iter().enumerate().rev() {
            if let Some(s) = tree.scope(*id).setting(enabled_id) {
                wider = matches!(s.value, Value::Bool(true));
            }
            on[i] = wider;
        }
        if !on.first().copied().unwrap_or(default_on) {
            return Vec::new();
        }
        let mut names = BTreeSet::new();
        let mut rules = Vec::new();
        for (i, id) in links.iter().enumerate() {
            for child in tree.children_of(*id, ScopeKind::AdaptiveSweepRule) {
                let Some(st) = self.stanzas.get(&child) else {
                    continue;
                };
                if names.insert(st.rule.name.clone()) && on[i] && st.enabled {
                    rules.push(st.rule.clone());
                }
            }
        }
        SweepRule::with_defaults(rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(text: &str) -> Snapshot {
        bindery_config::snapshot_from_str("t.conf", text).expect("loads")
    }

    fn names(s: &Snapshot, rules: &SweepRules, binding: &str, domain: &str) -> Vec<String> {
        let b = s.binding_id(binding).unwrap_or(BindingId::DEFAULT);
        rules
            .for_pair(s, b, &s.domain_key(domain))
            .into_iter()
            .map(|r| r.name)
            .collect()
    }

    #[test]
    fn the_pages_examples_choose_rules_by_scope() {
        // modules/4-adaptive.md: adaptive_sweep_rule examples, then the enabled example.
        let s = snap(
            r#"
adaptive { }
adaptive_sweep_rule "fbl" {
  codes = ("fbl:abuse")
  low_threshold = 0.2
  low_action = ("throttle" "down")
  high_threshold = 0.5
  high_action = ("suspend" "4 hours")
}
domain "yahoo.com" {
  adaptive_sweep_rule "y" {
    codes = ("bc:10" "bc:20")
  }
}
domain "hotmail.com" {
  adaptive_sweep_rule "x" {
    codes = ("bc:10")
    low_threshold = 2
    high_threshold = 7
  }
}
binding "binding1" {
  adaptive_sweep_rule_enabled = 0
  adaptive_sweep_rule "rule1" {
    codes = ("bc:24")
  }
  domain "domain1" {
    adaptive_sweep_rule_enabled = 1
    adaptive_sweep_rule "rule2" {
      codes = ("bc:10")
    }
  }
}
"#,
        );
        let rules = SweepRules::of(&s).expect("checks");
        assert_eq!(rules.len(), 5);
        assert_eq!(
            names(&s, &rules, "default", "yahoo.com"),
            ["y", "fbl"],
            "a bounce rule and an FBL rule written: no default"
        );
        assert_eq!(
            names(&s, &rules, "default", "other.test"),
            ["fbl", "default_bounce_rule"]
        );
        let x = rules
            .for_pair(&s, BindingId::DEFAULT, &s.domain_key("hotmail.com"))
            .into_iter()
            .find(|r| r.name == "x")
            .expect("x");
        assert_eq!((x.low, x.high), (2.0, 7.0));
        assert_eq!(x.high_action, Action::Suspend(4 * 3600));
        // binding1: off but for domain1, where rule1 (written where it is off) stays out.
        assert_eq!(
            names(&s, &rules, "binding1", "domain1"),
            ["rule2", "fbl"],
            "rule2 and the global fbl rule"
        );
        assert!(names(&s, &rules, "binding1", "elsewhere.test").is_empty());
    }

    #[test]
    fn the_narrowest_of_one_name_wins_even_disabled() {
        let s = snap(
            r#"
adaptive { }
adaptive_sweep_rule "r" { codes = ("bc:10") }
binding "b" {
  adaptive_sweep_rule "r" { codes = ("bc:10") adaptive_sweep_rule_enabled = false }
}
"#,
        );
        let rules = SweepRules::of(&s).expect("checks");
        assert_eq!(
            names(&s, &rules, "b", "x.test"),
            ["default_bounce_rule", "default_fbl_rule"]
        );
        assert_eq!(
            names(&s, &rules, "default", "x.test"),
            ["r", "default_fbl_rule"]
        );
    }

    #[test]
    fn rules_momentum_ignores_are_refused_at_their_line() {
        for (text, line, says) in [
            (
                "adaptive { }\nadaptive_sweep_rule \"n\" {\n  low_threshold = 2\n}\n",
                2,
                "has no `codes`",
            ),
            (
                "adaptive { }\nadaptive_sweep_rule \"m\" {\n  codes = (\"bc:10\" \"fbl:abuse\")\n}\n",
                3,
                "mixes bounce classes and feedback types",
            ),
            (
                "adaptive { }\nadaptive_sweep_rule \"c\" {\n  codes = (\"bc:77\")\n}\n",
                3,
                "`bc:77` is not a bounce class",
            ),
            (
                "adaptive { }\nadaptive_sweep_rule \"a\" {\n  codes = (\"bc:10\")\n  high_action = (\"suspend\" \"3 hours\")\n}\n",
                4,
                "power of two hours",
            ),
            (
                "adaptive { }\nadaptive_sweep_rule \"t\" {\n  codes = (\"bc:10\")\n  low_action = (\"transmogrify\")\n}\n",
                4,
                "is not an adaptive action",
            ),
        ] {
            let s = snap(text);
            let e = SweepRules::of(&s).expect_err(text);
            assert!(e.message.contains(says), "{text}: {}", e.message);
            let span = e.span.expect("located");
            assert_eq!(
                s.tree.sources.get(span.file).line_col(span.start).0,
                line,
                "{text}"
            );
        }
        // A custom class registered in bounce_classifier_override may be named.
        let s = snap(
            "adaptive { }\nbounce_classifier_override { custom_classes = [ 99 = \"profanity\" ] }\nadaptive_sweep_rule \"p\" { codes = (\"bc:99\") }\n",
        );
        assert_eq!(SweepRules::of(&s).expect("custom class").len(), 1);
    }
}
