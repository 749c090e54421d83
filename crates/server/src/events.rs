//! Delivery outcomes to the policy in force: Momentum's `core_log_delivery_v1`,
//! `core_log_transient_failure_v1` and `core_log_permanent_failure_v1` callouts
//! (`bindery_delivery::events` is the seam). The policy is swapped with each generation.

use arc_swap::ArcSwap;
use bindery_delivery::events::{Event, EventKind, Events, LoginQuery};
use bindery_policy::{Assigned, Callout, Code, Message, Policy};

pub struct PolicyEvents {
    policy: ArcSwap<Policy>,
}

impl PolicyEvents {
    pub fn new(policy: Policy) -> PolicyEvents {
        PolicyEvents {
            policy: ArcSwap::from_pointee(policy),
        }
    }

    /// The policy of a new generation.
    pub fn install(&self, policy: Policy) {
        self.policy.store(std::sync::Arc::new(policy));
    }
}

fn callout(kind: EventKind) -> Callout {
    match kind {
        EventKind::Delivery => Callout::LogDelivery,
        EventKind::Transient => Callout::LogTransient,
        EventKind::Permanent => Callout::LogPermanent,
        EventKind::Requeue => Callout::PreRequeue,
    }
}

impl Events for PolicyEvents {
    fn wants(&self, kind: EventKind) -> bool {
        self.policy.load().has(callout(kind))
    }

    fn record(&self, e: &Event<'_>) -> Option<(u16, String)> {
        let policy = self.policy.load();
        let mut msg = Message {
            id: e.id.to_string(),
            sender: e.sender.to_string(),
            recipients: vec![e.rcpt.to_string()],
            binding: Some(Assigned {
                group: e.binding_group.to_string(),
                binding: e.binding.to_string(),
            }),
            ..Message::default()
        };
        let note = Code {
            code: e.code,
            text: e.text.to_string(),
        };
        policy
            .log_event(callout(e.kind), &mut msg, e.domain, e.time, &note)
            .map(|c| (c.code, c.text))
    }

    fn wants_login(&self) -> bool {
        self.policy.load().has_smtp_auth_config()
    }

    /// Momentum's `outbound_smtp_auth_config(msg)`: the message of `q`'s recipients, with
    /// its context; the context as the hook left it.
    fn login(&self, q: LoginQuery<'_>) -> Vec<(String, String)> {
        let policy = self.policy.load();
        let mut msg = Message {
            id: q.id.to_string(),
            sender: q.sender.to_string(),
            recipients: q.rcpts.iter().map(|r| r.to_string()).collect(),
            binding: Some(Assigned {
                group: q.binding_group.to_string(),
                binding: q.binding.to_string(),
            }),
            context: q.context.into_iter().collect(),
            ..Message::default()
        };
        policy.smtp_auth_config(&mut msg);
        msg.context.into_iter().collect()
    }
}
