//! Momentum's `bounce_classifier_override` console commands
//! (`modules/bounce-classifier-override.md`): `reload` reads the override sources again,
//! `test TEXT` says how a reply is classified and by which rule.

use serde_json::json;

use super::Output;
use crate::daemon::Daemon;

pub fn reload<D: Daemon>(d: &D) -> Output {
    match d.reload_bounces() {
        Ok(c) => Output::ok(
            format!(
                "Reloaded bounce classification overrides: {} for a domain, {} for every domain, {} for out-of-band mail; {} shipped rules after them\n",
                c.domain_overrides, c.global_overrides, c.mdn_overrides, c.base
            ),
            json!({
                "domain_overrides": c.domain_overrides,
                "global_overrides": c.global_overrides,
                "mdn_overrides": c.mdn_overrides,
                "shipped_rules": c.base,
            }),
        ),
        Err(e) => Output::error(format!("{e}\n")),
    }
}

pub fn test<D: Daemon>(d: &D, words: &[&str]) -> Output {
    if words.is_empty() {
        return Output::error("usage: bounce_classifier_override test TEXT\n");
    }
    let text = words.join(" ");
    let c = d.bounces();
    let v = c.smtp(&text, "");
    let k = c.describe(v.class);
    let (rule, pattern) = match v.rule {
        Some(r) => (r.origin.to_string(), r.pattern.clone()),
        None => ("none".to_string(), String::new()),
    };
    Output::ok(
        format!(
            "{} {} ({})\nrule: {rule} {pattern}\n",
            k.code, k.name, k.symbol
        ),
        json!({
            "code": k.code,
            "name": k.name,
            "symbol": k.symbol,
            "category": k.category.name(),
            "rule": rule,
            "pattern": pattern,
        }),
    )
}
