//! `injection summary`: who injected what, per SMTP AUTH user and per HTTP API key name
//! (bindery's own command; Momentum has none). A password or an API key never appears: SMTP
//! users are shown by login, API keys by the name their file gives them.

use serde_json::json;

use super::Output;
use crate::daemon::Daemon;

pub fn run<D: Daemon>(d: &D) -> Output {
    let figures = d.injections().figures();
    let mut text = format!(
        "{:<5} {:<32} {:>10} {:>10} {:>10} {:>12} {:>10}\n",
        "Via", "Name", "Logins", "Failed", "Messages", "Recipients", "Rejected"
    );
    let mut rows = Vec::new();
    for (via, name, c) in &figures {
        text.push_str(&format!(
            "{:<5} {:<32} {:>10} {:>10} {:>10} {:>12} {:>10}\n",
            via.word(),
            name,
            c.logins,
            c.failed_logins,
            c.messages,
            c.recipients,
            c.rejected
        ));
        rows.push(json!({
            "via": via,
            "name": name,
            "logins": c.logins,
            "failed_logins": c.failed_logins,
            "messages": c.messages,
            "recipients": c.recipients,
            "rejected_recipients": c.rejected,
        }));
    }
    Output::ok(text, json!({ "injections": rows }))
}
