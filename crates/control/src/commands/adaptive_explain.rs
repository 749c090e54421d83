//! `adaptive explain B D` (also `--binding B --domain D`): why adaptive delivery holds a
//! binding x domain the way it does (issue 22, bindery's own): the suspension and the rule
//! and reply that set it, when it lifts, each lowered limit next to its configured value and
//! when it climbs back, the history of firings with their replies, and the sweep rules'
//! last window. `bindery adaptive explain BINDING DOMAIN` runs it through the console.

use bindery_adaptive::{Key, Live};
use bindery_delivery::options::DeliveryOptions;
use serde_json::json;

use super::Output;
use crate::daemon::Daemon;

/// `at T (in 59 s)`, `at T (3 s ago)`: the time, and how far it is from `now`.
fn when(at: u64, now: u64) -> String {
    if at == now {
        format!("at {at} (now)")
    } else if at > now {
        format!("at {at} (in {} s)", at - now)
    } else {
        format!("at {at} ({} s ago)", now - at)
    }
}

pub fn run<D: Daemon>(
    d: &D,
    live: &Live,
    binding: Option<&str>,
    domain: Option<&str>,
    rest: &[&str],
) -> Output {
    let binding = binding.or_else(|| rest.first().copied());
    let domain = domain.or_else(|| rest.get(1).copied());
    let (Some(binding), Some(domain)) = (binding, domain) else {
        return Output::error("usage: adaptive explain BINDING DOMAIN");
    };
    let snap = d.snapshot();
    let Some(b) = snap.binding_id(binding) else {
        return Output::error(format!("no binding named {binding}"));
    };
    let key = Key::new(binding, domain);
    let now = d.now();
    let settings = DeliveryOptions::resolve(&snap, b, &snap.domain_key(&key.domain)).adaptive;
    let (base, interval) = settings
        .as_ref()
        .map_or((Default::default(), 0), |s| (s.base, s.positive_interval));
    let e = live.book().explain(&key, now, &base, interval);
    let mut text = format!("{}::{}\n", key.binding, key.domain);
    if settings.is_none() {
        text.push_str("  adaptive_enabled is off here: no rule acts on this binding and domain\n");
    }
    match &e.suspension {
        Some(s) => {
            text.push_str(&format!(
                "  {} by rule {} {}, lifts {}{}\n",
                if s.blackhole {
                    "Blackholed"
                } else {
                    "Suspended"
                },
                s.rule,
                when(s.since, now),
                when(s.until, now),
                if s.enabled {
                    ""
                } else {
                    " (overridden from the console: not in force)"
                },
            ));
            if !s.reply.is_empty() {
                text.push_str(&format!("    after: {}\n", s.reply));
            }
            if !s.message.is_empty() {
                text.push_str(&format!("    message: {}\n", s.message));
            }
        }
        None => text.push_str("  Not suspended\n"),
    }
    if let Some(g) = e.greylisted_until {
        text.push_str(&format!(
            "  Greylisted: retries wait until {}\n",
            when(g, now)
        ));
    }
    if e.lowered.is_empty() {
        text.push_str("  Limits: as configured\n");
    } else {
        for l in &e.lowered {
            text.push_str(&format!(
                "  {} = {} (configured: {})\n",
                l.option, l.now, l.configured
            ));
        }
        if let Some(t) = e.next_step {
            text.push_str(&format!(
                "  Next step back {} (adaptive_positive_adjustment_interval {interval} s of quiet)\n",
                when(t, now)
            ));
        }
    }
    if e.history.is_empty() {
        text.push_str("  History: no rule has fired\n");
    } else {
        text.push_str("  History (oldest first):\n");
        for h in &e.history {
            text.push_str(&format!("    {} {}: {}", when(h.at, now), h.rule, h.what));
            if !h.reply.is_empty() {
                text.push_str(&format!(" after \"{}\"", h.reply));
            }
            text.push('\n');
        }
    }
    let window = live.windows().window(&key).cloned().unwrap_or_default();
    let mut sweep = Vec::new();
    if let Ok(stanzas) = bindery_delivery::sweep_rules::SweepRules::of(&snap) {
        for r in stanzas.for_pair(&snap, b, &snap.domain_key(&key.domain)) {
            let (count, total) = r.count(&window);
            text.push_str(&format!(
                "  Sweep rule {}: {count}/{total} in the last window (low {} %, high {} %)\n",
                r.name, r.low, r.high
            ));
            sweep.push(json!({"rule": r.name, "count": count, "total": total}));
        }
    }
    let json = json!({
        "binding": key.binding,
        "domain": key.domain,
        "now": now,
        "adaptive_enabled": settings.is_some(),
        "explanation": e,
        "sweep": sweep,
    });
    Output::ok(text, json)
}
