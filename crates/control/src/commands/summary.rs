//! `summary [reset]`: the whole daemon's figures, laid out like `binding summary`
//! (Momentum documents the fields of `summary` but not its spacing).

use std::fmt::Write;

use serde_json::json;

use super::Output;
use crate::daemon::Daemon;

pub fn summary<D: Daemon>(d: &D) -> Output {
    let queues = d.queues();
    let stats = d.stats();
    let (c, rejected, _) = stats.since_reset();
    let active: u64 = queues.iter().map(|q| q.active as u64).sum();
    let delayed: u64 = queues.iter().map(|q| q.delayed as u64).sum();
    let outbound: u64 = queues.iter().map(|q| u64::from(q.connections)).sum();
    let mut domains: Vec<&str> = queues
        .iter()
        .filter(|q| q.active + q.delayed > 0)
        .map(|q| q.domain.as_str())
        .collect();
    domains.sort_unstable();
    domains.dedup();
    let (delivery_rate, reception_rate) = stats.global_rates();
    let now = d.now();
    let uptime = now.saturating_sub(stats.started);
    let since_reset = now.saturating_sub(stats.reset_at());
    let inbound = d.inbound_sessions();
    let mut s = String::from("Summary Statistics\n");
    let _ = writeln!(s, "\tOutbound Concurrency: {outbound:>6}");
    let _ = writeln!(s, "\tInbound Concurrency: {inbound:>6}");
    let _ = writeln!(s, "\tActive Domains: {:>6}", domains.len());
    let _ = writeln!(s, "\tActive Queue Size: {active:>6}");
    let _ = writeln!(s, "\tDelayed Queue Size: {delayed:>6}");
    let _ = writeln!(s, "\tTotal Queue Size: {:>6}", active + delayed);
    let _ = writeln!(s, "\tSuccessfully Delivered Messages: {:>6}", c.delivered);
    let _ = writeln!(s, "\tFailed Messages: {:>6}", c.failed);
    let _ = writeln!(s, "\tRejected Messages: {rejected:>6}");
    let _ = writeln!(s, "\tReceived Messages: {:>6}", c.received);
    let _ = writeln!(s, "\tDelivery Rate: {delivery_rate:>6.2} messages/second");
    let _ = writeln!(s, "\tReception Rate: {reception_rate:>6.2} messages/second");
    let _ = writeln!(s, "\tStatistics Last Reset: {since_reset:>6} seconds ago");
    let _ = writeln!(s, "\tUptime: {uptime:>6} seconds");
    let json = json!({
        "outbound_concurrency": outbound,
        "inbound_concurrency": inbound,
        "active_domains": domains.len(),
        "active_queue": active,
        "delayed_queue": delayed,
        "total_queue": active + delayed,
        "delivered": c.delivered,
        "failed": c.failed,
        "transient": c.transient,
        "bounced": c.bounced,
        "rejected": rejected,
        "received": c.received,
        "delivery_rate": delivery_rate,
        "reception_rate": reception_rate,
        "last_reset": stats.reset_at(),
        "uptime": uptime,
    });
    Output::ok(s, json)
}

pub fn reset<D: Daemon>(d: &D) -> Output {
    d.stats().reset(d.now());
    Output::ok("Statistics reset.\n", json!({ "reset": d.now() }))
}
