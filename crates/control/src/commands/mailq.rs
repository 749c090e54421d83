//! `mailq [-d DOMAIN]... [-b BINDING]... [-l LIMIT]`: queue sizes per (binding, domain),
//! largest first, at most LIMIT rows (default 20). Momentum's layout:
//!
//! ```text
//! Group/Binding                                       Domain      AQ      DQ
//! default/default                                  yahoo.com      11       0
//! ```

use std::fmt::Write;

use serde_json::json;

use super::{Output, number};
use crate::daemon::Daemon;

pub fn run<D: Daemon>(d: &D, args: &[&str]) -> Output {
    let mut domains: Vec<String> = Vec::new();
    let mut bindings: Vec<&str> = Vec::new();
    let mut limit = 20;
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).copied();
        match (args[i], value) {
            ("-d", Some(v)) => domains.push(v.to_ascii_lowercase()),
            ("-b", Some(v)) => bindings.push(v),
            ("-l", Some(v)) => match number(v, "-l") {
                Ok(n) => limit = n,
                Err(e) => return e,
            },
            _ => return Output::error("usage: mailq [-d DOMAIN]... [-b BINDING]... [-l LIMIT]"),
        }
        i += 2;
    }
    let snap = d.snapshot();
    let group_of = |b: &str| {
        snap.binding_id(b).map_or("-".to_string(), |id| {
            snap.group_name(snap.group_of(id)).to_string()
        })
    };
    let mut rows: Vec<_> = d
        .queues()
        .into_iter()
        .filter(|q| q.active + q.delayed > 0)
        .filter(|q| domains.is_empty() || domains.contains(&q.domain))
        .filter(|q| bindings.is_empty() || bindings.contains(&q.binding.as_str()))
        .collect();
    rows.sort_by(|a, b| {
        (b.active + b.delayed)
            .cmp(&(a.active + a.delayed))
            .then_with(|| (&a.binding, &a.domain).cmp(&(&b.binding, &b.domain)))
    });
    rows.truncate(limit);
    let mut text = format!(
        "{:<30}{:>28}{:>8}{:>8}\n",
        "Group/Binding", "Domain", "AQ", "DQ"
    );
    let mut json = Vec::new();
    for q in &rows {
        let gb = format!("{}/{}", group_of(&q.binding), q.binding);
        let _ = writeln!(
            text,
            "{gb:<30}{:>28}{:>8}{:>8}",
            format!(" {}", q.domain),
            q.active,
            q.delayed
        );
        json.push(json!({
            "group": group_of(&q.binding),
            "binding": q.binding,
            "domain": q.domain,
            "active": q.active,
            "delayed": q.delayed,
        }));
    }
    Output::ok(text, serde_json::Value::Array(json))
}
