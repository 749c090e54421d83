//! Momentum's adaptive console commands (`3-reference-modules-adaptive.md`, "adaptive
//! Management Using System Console Commands"), in its layout:
//!
//! - `adaptive suspensions [--binding B] [--domain D] [--all]`: `Group/Binding Domain TTL
//!   Enable`, one line per suspension that has not ended;
//! - `adaptive override [--binding B] [--domain D] [--all] [ttl N | enable]`: turns the
//!   suspensions off (kept, `Enable` 0), sets how long they have left, or turns them on
//!   again; `Overrode N entries`;
//! - `adaptive list [--binding B] [--domain D]`: `Group/Binding Domain Opt Value`, the
//!   limits the rules lowered;
//! - `adaptive reset [--binding B] [--domain D] [--all]`: forgets suspensions and lowered
//!   limits;
//! - `adaptive rules --binding B --domain D`: the response rules in force for the pair, then
//!   its sweep rules with `count/total` over the last sweep's window;
//! - `adaptive explain B D`: bindery's own, in `adaptive_explain.rs`.
//!
//! `--json` gives the same rows as data.

use bindery_adaptive::{Key, Live};
use serde_json::{Value, json};

use super::Output;
use crate::daemon::Daemon;

/// `--binding B --domain D` and `--all`, and the words left.
struct Scope<'a> {
    binding: Option<&'a str>,
    domain: Option<&'a str>,
    rest: Vec<&'a str>,
}

fn scope<'a>(words: &[&'a str]) -> Result<Scope<'a>, Output> {
    let mut s = Scope {
        binding: None,
        domain: None,
        rest: Vec::new(),
    };
    let mut it = words.iter();
    while let Some(&w) = it.next() {
        match w {
            "--binding" => s.binding = Some(value(it.next(), w)?),
            "--domain" => s.domain = Some(value(it.next(), w)?),
            "--all" => {}
            other => s.rest.push(other),
        }
    }
    Ok(s)
}

fn value<'a>(v: Option<&&'a str>, flag: &str) -> Result<&'a str, Output> {
    v.copied()
        .ok_or_else(|| Output::error(format!("{flag} needs a name")))
}

fn live<D: Daemon>(d: &D) -> Result<std::sync::Arc<Live>, Output> {
    d.adaptive().ok_or_else(|| {
        Output::error("adaptive delivery is not configured (no `adaptive { }` module)")
    })
}

pub fn run<D: Daemon>(d: &D, words: &[&str]) -> Output {
    let (which, rest) = match words {
        [w, rest @ ..] => (*w, rest),
        [] => return Output::error(usage()),
    };
    let s = match scope(rest) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let live = match live(d) {
        Ok(l) => l,
        Err(e) => return e,
    };
    let now = d.now();
    match which {
        "suspensions" => suspensions(&live, &s, now),
        "override" => override_(&live, &s, now),
        "list" => list(&live, &s),
        "reset" => reset(&live, &s, now),
        "rules" => rules(d, &live, &s),
        "explain" => super::adaptive_explain::run(d, &live, s.binding, s.domain, &s.rest),
        _ => Output::error(usage()),
    }
}

fn usage() -> String {
    "usage: adaptive suspensions|override|list|reset|rules|explain [--binding B] [--domain D] [--all]"
        .into()
}

const RULE: &str = "--------------------------------------------------------------------------\n";

fn suspensions(live: &Live, s: &Scope<'_>, now: u64) -> Output {
    let book = live.book();
    let mut text = format!(
        "{:<20} {:>32} {:>9} {:>7}\n{RULE}",
        "Group/Binding", "Domain", "TTL", "Enable"
    );
    let mut rows = Vec::new();
    for k in book.select(s.binding, s.domain) {
        let Some(sus) = book.get(&k).and_then(|st| st.suspension_at(now)) else {
            continue;
        };
        let ttl = sus.until.saturating_sub(now);
        text.push_str(&format!(
            "{:<20} {:>32} {:>9} {:>7}\n",
            k.binding,
            k.domain,
            ttl,
            u8::from(sus.enabled)
        ));
        rows.push(json!({
            "binding": k.binding,
            "domain": k.domain,
            "ttl": ttl,
            "enabled": sus.enabled,
            "blackhole": sus.blackhole,
            "since": sus.since,
            "until": sus.until,
            "rule": sus.rule,
            "reply": sus.reply,
            "message": sus.message,
        }));
    }
    Output::ok(text, Value::Array(rows))
}

fn override_(live: &Live, s: &Scope<'_>, now: u64) -> Output {
    let n = match s.rest.as_slice() {
        [] => live.update(|b| {
            let keys = b.select(s.binding, s.domain);
            let n = b.set_enabled(&keys, false, now);
            (n, n > 0)
        }),
        ["enable"] => live.update(|b| {
            let keys = b.select(s.binding, s.domain);
            let n = b.set_enabled(&keys, true, now);
            (n, n > 0)
        }),
        ["ttl", secs] => {
            let Ok(secs) = secs.parse::<u64>() else {
                return Output::error(format!("ttl must be a number of seconds, not `{secs}`"));
            };
            live.update(|b| {
                let keys = b.select(s.binding, s.domain);
                let n = b.set_ttl(&keys, secs, now);
                (n, n > 0)
            })
        }
        _ => return Output::error(usage()),
    };
    Output::ok(format!("Overrode {n} entries\n"), json!({ "overrode": n }))
}

