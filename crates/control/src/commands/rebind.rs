//! `rebind NAME|all [DOMAIN]`: runs binding assignment again for queued mail (the policy's
//! set_binding callouts with the message's headers, else the default binding) and moves
//! what now belongs elsewhere. Output: `Rebound 12 messages.`

use bindery_delivery::engine::console::Select;
use serde_json::json;

use super::Output;
use crate::daemon::Daemon;

pub async fn run<D: Daemon>(d: &D, args: &[&str]) -> Output {
    let (binding, domain) = match args {
        [b] => (*b, None),
        [b, dom] => (*b, Some(*dom)),
        _ => return Output::error("usage: rebind NAME|all [DOMAIN]"),
    };
    let sel = Select {
        binding: (binding != "all").then_some(binding),
        domain,
        id: None,
    };
    let n = d.rebind(sel).await;
    Output::ok(
        format!("Rebound {n} messages.\n"),
        json!({ "binding": binding, "domain": domain, "rebound": n }),
    )
}
