//! `message details|fail|retry ID`.

use std::fmt::Write;

use bindery_delivery::engine::console::Select;
use serde_json::json;

use super::Output;
use super::binding_fail::PURGED;
use crate::daemon::Daemon;

pub async fn run<D: Daemon>(d: &D, which: &str, id: &str) -> Output {
    let Some(m) = d.message(id) else {
        return Output::error(format!("Message {id} is not queued"));
    };
    let sel = Select {
        id: Some(id),
        ..Select::default()
    };
    match which {
        "details" => {
            let mut t = String::new();
            let _ = writeln!(t, "Message {}", m.id);
            let _ = writeln!(t, "\tCreated: {} from {}", m.received, m.peer);
            let _ = writeln!(t, "\tFrom: <{}>", m.sender);
            let _ = writeln!(t, "\tBinding: {}/{}", m.binding_group, m.binding);
            let _ = writeln!(t, "\tSize: {} bytes", m.size);
            let _ = writeln!(t, "\tAttempts: {}", m.attempts);
            let _ = writeln!(t, "\tNext Attempt: {}", m.next_attempt);
            for (address, state) in &m.recipients {
                let _ = writeln!(t, "\tTo: <{address}> {state}");
            }
            for p in &m.parts {
                let queue = p
                    .due
                    .map_or("active".to_string(), |d| format!("delayed until {d}"));
                let _ = writeln!(t, "\tQueued: [{}/{}] {queue}", p.binding, p.domain);
            }
            let json = json!({
                "id": m.id,
                "created": m.received,
                "peer": m.peer,
                "from": m.sender,
                "binding_group": m.binding_group,
                "binding": m.binding,
                "size": m.size,
                "attempts": m.attempts,
                "next_attempt": m.next_attempt,
                "recipients": m.recipients.iter().map(|(a, s)| json!({"address": a, "state": s})).collect::<Vec<_>>(),
                "queued": m.parts.iter().map(|p| json!({"binding": p.binding, "domain": p.domain, "due": p.due})).collect::<Vec<_>>(),
            });
            Output::ok(t, json)
        }
        "fail" => {
            let n = d.fail(sel, PURGED, false).await;
            Output::ok(
                format!("Message {id} failed ({n} parts).\n"),
                json!({ "id": id, "failed": n }),
            )
        }
        "retry" => {
            let n = d.flush(sel);
            Output::ok(
                format!("Message {id} requeued for immediate delivery ({n} parts).\n"),
                json!({ "id": id, "requeued": n }),
            )
        }
        other => Output::error(format!(
            "usage: message details|fail|retry ID (not `{other}`)"
        )),
    }
}