fn list(live: &Live, s: &Scope<'_>) -> Output {
    let book = live.book();
    let mut text = format!(
        "{:<20} {:>20} {:>30} {:>7}\n{RULE}",
        "Group/Binding", "Domain", "Opt", "Value"
    );
    let mut rows = Vec::new();
    for k in book.select(s.binding, s.domain) {
        let Some(st) = book.get(&k) else {
            continue;
        };
        let mut opts: Vec<(&str, String)> = Vec::new();
        if let Some(c) = st.connections {
            opts.push(("max_outbound_connections", c.to_string()));
        }
        if let Some(c) = st.deliveries {
            opts.push(("max_deliveries_per_connection", c.to_string()));
        }
        if let Some((m, p)) = st.throttle {
            opts.push(("outbound_throttle_messages", format!("{m}/{p}")));
        }
        if let Some(r) = st.retry_interval {
            opts.push(("retry_interval", r.to_string()));
        }
        for (opt, v) in opts {
            text.push_str(&format!(
                "{:<20} {:>20} {:>30} {:>7}\n",
                k.binding, k.domain, opt, v
            ));
            rows.push(json!({"binding": k.binding, "domain": k.domain, "option": opt, "value": v}));
        }
    }
    Output::ok(text, Value::Array(rows))
}

fn reset(live: &Live, s: &Scope<'_>, now: u64) -> Output {
    let n = live.update(|b| {
        let keys = b.select(s.binding, s.domain);
        let n = keys.iter().filter(|k| b.lift(k, now)).count();
        (n, n > 0)
    });
    Output::ok(format!("Reset {n} entries\n"), json!({ "reset": n }))
}

fn rules<D: Daemon>(d: &D, live: &Live, s: &Scope<'_>) -> Output {
    let (Some(binding), Some(domain)) = (s.binding, s.domain) else {
        return Output::error("usage: adaptive rules --binding B --domain D");
    };
    let key = Key::new(binding, domain);
    let rules = live.rules();
    let mut text = String::new();
    let mut rows = Vec::new();
    if let Some((name, r)) = rules.for_domain(&key.domain) {
        for (i, resp) in r.responses.iter().enumerate() {
            let actions: Vec<String> = resp.actions.iter().map(|a| a.describe()).collect();
            text.push_str(&format!(
                "{name}#{} {}\n  code          => {}\n  trigger       => {}\n  action        => {}\n  message       => {}\n",
                i + 1,
                resp.origin,
                resp.code,
                resp.trigger.describe(),
                actions.join(", "),
                if resp.message.is_empty() { "(null)" } else { &resp.message },
            ));
            rows.push(json!({
                "rule": format!("{name}#{}", i + 1),
                "origin": resp.origin,
                "code": resp.code,
                "trigger": resp.trigger.describe(),
                "actions": actions,
                "message": resp.message,
            }));
        }
        for (opt, range) in &r.configuration {
            text.push_str(&format!(
                "{name} configuration\n  {opt} => ( {} {} )\n",
                range.min, range.max
            ));
        }
    }
    let sweep = sweep_rules(d, live, &key, &mut text);
    if text.is_empty() {
        text = format!("No adaptive rules for {binding}::{}\n", key.domain);
    }
    Output::ok(text, json!({ "responses": rows, "sweep": sweep }))
}

/// The pair's sweep rules in Momentum's layout (`modules/4-adaptive.md`, "adaptive rules"):
/// `count/total` is what the codes counted over the attempts (bounce rules) or deliveries
/// (FBL rules) in the window of the last sweep.
fn sweep_rules<D: Daemon>(d: &D, live: &Live, key: &Key, text: &mut String) -> Vec<Value> {
    let snap = d.snapshot();
    let Ok(stanzas) = bindery_delivery::sweep_rules::SweepRules::of(&snap) else {
        return Vec::new();
    };
    let Some(binding) = snap.binding_id(&key.binding) else {
        return Vec::new();
    };
    let window = live.windows().window(key).cloned().unwrap_or_default();
    let mut rows = Vec::new();
    for r in stanzas.for_pair(&snap, binding, &snap.domain_key(&key.domain)) {
        let codes: Vec<String> = r
            .codes
            .iter()
            .map(|c| match c {
                bindery_adaptive::Code::Bounce(n) => format!("bc:{n}"),
                bindery_adaptive::Code::Fbl(k) => format!("fbl:{k}"),
            })
            .collect();
        let (count, total) = r.count(&window);
        let words = |a: &bindery_adaptive::Action| {
            let d = a.describe();
            match d.split_once(' ') {
                Some((w, p)) => (w.to_string(), p.to_string()),
                None => (d, "(null)".to_string()),
            }
        };
        let (low, low_p1) = words(&r.low_action);
        let (high, high_p1) = words(&r.high_action);
        text.push_str(&format!(
            "{name} {name}\n  enabled       => 1\n  codes         => {}\n  low_threshold => {:.6}\n  low_action    => {low}\n  low_action_p1 => {low_p1}\n  low_action_p2 => (null)\n  high_threshold=> {:.6}\n  high_action   => {high}\n  high_action_p1=> {high_p1}\n  high_action_p2=> (null)\n  count/total   => {count}/{total}\n",
            codes.join(" "),
            r.low,
            r.high,
            name = r.name,
        ));
        rows.push(json!({
            "rule": r.name,
            "codes": codes,
            "low_threshold": r.low,
            "low_action": r.low_action.describe(),
            "high_threshold": r.high,
            "high_action": r.high_action.describe(),
            "count": count,
            "total": total,
        }));
    }
    rows
}
