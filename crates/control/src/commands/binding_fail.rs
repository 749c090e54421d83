//! `binding fail domain [quiet] NAME DOMAIN|all` and `binding flush domain NAME DOMAIN|all`.
//!
//! Fail ends the mail with `554 5.0.0 Message manually purged.`, bouncing it to the sender
//! (as a delivery failure would) unless `quiet`. Flush makes delayed mail due now. Outputs
//! are Momentum's: `example.com purged, 62 messages failed.` and
//! `example.com flushed.  12 messages requeued.`

use bindery_delivery::engine::console::Select;
use serde_json::json;

use super::Output;
use crate::daemon::Daemon;

/// The reply failed mail gets.
pub const PURGED: &str = "554 5.0.0 Message manually purged.";

fn select<'a, D: Daemon>(d: &D, name: &'a str, domain: &'a str) -> Result<Select<'a>, Output> {
    let known =
        d.snapshot().binding_id(name).is_some() || d.queues().iter().any(|q| q.binding == name);
    if !known {
        return Err(Output::error(format!("No such binding: {name}")));
    }
    Ok(Select {
        binding: Some(name),
        domain: (domain != "all").then_some(domain),
        id: None,
    })
}

pub async fn fail<D: Daemon>(d: &D, args: &[&str]) -> Output {
    let (quiet, name, domain) = match args {
        ["quiet", name, domain] => (true, *name, *domain),
        [name, domain] => (false, *name, *domain),
        _ => return Output::error("usage: binding fail domain [quiet] NAME DOMAIN|all"),
    };
    let sel = match select(d, name, domain) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let n = d.fail(sel, PURGED, quiet).await;
    Output::ok(
        format!("{domain} purged, {n} messages failed.\n"),
        json!({ "binding": name, "domain": domain, "failed": n, "quiet": quiet }),
    )
}

pub fn flush<D: Daemon>(d: &D, args: &[&str]) -> Output {
    let [name, domain] = args else {
        return Output::error("usage: binding flush domain NAME DOMAIN|all");
    };
    let sel = match select(d, name, domain) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let n = d.flush(sel);
    Output::ok(
        format!("{domain} flushed.  {n} messages requeued.\n"),
        json!({ "binding": name, "domain": domain, "requeued": n }),
    )
}
