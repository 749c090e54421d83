//! `binding summary [NAME | group:NAME]`, in Momentum's format:
//!
//! ```text
//! Summary Statistics For Binding default
//!         Open Connections:       0
//!         Active Queue Size:      0
//!         ...
//!         Uptime:    590 seconds
//! ```
//!
//! With `group:NAME`, each member is printed "in Binding Group NAME", then a line of stars
//! and the group's own figures, where `Incore Messages` replaces `Resident Messages`. With
//! no argument, every binding.

use std::fmt::Write;

use serde_json::{Value, json};

use super::Output;
use super::figures::{BindingFigures, bindings};
use crate::daemon::Daemon;

const STARS: &str = "********************************************";

pub fn run<D: Daemon>(d: &D, args: &[&str]) -> Output {
    let queues = d.queues();
    let all = bindings(d, &queues);
    let uptime = d.now().saturating_sub(d.stats().started);
    match args {
        [] => {
            let text: Vec<String> = all
                .iter()
                .map(|f| block(&format!("Binding {}", f.name), f, false, uptime))
                .collect();
            let json: Vec<Value> = all.iter().map(|f| figures_json(f, uptime)).collect();
            Output::ok(text.join("\n"), Value::Array(json))
        }
        [arg] => match arg.strip_prefix("group:") {
            Some(group) => group_summary(d, &all, group, uptime),
            None => match all.iter().find(|f| f.name == *arg) {
                Some(f) => Output::ok(
                    block(&format!("Binding {}", f.name), f, false, uptime),
                    figures_json(f, uptime),
                ),
                None => Output::error(not_found(d, arg)),
            },
        },
        _ => Output::error("usage: binding summary [NAME | group:NAME]"),
    }
}

fn group_summary<D: Daemon>(d: &D, all: &[BindingFigures], group: &str, uptime: u64) -> Output {
    if d.snapshot().group_id(group).is_none() {
        let snap = d.snapshot();
        let mut msg = format!("No such binding group: {group}");
        if let Some(best) =
            bindery_config::diag::did_you_mean(group, snap.groups().map(|g| snap.group_name(g)))
        {
            msg.push_str(&format!("; did you mean `group:{best}`?"));
        }
        return Output::error(msg);
    }
    let members: Vec<&BindingFigures> = all.iter().filter(|f| f.group == group).collect();
    let mut total = BindingFigures {
        name: group.to_string(),
        group: group.to_string(),
        ..BindingFigures::default()
    };
    let mut text = String::new();
    for f in &members {
        total.absorb(f);
        text.push_str(&block(
            &format!("Binding {} in Binding Group {group}", f.name),
            f,
            false,
            uptime,
        ));
    }
    let _ = writeln!(text, "{STARS}");
    text.push_str(&block(
        &format!("Binding Group {group}"),
        &total,
        true,
        uptime,
    ));
    let json = json!({
        "group": group,
        "members": members.iter().map(|f| figures_json(f, uptime)).collect::<Vec<_>>(),
        "total": figures_json(&total, uptime),
    });
    Output::ok(text, json)
}

fn not_found<D: Daemon>(d: &D, name: &str) -> String {
    let snap = d.snapshot();
    let mut msg = format!("No such binding: {name}");
    if let Some(best) =
        bindery_config::diag::did_you_mean(name, snap.bindings().map(|b| snap.binding_name(b)))
    {
        msg.push_str(&format!("; did you mean `{best}`?"));
    }
    msg
}

/// One summary block. Spacing follows Momentum's documented output exactly (the Open
/// Connections line is one column wider there, and so here).
fn block(title: &str, f: &BindingFigures, group: bool, uptime: u64) -> String {
    let c = &f.since_reset;
    let mut s = String::new();
    let _ = writeln!(s, "Summary Statistics For {title}");
    let _ = writeln!(s, "\tOpen Connections: {:>7}", f.open_connections);
    let _ = writeln!(s, "\tActive Queue Size: {:>6}", f.active);
    let _ = writeln!(s, "\tTotal Queue Size: {:>6}", f.queued());
    let _ = writeln!(s, "\tSuccessfully Delivered Messages: {:>6}", c.delivered);
    let _ = writeln!(s, "\tFailed Messages: {:>6}", c.failed);
    let _ = writeln!(s, "\tReceived Messages: {:>6}", c.received);
    let label = if group { "Incore" } else { "Resident" };
    let _ = writeln!(s, "\t{label} Messages: {:>6}", f.inflight);
    let _ = writeln!(
        s,
        "\tDelivery Rate: {:>6.2} messages/second",
        f.delivery_rate
    );
    let _ = writeln!(
        s,
        "\tReception Rate: {:>6.2} messages/second",
        f.reception_rate
    );
    let _ = writeln!(s, "\tUptime: {uptime:>6} seconds");
    s
}

pub fn figures_json(f: &BindingFigures, uptime: u64) -> Value {
    json!({
        "name": f.name,
        "group": f.group,
        "open_connections": f.open_connections,
        "active_queue": f.active,
        "delayed_queue": f.delayed,
        "total_queue": f.queued(),
        "delivered": f.since_reset.delivered,
        "failed": f.since_reset.failed,
        "transient": f.since_reset.transient,
        "bounced": f.since_reset.bounced,
        "received": f.since_reset.received,
        "resident": f.inflight,
        "delivery_rate": f.delivery_rate,
        "reception_rate": f.reception_rate,
        "uptime": uptime,
    })
}
