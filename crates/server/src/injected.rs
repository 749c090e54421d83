//! Messages the policy injects (`msg:inject`): handed over during a callout
//! ([`DaemonInjector`], the daemon's [`bindery_policy::inject::Injector`]), received
//! afterwards on a task of their own ([`run`]) through the same road as a client's message:
//! the end-of-DATA callouts (with `msg.recv_method` = `P_INTERNAL`), the spool, the
//! mainlog. The queue between them is bounded: a script that injects faster than the spool
//! takes gets an error, not unbounded memory.

use std::sync::{OnceLock, Weak};

use bindery_policy::inject::{Injected, Injector, RecvMethod};
use bindery_policy::{Conn, Message};
use bindery_smtp::Transaction;
use bindery_smtp::address::parse_mailbox;
use bindery_smtp::command::{MailParams, RcptParams};
use bindery_smtp::session::Recipient;
use tokio::sync::mpsc;

use crate::Shared;

/// Injected messages waiting for reception at most.
pub const QUEUE: usize = 1024;

/// The listener name injected messages are logged with.
pub const LISTENER: &str = "internal";

#[derive(Default)]
pub struct DaemonInjector {
    tx: OnceLock<mpsc::Sender<Injected>>,
}

impl DaemonInjector {
    /// Connects the injector to the daemon: from now on messages are received.
    pub fn start(&self, shared: Weak<Shared>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        if self.tx.set(tx).is_ok() {
            tokio::spawn(run(shared, rx));
        }
    }
}

impl Injector for DaemonInjector {
    fn inject(&self, m: Injected) -> Result<(), String> {
        let tx = self.tx.get().ok_or("the daemon is not running")?;
        tx.try_send(m).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                format!("{QUEUE} injected messages are waiting already; try later")
            }
            mpsc::error::TrySendError::Closed(_) => "the daemon is stopping".to_string(),
        })
    }
}

/// The transaction an injected message is received as: from the loopback address, the
/// host's own name as HELO.
fn transaction(m: &Injected, hostname: &str) -> Result<Transaction, String> {
    let sender = if m.sender.is_empty() {
        None
    } else {
        Some(
            parse_mailbox(&m.sender)
                .map_err(|e| format!("sender {:?} is not an address ({e:?})", m.sender))?,
        )
    };
    let recipients = m
        .recipients
        .iter()
        .map(|r| {
            parse_mailbox(r)
                .map(|mailbox| Recipient {
                    mailbox,
                    params: RcptParams::default(),
                })
                .map_err(|e| format!("recipient {r:?} is not an address ({e:?})"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Transaction {
        peer: std::net::IpAddr::from([127, 0, 0, 1]),
        helo: hostname.to_string(),
        protocol: "LOCAL",
        auth_user: None,
        sender,
        params: MailParams::default(),
        recipients,
        body: m.body.clone(),
    })
}

async fn run(shared: Weak<Shared>, mut rx: mpsc::Receiver<Injected>) {
    while let Some(m) = rx.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let generation = shared.current();
        let t = match transaction(&m, &generation.globals.hostname) {
            Ok(t) => Box::new(t),
            Err(e) => {
                tracing::warn!(error = %e, "a message the policy injected was refused");
                continue;
            }
        };
        let mut conn = Conn::new(t.peer, LISTENER, &[]);
        let mut msg = Message {
            sender: m.sender.clone(),
            recipients: m.recipients.clone(),
            context: m.context,
            recv_method: RecvMethod::Internal,
            depth: m.depth,
            ..Message::default()
        };
        let mut refused_by = "";
        let mut discarded = None;
        let place = crate::reception::Place {
            listener: LISTENER,
            received_by: &generation.globals.hostname,
            session: "",
            refused_by: &mut refused_by,
            discarded: &mut discarded,
        };
        let reply =
            crate::reception::receive(&shared, &generation, t, None, place, &mut conn, &mut msg)
                .await;
        if reply.code / 100 == 2 {
            tracing::info!(reply = %reply.lines.join(" "), rcpts = m.recipients.len(), "message injected by the policy");
        } else {
            tracing::warn!(code = reply.code, reply = %reply.lines.join(" "), "a message the policy injected was refused");
        }
    }
}
