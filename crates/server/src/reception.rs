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
use crate::signing;
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
    /// Written to the spool as it arrived, with the DKIM signatures to send before it.
    Streamed(String, bindery_spool::Incoming, Option<String>),
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
    /// Set to the reason when a script discarded the message (`msg:discard`): the client
    /// gets the success reply all the same, and the rejectlog the reason.
    pub discarded: &'a mut Option<Reply>,
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
        discarded,
    } = place;
    let g = &generation.globals;
    let mut rcpt_strings: Vec<String> =
        t.recipients.iter().map(|r| r.mailbox.to_string()).collect();
    // Which of the client's recipients each final one is (the policy may add some).
    let mut given: Vec<Option<usize>> = (0..rcpt_strings.len()).map(Some).collect();
    // The id is given before the callouts (`msg.id`); a spilled message has had its own since
    // it began to be written.
    let time = unix_now();
    let first_id = match &spill {
        Some(s) => s.id.clone(),
        None => shared.ids.next(time),
    };
    msg.id.clone_from(&first_id);
    let verdict = if let Some(reason) = msg.discard.clone() {
        // Discarded at RCPT: no end-of-DATA callout runs for it.
        Verdict::Discard(reason)
    } else if generation.policy.has_message_callouts() {
        // The session's envelope is the truth; the policy's copy may have missed a MAIL check.
        msg.sender = t.sender.as_ref().map(|m| m.to_string()).unwrap_or_default();
        msg.recipients.clone_from(&rcpt_strings);
        if msg.recv_method != bindery_policy::inject::RecvMethod::Internal {
            msg.recv_method = match t.protocol {
                "SMTP" => bindery_policy::inject::RecvMethod::Smtp,
                "HTTP" => bindery_policy::inject::RecvMethod::Http,
                _ => bindery_policy::inject::RecvMethod::Esmtp,
            };
        }
        // A spilled message shows the policy its header section (all a callout reads).
        let seen = match &mut spill {
            Some(s) => &mut s.head,
            None => &mut t.body,
        };
        msg.body = std::mem::take(seen);
        let v = generation.policy.message(conn, msg);
        *seen = std::mem::take(&mut msg.body);
        // `vctx:add_recipient` and the like change the recipients.
        if msg.recipients != rcpt_strings {
            if msg.recipients.is_empty() {
                return Reply::new(554, "5.5.1", "Error: the policy left no recipient");
            }
            let index: std::collections::HashMap<&str, usize> = rcpt_strings
                .iter()
                .enumerate()
                .map(|(i, r)| (r.as_str(), i))
                .collect();
            given = msg
                .recipients
                .iter()
                .map(|r| index.get(r.as_str()).copied())
                .collect();
            rcpt_strings = std::mem::take(&mut msg.recipients);
        }
        v
    } else {
        // A binding chosen before the end of DATA (the Transmissions API's `ip_pool`).
        Verdict::Accept {
            binding: msg.binding.clone(),
        }
    };
    // The default binding, or the reply when there is none to take.
    let resolve = |binding: Option<bindery_policy::Assigned>| match binding {
        Some(a) => Ok((a.group, a.binding)),
        None if g.default_binding == DefaultBinding::None => Err(Reply::new(
            451,
            "4.4.4",
            "Error: no binding assigned to message (default_binding = none)",
        )),
        None => Ok((g.binding_group.clone(), g.binding.clone())),
    };
    let (shares, whole) = match verdict {
        Verdict::Refuse(code) => {
            *refused_by = "scriptlet";
            return code_reply(code);
        }
        Verdict::Discard(reason) => {
            let sender = t.sender.as_ref().map(|m| m.to_string()).unwrap_or_default();
            tracing::info!(id = %first_id, reason = %format!("{} {}", reason.code, reason.text), "message discarded by policy");
            if let Some(log) = &shared.mainlog {
                log.record(&bindery_delivery::mainlog::Discard {
                    kind: "discard",
                    id: &first_id,
                    time,
                    peer: t.peer.to_string(),
                    sender: &sender,
                    recipients: rcpt_strings.iter().map(String::as_str).collect(),
                    reason: format!("{} {}", reason.code, reason.text),
                    listener,
                });
            }
            // A spilled body's file goes when the spill is dropped.
            *refused_by = "scriptlet";
            *discarded = Some(code_reply(reason));
            return Reply::new(250, "2.0.0", format!("OK queued as {first_id}"));
        }
        Verdict::Accept { binding } => match resolve(binding) {
            Ok(b) => (
                (vec![(
                    (0..rcpt_strings.len()).collect::<Vec<_>>(),
                    b,
                    None,
                    msg.routing_domain.take(),
                )]),
                true,
            ),
            Err(r) => return r,
        },
        Verdict::Split(shares) => {
            if spill.is_some() {
                // Its body went to one spool file as it arrived.
                tracing::warn!(
                    "a large message's recipients got different bindings or headers from the policy; refused"
                );
                return Reply::new(
                    451,
                    "4.3.0",
                    "Error: the policy gave this large message's recipients different bindings or headers; send it once per recipient group",
                );
            }
            let mut out = Vec::with_capacity(shares.len());
            for s in shares {
                match resolve(s.binding) {
                    Ok(b) => out.push((s.recipients, b, Some(s.body), s.routing_domain)),
                    Err(r) => return r,
                }
            }
            (out, false)
        }
    };
    // Out-of-band bounces and feedback reports (issue 22): read and logged now; the
    // recipients `bounce_behavior` or the fbl module blackhole are dropped here.
    let mut shares = shares;
    if !generation.oob.is_empty() {
        let roles: Vec<(&str, crate::oob::Role)> = rcpt_strings
            .iter()
            .filter_map(|r| {
                generation
                    .oob
                    .role(&generation.snapshot, r)
                    .map(|role| (r.as_str(), role))
            })
            .collect();
        if !roles.is_empty() {
            let body: &[u8] = match &spill {
                // A large report: its start is what is in memory.
                Some(s) => {
                    tracing::warn!(id = %first_id, "a large report: only its header section is read");
                    &s.head
                }
                None => &t.body,
            };
            let incoming = crate::oob::Incoming {
                id: &first_id,
                time,
                peer: t.peer.to_string(),
                size: body.len() as u64,
                body,
                rcpts: roles,
            };
            let drop = crate::oob::process(shared, &generation.oob, &incoming);
            if !drop.is_empty() {
                for share in &mut shares {
                    share.0.retain(|&i| !drop.contains(&rcpt_strings[i]));
                }
                shares.retain(|s| !s.0.is_empty());
                if shares.is_empty() {
                    // Every recipient was blackholed: the client is told it was taken.
                    return Reply::new(250, "2.0.0", format!("OK queued as {first_id}"));
                }
            }
        }
    }
    // DKIM (issue 20): recipients whose binding and domain sign get a copy of their own,
    // signed here, every share before any is spooled, so a signature that cannot be made
    // defers the whole message and leaves nothing half-queued.
    let shares: Vec<(signing::Share, bool)> = match &generation.signers {
        Some(signers) => signing::split(signers, &generation.snapshot, shares, &rcpt_strings),
        None => shares.into_iter().map(|s| (s, false)).collect(),
    };
    let whole = whole && shares.len() == 1;
    if spill.is_some() && !whole {
        tracing::warn!("a large message's recipients are signed for some and not others; refused");
        return Reply::new(
            451,
            "4.3.0",
            "Error: this large message is DKIM-signed for some recipients and not others; send it once per recipient group",
        );
    }
    let mut prepared = Vec::with_capacity(shares.len());
    for ((rcpts, binding, own_body, routing), sign) in shares {
        let signed = match (&generation.signers, sign) {
            // Its body is in the spool already: signed there, once it is all written.
            (Some(_), true) if spill.is_some() => None,
            (Some(signers), true) => {
                let content = own_body.as_deref().unwrap_or(t.body.as_slice());
                match signing::sign(shared, signers, &binding.1, content, conn, msg) {
                    Ok(s) => Some(s),
                    Err(reply) => return reply,
                }
            }
            _ => None,
        };
        prepared.push((rcpts, binding, own_body, routing, signed, sign));
    }
    let mut ids = Vec::with_capacity(prepared.len());
    for (rcpts, (binding_group, binding), own_body, routing, signed, sign) in prepared {
        let body = if whole && let Some(mut s) = spill.take() {
            // Its id and trace header were made when it began to be written.
            s.write(std::mem::take(&mut t.body)).await;
            let id = s.id.clone();
            let head = std::mem::take(&mut s.head);
            let Some(incoming) = s.finish() else {
                return Reply::new(451, "4.3.0", "Error: queue file write error");
            };
            match (&generation.signers, sign) {
                (Some(signers), true) => {
                    match signing::sign_spooled(
                        shared, signers, &binding, incoming, head, conn, msg,
                    )
                    .await
                    {
                        Ok((incoming, fields)) => {
                            Body::Streamed(id, incoming, (!fields.is_empty()).then_some(fields))
                        }
                        Err(reply) => return reply,
                    }
                }
                _ => Body::Streamed(id, incoming, None),
            }
        } else {
            let id = if ids.is_empty() {
                first_id.clone()
            } else {
                shared.ids.next(time)
            };
            let given = match &own_body {
                Some(b) => b.as_slice(),
                None => t.body.as_slice(),
            };
            let (fields, content) = match &signed {
                Some(s) => (s.fields.as_str(), s.message.as_deref().unwrap_or(given)),
                None => ("", given),
            };
            let header = received(&Trace {
                helo: &t.helo,
                peer: t.peer,
                hostname: received_by,
                protocol: t.protocol,
                id: &id,
                single_rcpt: (rcpts.len() == 1).then(|| rcpt_strings[rcpts[0]].as_str()),
                time,
                auth_user: t.auth_user.as_deref(),
            });
            let mut body = Vec::with_capacity(fields.len() + header.len() + content.len());
            body.extend_from_slice(fields.as_bytes());
            body.extend_from_slice(header.as_bytes());
            body.extend_from_slice(content);
            Body::Whole(id, body)
        };
        let one = Spooled {
            t: &t,
            rcpts: &rcpts,
            rcpt_strings: &rcpt_strings,
            given: &given,
            binding_group: &binding_group,
            binding: &binding,
            routing: routing.as_deref(),
            context: smtp_auth_context(&msg.context),
            time,
            listener,
            session,
        };
        match spool_one(shared, one, body).await {
            Ok(id) => ids.push(id),
            Err(reply) => return reply,
        }
    }
    Reply::new(250, "2.0.0", format!("OK queued as {}", ids.join(" ")))
}

