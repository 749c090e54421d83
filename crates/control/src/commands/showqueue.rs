//! `showqueue [binding NAME|binding all] DOMAIN [LIMIT,OFFSET]`: the queued messages of a
//! domain (default binding `default`, default `100,0`). Momentum's layout:
//!
//! ```text
//! [active/default] B3/1D-18426-471AACF3 Created: 1070244212
//!   From: <sender> To: <recipients>
//! ```

use std::fmt::Write;

use bindery_delivery::engine::console::Select;
use serde_json::json;

use super::{Output, number};
use crate::daemon::Daemon;

const USAGE: &str = "usage: showqueue [binding NAME|binding all] DOMAIN [LIMIT,OFFSET]";

pub fn run<D: Daemon>(d: &D, args: &[&str]) -> Output {
    let (binding, rest) = match args {
        ["binding", "all", rest @ ..] => (None, rest),
        ["binding", name, rest @ ..] => (Some(*name), rest),
        rest => (Some("default"), rest),
    };
    let (domain, window) = match rest {
        [domain] => (*domain, "100,0"),
        [domain, window] => (*domain, *window),
        _ => return Output::error(USAGE),
    };
    let Some((limit, offset)) = window.split_once(',') else {
        return Output::error(USAGE);
    };
    let (limit, offset) = match (number(limit, "LIMIT"), number(offset, "OFFSET")) {
        (Ok(l), Ok(o)) => (l, o),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let sel = Select {
        binding,
        domain: Some(domain),
        id: None,
    };
    let mut text = String::new();
    let mut json = Vec::new();
    for p in d.parts(sel, limit, offset) {
        let queue = if p.due.is_some() { "delayed" } else { "active" };
        let _ = writeln!(
            text,
            "[{queue}/{}] {} Created: {}",
            p.binding, p.id, p.received
        );
        let _ = writeln!(text, "  From: {} To: {}", p.sender, p.recipients.join(", "));
        json.push(json!({
            "queue": queue,
            "binding": p.binding,
            "id": p.id,
            "created": p.received,
            "from": p.sender,
            "to": p.recipients,
            "due": p.due,
            "attempts": p.attempts,
        }));
    }
    Output::ok(text, serde_json::Value::Array(json))
}
