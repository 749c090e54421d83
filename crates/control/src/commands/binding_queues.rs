//! `binding active|delayed NAME [THRESHOLD]`: a binding's queues per domain, Momentum's
//! layout:
//!
//! ```text
//! Domain:                  earthlink.com  C: 60  A:    315  D:   192  S:  1957  T: 60  W:     0
//!                                 Total:  C: 616  A:  22965  D: 34427  S:1954767  T: 640  W:   315
//! ```
//!
//! C = connections, A = active, D = delayed, S = sent (delivered) since start. A domain is
//! listed when its active (or delayed) count reaches THRESHOLD (default 1); the Total row
//! covers every domain of the binding. Bindery adds, after Momentum's columns so a parser of
//! those still reads them: T = the connections slow start allows the queue now, W = active
//! parts waiting for a place under a connection cap across queues (with `--json`, the cap
//! it waits on).

use std::fmt::Write;

use serde_json::json;

use super::{Output, number};
use crate::daemon::Daemon;

pub fn run<D: Daemon>(d: &D, which: &str, args: &[&str]) -> Output {
    let (name, threshold) = match args {
        [name] => (*name, 1),
        [name, t] => match number(t, "THRESHOLD") {
            Ok(t) => (*name, t),
            Err(e) => return e,
        },
        _ => return Output::error(format!("usage: binding {which} NAME [THRESHOLD]")),
    };
    let snap = d.snapshot();
    let queues: Vec<_> = d
        .queues()
        .into_iter()
        .filter(|q| q.binding == name)
        .collect();
    if snap.binding_id(name).is_none() && queues.is_empty() {
        return Output::error(format!("No such binding: {name}"));
    }
    let mut text = String::new();
    let mut rows = Vec::new();
    let (mut c, mut a, mut dl, mut s) = (0u64, 0u64, 0u64, 0u64);
    let (mut t, mut w) = (0u64, 0u64);
    for q in &queues {
        c += u64::from(q.connections);
        a += q.active as u64;
        dl += q.delayed as u64;
        s += q.delivered;
        t += u64::from(q.target);
        w += q.waiting_for_slot();
        let count = if which == "active" {
            q.active
        } else {
            q.delayed
        };
        if count >= threshold.max(1) {
            let _ = writeln!(
                text,
                "Domain: {:>30}  C:{:>3}  A:{:>7}  D:{:>6}  S:{:>6}  T:{:>3}  W:{:>6}",
                q.domain,
                q.connections,
                q.active,
                q.delayed,
                q.delivered,
                q.target,
                q.waiting_for_slot()
            );
            rows.push(json!({
                "domain": q.domain,
                "connections": q.connections,
                "active": q.active,
                "delayed": q.delayed,
                "sent": q.delivered,
                "target": q.target,
                "idle": q.idle,
                "waiting_for_slot": q.waiting_for_slot(),
                "waiting_on": q.waiting_for,
                "unreachable": q.unreachable,
            }));
        }
    }
    let _ = writeln!(
        text,
        "{:>38}  C:{c:>4}  A:{a:>7}  D:{dl:>6}  S:{s:>6}  T:{t:>4}  W:{w:>6}",
        "Total:"
    );
    let json = json!({
        "binding": name,
        "domains": rows,
        "total": {
            "connections": c, "active": a, "delayed": dl, "sent": s,
            "target": t, "waiting_for_slot": w,
        },
    });
    Output::ok(text, json)
}
