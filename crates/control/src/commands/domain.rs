//! `domain NAME`: the domain's own configuration block, what the route cache holds for it,
//! and its queues over every binding. Momentum's layout, as far as it is documented:
//!
//! ```text
//! Domain hotmail.com { Max_Outbound_Connections = 20 }
//! [5 mx1.hotmail.com TTL:1902]
//!     65.54.188.72
//! Queue: Active 3/Delayed 5
//! Deliveries: 120
//! Failures: 2
//! Active Connections: 1
//! ```

use std::fmt::Write;

use bindery_config::schema::ScopeKind;
use bindery_config::show::raw;
use bindery_config::tree::ROOT;
use serde_json::json;

use super::Output;
use crate::daemon::Daemon;

pub fn run<D: Daemon>(d: &D, name: &str) -> Output {
    let name = name.to_ascii_lowercase();
    let snap = d.snapshot();
    let tree = &snap.tree;
    let mut text = String::new();
    let mut settings = Vec::new();
    match tree.find(ROOT, ScopeKind::Domain, Some(&name)) {
        Some(id) => {
            let _ = write!(text, "Domain {name} {{");
            for s in &tree.scope(id).settings {
                let mut v = String::new();
                raw(&s.raw, &mut v);
                let _ = write!(text, " {} = {v}", s.option.def().name);
                settings.push(json!({ "option": s.option.def().name, "value": v }));
            }
            text.push_str(" }\n");
        }
        None => {
            let _ = writeln!(text, "Domain {name} has no configuration block of its own.");
        }
    }
    let routes = d.routes(&name);
    for r in &routes {
        let _ = writeln!(text, "[{} {} TTL:{}]", r.preference, r.host, r.ttl);
        for a in &r.addresses {
            let _ = writeln!(text, "    {a}");
        }
    }
    let queues: Vec<_> = d
        .queues()
        .into_iter()
        .filter(|q| q.domain == name)
        .collect();
    let active: usize = queues.iter().map(|q| q.active).sum();
    let delayed: usize = queues.iter().map(|q| q.delayed).sum();
    let delivered: u64 = queues.iter().map(|q| q.delivered).sum();
    let failed: u64 = queues.iter().map(|q| q.failed).sum();
    let conns: u32 = queues.iter().map(|q| q.connections).sum();
    let _ = writeln!(text, "Queue: Active {active}/Delayed {delayed}");
    let _ = writeln!(text, "Deliveries: {delivered}");
    let _ = writeln!(text, "Failures: {failed}");
    let _ = writeln!(text, "Active Connections: {conns}");
    for q in &queues {
        let _ = writeln!(
            text,
            "  binding {}: active {} delayed {} connections {}",
            q.binding, q.active, q.delayed, q.connections
        );
    }
    let json = json!({
        "domain": name,
        "settings": settings,
        "routes": routes.iter().map(|r| json!({
            "preference": r.preference, "host": r.host, "ttl": r.ttl, "addresses": r.addresses,
        })).collect::<Vec<_>>(),
        "active": active,
        "delayed": delayed,
        "delivered": delivered,
        "failed": failed,
        "connections": conns,
        "bindings": queues.iter().map(|q| json!({
            "binding": q.binding, "active": q.active, "delayed": q.delayed,
            "connections": q.connections,
        })).collect::<Vec<_>>(),
    });
    Output::ok(text, json)
}