/// What of the policy's message context the message keeps for delivery: Momentum's
/// `outbound_smtp_auth_*` entries, which override the binding's and domain's login.
fn smtp_auth_context(
    context: &std::collections::HashMap<String, String>,
) -> Option<bindery_spool::envelope::Context> {
    use bindery_delivery::options::{CTX_KEY, CTX_PASS, CTX_TYPE, CTX_USER};
    let kept: Vec<(Box<str>, Box<str>)> = [CTX_TYPE, CTX_USER, CTX_PASS, CTX_KEY]
        .iter()
        .filter_map(|&k| {
            context
                .get(k)
                .map(|v| (Box::from(k), Box::from(v.as_str())))
        })
        .collect();
    (!kept.is_empty()).then(|| kept.into_boxed_slice())
}

/// One message to spool: the transaction, which of its recipients, on which binding.
struct Spooled<'a> {
    t: &'a Transaction,
    rcpts: &'a [usize],
    rcpt_strings: &'a [String],
    /// For each of `rcpt_strings`, the index of the client's recipient it is, if any.
    given: &'a [Option<usize>],
    binding_group: &'a str,
    binding: &'a str,
    /// `msg:routing_domain`, if a script set one.
    routing: Option<&'a str>,
    /// The message-context entries delivery acts on (`smtp_auth_context`).
    context: Option<bindery_spool::envelope::Context>,
    time: u64,
    listener: &'a str,
    session: &'a str,
}

