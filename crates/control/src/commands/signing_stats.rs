//! `signing_stats` and `signing_stats reset`: DKIM signing statistics in Momentum's layout
//! (Global, Per Domain, Per Binding with Per Binding Per Domain inside it). Momentum prints a
//! DomainKeys block beside each DKIM one; bindery does not sign DomainKeys, so there is none.

use serde_json::json;

use super::Output;
use crate::daemon::Daemon;
use crate::signing::Counts;

fn block(out: &mut String, indent: &str, c: &Counts) {
    out.push_str(&format!("{indent}DKIM\n"));
    let i = format!("{indent}\t");
    out.push_str(&format!("{i}AccumulatedSigningTime {:>10.4}\n", c.time));
    out.push_str(&format!("{i}TotalMessagesSigned    {:>10}\n", c.signed));
    out.push_str(&format!("{i}FailedSigningAttempts  {:>10}\n", c.failed));
    out.push_str(&format!("{i}TotalMessagesProcessed {:>10}\n", c.processed));
}

fn counts_json(c: &Counts) -> serde_json::Value {
    json!({
        "accumulated_signing_time": c.time,
        "total_messages_signed": c.signed,
        "failed_signing_attempts": c.failed,
        "total_messages_processed": c.processed,
    })
}

pub fn show<D: Daemon>(d: &D) -> Output {
    let f = d.signing().figures();
    let mut text = String::from("Signing Statistics\n\nGlobal\n");
    block(&mut text, "\t", &f.global);
    text.push_str("Per Domain\n");
    for (domain, c) in &f.per_domain {
        text.push_str(&format!("\tDomainName  {domain}\n"));
        block(&mut text, "\t", c);
    }
    text.push_str("Per Binding\n");
    for (binding, c) in &f.per_binding {
        text.push_str(&format!("\tbinding_name {binding}\n"));
        block(&mut text, "\t", c);
        if let Some(domains) = f.per_binding_domain.get(binding) {
            text.push_str("\tPer Binding Per Domain\n");
            for (domain, c) in domains {
                text.push_str(&format!("\tDomainName {domain}\n"));
                block(&mut text, "\t", c);
            }
        }
    }
    let json = json!({
        "global": counts_json(&f.global),
        "per_domain": f.per_domain.iter().map(|(k, c)| (k.clone(), counts_json(c))).collect::<serde_json::Map<_, _>>(),
        "per_binding": f.per_binding.iter().map(|(b, c)| {
            let domains = f.per_binding_domain.get(b).map(|m| m.iter().map(|(k, c)| (k.clone(), counts_json(c))).collect::<serde_json::Map<_, _>>()).unwrap_or_default();
            (b.clone(), json!({"dkim": counts_json(c), "per_domain": domains}))
        }).collect::<serde_json::Map<_, _>>(),
    });
    Output::ok(text, json)
}

pub fn reset<D: Daemon>(d: &D) -> Output {
    d.signing().reset();
    Output::ok("Signing statistics reset\n", json!({"reset": true}))
}
