//! A complete message becomes a spooled one: end-of-DATA policy (which may refuse it or
//! assign its binding), id, Received header, durable write, log record, and the reply that
//! says so.

use bindery_smtp::Reply;
use bindery_smtp::Transaction;
use bindery_smtp::received::{Trace, received};
use bindery_spool::{Envelope, RcptState, Recipient, Ret};
use tokio::sync::oneshot;

use bindery_policy::{Conn, Message, Verdict};

use crate::connection::code_reply;
use crate::mainlog::Reception;
use crate::settings::DefaultBinding;
use crate::spill::Spill;
use crate::{Generation, Shared, unix_now};

fn notify_text(n: &bindery_smtp::command::Notify) -> String {
    if n.never {
        return "NEVER".into();
    }
    let words = [
        (n.success, "SUCCESS"),
        (n.failure, "FAILURE"),
        (n.delay, "DELAY"),
    ];
    words
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, w)| *w)
        .collect::<Vec<_>>()
        .join(",")
}

/// A message's body as it goes to the spool, with its id.
enum Body {
    /// Held in memory, trace header first.
    Whole(String, Vec<u8>),
    /// Written to the spool as it arrived.
    Streamed(String, bindery_spool::Incoming),
}

/// Runs the end-of-DATA callouts, spools `t` and returns the reply for the end of DATA.
/// Never answers 250 before the spool said the message is durable. `spill` is what was
/// written to the spool already of a large message (`t.body` is then its last part).
/// Where a message came in: the listener's name (for the mainlog) and the name our
/// `Received:` header gives (`Received_Hostname`).
pub struct Place<'a> {
    pub listener: &'a str,
    pub received_by: &'a str,
    /// The session's id in Momentum's logs (empty when none is written).
    pub session: &'a str,
    /// Set to `scriptlet` when the end-of-DATA policy refused the message (the rejectlog's
    /// `M` field).
    pub refused_by: &'a mut &'static str,
}