/// Writes one message durably, logs its reception and queues it; its id, or the reply for
/// a write that failed.
async fn spool_one(shared: &Shared, one: Spooled<'_>, body: Body) -> Result<String, Reply> {
    let Spooled {
        t,
        rcpts,
        rcpt_strings,
        given,
        binding_group,
        binding,
        routing,
        context,
        time,
        listener,
        session,
    } = one;
    let (id, size) = match &body {
        Body::Whole(id, b) => (id.clone(), b.len() as u64),
        Body::Streamed(id, inc, _) => (id.clone(), inc.len()),
    };
    let sender = t.sender.as_ref().map(|m| m.to_string()).unwrap_or_default();
    let mut env = Envelope {
        id: id.as_str().into(),
        received: time,
        peer: t.peer.to_string().into(),
        helo: t.helo.as_str().into(),
        sender: sender.as_str().into(),
        // A recipient the client gave keeps its DSN parameters; one the policy added has none.
        recipients: rcpts
            .iter()
            .filter_map(|&i| Some((rcpt_strings.get(i)?, given.get(i).copied().flatten())))
            .map(|(a, g)| {
                let given = g.and_then(|g| t.recipients.get(g));
                Recipient {
                    address: a.as_str().into(),
                    notify: given
                        .and_then(|r| r.params.notify.as_ref())
                        .map(|n| notify_text(n).into()),
                    orcpt: given.and_then(|r| r.params.orcpt.as_deref()).map(Box::from),
                    state: RcptState::Pending,
                }
            })
            .collect(),
        binding_group: binding_group.into(),
        binding: binding.into(),
        ret: t.params.ret.map(|r| match r {
            bindery_smtp::command::Ret::Full => Ret::Full,
            bindery_smtp::command::Ret::Hdrs => Ret::Hdrs,
        }),
        envid: t.params.envid.as_deref().map(Box::from),
        smtputf8: t.params.smtputf8,
        routing: routing.map(Box::from),
        context,
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
        Body::Streamed(_, incoming, prefix) => {
            (env.body_len, env.body_crc) = incoming.seal();
            env.prefix = prefix.map(String::into_boxed_str);
            let queued = env.clone();
            shared.spool.store_incoming(env, incoming, done);
            queued
        }
    };
    let recipients: Vec<&str> = rcpts
        .iter()
        .filter_map(|&i| rcpt_strings.get(i).map(String::as_str))
        .collect();
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
                    recipients: recipients.clone(),
                    size,
                    binding_group,
                    binding,
                    listener,
                });
            }
            if !shared.eclogs.is_empty() {
                // Momentum writes `rest` and an `unknown` address for HTTP injections.
                let (protocol, peer_ip) = match t.protocol {
                    "HTTP" => ("rest", "unknown".to_string()),
                    _ => ("esmtp", t.peer.to_string()),
                };
                for rcpt in &recipients {
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
                            protocol,
                            binding_group,
                            binding,
                        });
                }
            }
            tracing::debug!(%id, size, "message spooled");
            shared.engine.received(queued);
            Ok(id)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "spool write failed; answered 451");
            Err(Reply::new(451, "4.3.0", "Error: queue file write error"))
        }
        Err(_) => Err(Reply::new(451, "4.3.0", "Error: queue file write error")),
    }
}
