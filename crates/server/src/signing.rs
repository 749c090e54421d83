//! DKIM signing at reception (issue 20): which recipients' copies are signed, and the
//! signing itself, once per message, after the binding is known and before the spool
//! write, so the spooled bytes are the signed bytes and a retry never signs again.
//!
//! `opendkim_sign` resolves per binding and recipient domain (`binding "b" { domain "d" {
//! opendkim_sign = false } }`), so one message can need a signed copy for some recipients
//! and an unsigned one for others: each becomes a spooled message of its own, as the
//! policy's per-recipient changes already do.

use std::collections::HashSet;
use std::sync::Arc;

use bindery_config::Snapshot;
use bindery_control::signing::{Mode, Record};
use bindery_dkim::plan::{Outcome, StatsMode};
use bindery_dkim::{Signed, Signers};
use bindery_policy::{Conn, Message};
use bindery_smtp::Reply;

use crate::Shared;

/// A share of a message's recipients: their indexes, the binding (group, name), the share's
/// own body when the policy changed it, and `msg:routing_domain`.
pub type Share = (
    Vec<usize>,
    (String, String),
    Option<Vec<u8>>,
    Option<String>,
);

/// The domain whose options a recipient's mail takes: the routing domain, else its own.
fn domain_of<'a>(rcpt: &'a str, routing: Option<&'a str>) -> &'a str {
    routing.unwrap_or_else(|| rcpt.rsplit_once('@').map_or("", |(_, d)| d))
}

/// Splits every share in two where `opendkim_sign` differs between its recipients; each
/// comes back with whether it is to be signed.
pub fn split(
    signers: &Signers,
    snap: &Snapshot,
    shares: Vec<Share>,
    rcpts: &[String],
) -> Vec<(Share, bool)> {
    let mut out = Vec::with_capacity(shares.len());
    for (list, binding, body, routing) in shares {
        let (signed, unsigned): (Vec<usize>, Vec<usize>) = list.iter().partition(|&&i| {
            let rcpt = rcpts.get(i).map_or("", String::as_str);
            signers.wanted(snap, &binding.1, domain_of(rcpt, routing.as_deref()))
        });
        match (signed.is_empty(), unsigned.is_empty()) {
            (false, true) => out.push(((signed, binding, body, routing), true)),
            (true, _) => out.push(((unsigned, binding, body, routing), false)),
            (false, false) => {
                out.push((
                    (signed, binding.clone(), body.clone(), routing.clone()),
                    true,
                ));
                out.push(((unsigned, binding, body, routing), false));
            }
        }
    }
    out
}

fn mode(m: StatsMode) -> Mode {
    match m {
        StatsMode::All => Mode::All,
        StatsMode::Global => Mode::Global,
        StatsMode::Off => Mode::Off,
    }
}

/// Signs `content` for mail on `binding`, counts it in `signing_stats`, and returns the
/// signatures and the bytes they cover; or the reply that defers the message when a
/// signature it needs could not be made (unless the stanza says to send it unsigned).
pub fn sign(
    shared: &Shared,
    signers: &Signers,
    binding: &str,
    content: &[u8],
    conn: &Conn,
    msg: &Message,
) -> Result<Signed, Reply> {
    let has = |key: &str| msg.context.contains_key(key) || conn.context.contains_key(key);
    let signed = signers.sign(content, &has);
    account(shared, signers, binding, &signed)?;
    Ok(signed)
}

/// Signs a message that went to the spool as it arrived (over 1 MiB): `incoming` is read
/// back in chunks on a blocking thread (from the page cache: it was just written), so memory
/// stays bounded whatever its size. Returns the writer and the signature fields, to be sent
/// before the spooled bytes (`Envelope::prefix`).
pub async fn sign_spooled(
    shared: &Shared,
    signers: &Arc<Signers>,
    binding: &str,
    incoming: bindery_spool::Incoming,
    head: Vec<u8>,
    conn: &Conn,
    msg: &Message,
) -> Result<(bindery_spool::Incoming, String), Reply> {
    // The context keys `sign_condition` may ask for, owned: the signing thread outlives
    // the borrow of the session.
    let keys: HashSet<String> = msg
        .context
        .keys()
        .chain(conn.context.keys())
        .cloned()
        .collect();
    let signers2 = Arc::clone(signers);
    let done = tokio::task::spawn_blocking(move || {
        let signed = signers2.sign_streamed(&head, &|k| keys.contains(k), &mut |each| {
            incoming.read_body(each).map_err(|e| e.to_string())
        });
        (incoming, signed)
    })
    .await;
    let Ok((incoming, signed)) = done else {
        return Err(Reply::new(
            451,
            "4.3.0",
            "Error: DKIM signing failed; try again later",
        ));
    };
    account(shared, signers, binding, &signed)?;
    Ok((incoming, signed.fields))
}

/// Counts a message in `signing_stats` and logs its failures; the reply that defers it when
/// one of them is not to be sent unsigned.
fn account(
    shared: &Shared,
    signers: &Signers,
    binding: &str,
    signed: &Signed,
) -> Result<(), Reply> {
    let records: Vec<Record<'_>> = signed
        .outcomes
        .iter()
        .map(|o| match o {
            Outcome::Signed { domain, .. } => Record {
                domain: Some(domain),
                signed: 1,
                failed: 0,
            },
            Outcome::Skipped { domain, .. } => Record {
                domain: domain.as_deref(),
                signed: 0,
                failed: 0,
            },
            Outcome::Failed { domain, .. } => Record {
                domain: Some(domain),
                signed: 0,
                failed: 1,
            },
        })
        .collect();
    shared
        .signing
        .record(mode(signers.stats_mode), binding, signed.elapsed, &records);
    for o in &signed.outcomes {
        if let Outcome::Failed {
            instance,
            domain,
            reason,
            send_unsigned,
        } = o
        {
            tracing::warn!(
                opendkim = %instance,
                %domain,
                %reason,
                action = if *send_unsigned { "sent without this signature (send_unsigned_on_error)" } else { "deferred (451)" },
                "DKIM signing failed"
            );
        }
    }
    if let Some((domain, _)) = signed.blocking_failure() {
        return Err(Reply::new(
            451,
            "4.3.0",
            format!("Error: cannot DKIM-sign for {domain} now; try again later"),
        ));
    }
    Ok(())
}