pub async fn receive(
    shared: &Shared,
    generation: &Generation,
    mut t: Box<Transaction>,
    mut spill: Option<Spill>,
    place: Place<'_>,
    conn: &mut Conn,
    msg: &mut Message,
) -> Reply {
    let Place {
        listener,
        received_by,
        session,
        refused_by,
    } = place;
    let g = &generation.globals;
    let rcpt_strings: Vec<String> = t.recipients.iter().map(|r| r.mailbox.to_string()).collect();
    let verdict = if generation.policy.has_message_callouts() {
        // The session's envelope is the truth; the policy's copy may have missed a MAIL check.
        msg.sender = t.sender.as_ref().map(|m| m.to_string()).unwrap_or_default();
        msg.recipients.clone_from(&rcpt_strings);
        // A spilled message shows the policy its header section (all a callout reads).
        let seen = match &mut spill {
            Some(s) => &mut s.head,
            None => &mut t.body,
        };
        msg.body = std::mem::take(seen);
        let v = generation.policy.message(conn, msg);
        *seen = std::mem::take(&mut msg.body);
        v
    } else {
        Verdict::Accept { binding: None }
    };
    let (binding_group, binding) = match verdict {
        Verdict::Refuse(code) => {
            *refused_by = "scriptlet";
            return code_reply(code);
        }
        Verdict::Accept { binding: Some(a) } => (a.group, a.binding),
        Verdict::Accept { binding: None } => {
            if g.default_binding == DefaultBinding::None {
                return Reply::new(
                    451,
                    "4.4.4",
                    "Error: no binding assigned to message (default_binding = none)",
                );
            }
            (g.binding_group.clone(), g.binding.clone())
        }
    };
    let time = unix_now();
    let body = match spill {
        None => {
            let id = shared.ids.next(time);
            let header = received(&Trace {
                helo: &t.helo,
                peer: t.peer,
                hostname: received_by,
                protocol: t.protocol,
                id: &id,
                single_rcpt: (rcpt_strings.len() == 1).then(|| rcpt_strings[0].as_str()),
                time,
            });
            let mut body = Vec::with_capacity(header.len() + t.body.len());
            body.extend_from_slice(header.as_bytes());
            body.extend_from_slice(&t.body);
            Body::Whole(id, body)
        }
        Some(mut s) => {
            // Its id and trace header were made when it began to be written.
            s.write(std::mem::take(&mut t.body)).await;
            let id = s.id.clone();
            match s.finish() {
                Some(incoming) => Body::Streamed(id, incoming),
                None => return Reply::new(451, "4.3.0", "Error: queue file write error"),
            }
        }
    };
    let (id, size) = match &body {
        Body::Whole(id, b) => (id.clone(), b.len() as u64),
        Body::Streamed(id, inc) => (id.clone(), inc.len()),
    };
    let sender = t.sender.as_ref().map(|m| m.to_string()).unwrap_or_default();
    let mut env = Envelope {
        id: id.as_str().into(),
        received: time,
        peer: t.peer.to_string().into(),
        helo: t.helo.as_str().into(),
        sender: sender.as_str().into(),
        recipients: t
            .recipients
            .iter()
            .zip(&rcpt_strings)
            .map(|(r, a)| Recipient {
                address: a.as_str().into(),
                notify: r.params.notify.as_ref().map(|n| notify_text(n).into()),
                orcpt: r.params.orcpt.as_deref().map(Box::from),
                state: RcptState::Pending,
            })
            .collect(),
        binding_group: binding_group.as_str().into(),
        binding: binding.as_str().into(),
        ret: t.params.ret.map(|r| match r {
            bindery_smtp::command::Ret::Full => Ret::Full,
            bindery_smtp::command::Ret::Hdrs => Ret::Hdrs,
        }),
        envid: t.params.envid.as_deref().map(Box::from),
        smtputf8: t.params.smtputf8,
        next_attempt: time,
        ..Envelope::default()
    };
    let (tx, rx) = oneshot::channel();
    let done: bindery_spool::Completion = Box::new(move |r| {
        let _ = tx.send(r);
    });
    let queued = match body {
        Body::Whole(_, body) => {
            env.seal(&body);
            let queued = env.clone();
            shared.spool.store(env, body, done);
            queued
        }
        Body::Streamed(_, incoming) => {
            (env.body_len, env.body_crc) = incoming.seal();
            let queued = env.clone();
            shared.spool.store_incoming(env, incoming, done);
            queued
        }
    };
    match rx.await {
        Ok(Ok(())) => {
            if let Some(log) = &shared.mainlog {
                log.record(&Reception {
                    kind: "reception",
                    id: &id,
                    time,
                    peer: t.peer.to_string(),
                    ehlo: &t.helo,
                    sender: &sender,
                    recipients: rcpt_strings.iter().map(String::as_str).collect(),
                    size,
                    binding_group: &binding_group,
                    binding: &binding,
                    listener,
                });
            }
            if !shared.eclogs.is_empty() {
                let peer_ip = t.peer.to_string();
                for rcpt in &rcpt_strings {
                    shared
                        .eclogs
                        .reception(&bindery_delivery::eclog::Reception {
                            time,
                            id: &id,
                            conn: session,
                            rcpt,
                            sender: &sender,
                            peer_ip: &peer_ip,
                            size,
                            protocol: "esmtp",
                            binding_group: &binding_group,
                            binding: &binding,
                        });
                }
            }
            tracing::debug!(%id, size, "message spooled");
            shared.engine.received(queued);
            Reply::new(250, "2.0.0", format!("OK queued as {id}"))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "spool write failed; answered 451");
            Reply::new(451, "4.3.0", "Error: queue file write error")
        }
        Err(_) => Reply::new(451, "4.3.0", "Error: queue file write error"),
    }
}
