//! What a transaction's replies mean for each recipient of a part: delivered, retried later,
//! or failed (and reported to the sender). Also the persistence of those states and the
//! generation of reports.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bindery_queue::retry::Next;
use bindery_queue::{QueueId, RetryPolicy};
use bindery_smtp::client::{Outcome, Response};
use bindery_spool::{Envelope, RcptState, Recipient, Ret};
use tokio::sync::oneshot;

use super::records::{Attempt, Conn, ReportMade};
use super::{Inner, Message, Part};
use crate::dsn::{self, Report, ReportKind, ReportRecipient};
use crate::eclog::{self, Fate, stage};
use crate::options::{DeliveryOptions, InlineOriginal};

/// The connection a reply came over.
#[derive(Clone, Debug, Default)]
pub(crate) struct Via {
    /// The connection's id in Momentum's logs; empty when none was made or no such log
    /// is written.
    pub id: String,
    /// Bytes written in the transaction (see `Outbound::transaction_bytes`).
    pub bytes: u64,
    pub source: Option<IpAddr>,
    pub host: Option<String>,
    pub addr: Option<IpAddr>,
    pub tls: bool,
    /// The server offered DSN, so NOTIFY went on and success reports are its job.
    pub dsn: bool,
}

impl Via {
    /// The connection as the mainlog records show it.
    fn record(&self) -> Conn<'_> {
        Conn {
            source_ip: self.source.map(|ip| ip.to_string()),
            remote_host: self.host.as_deref(),
            remote_ip: self.addr.map(|ip| ip.to_string()),
        }
    }
}

/// Parses a reply we write ourselves (`554 5.4.7 ...`).
fn internal(text: &str) -> Response {
    let (code, rest) = text.split_once(' ').unwrap_or((text, ""));
    Response::local(code.parse().unwrap_or(554), rest)
}

fn notify_has(r: &Recipient, word: &str) -> bool {
    r.notify
        .as_deref()
        .is_some_and(|n| n.split(',').any(|w| w.trim().eq_ignore_ascii_case(word)))
}

/// Whether a failure of `r` should be reported: NOTIFY absent (the default is FAILURE,DELAY)
/// or containing FAILURE; never for NOTIFY=NEVER.
fn wants_failure_report(r: &Recipient) -> bool {
    r.notify.is_none() || notify_has(r, "FAILURE")
}

/// Whether `r` may get a delay notice: NOTIFY absent (FAILURE,DELAY) or containing DELAY.
fn wants_delay_report(r: &Recipient) -> bool {
    r.notify.is_none() || notify_has(r, "DELAY")
}

/// Whether the part's deferral is the moment for the message's next delay notice
/// (`generate_delay_dsn`, Momentum's delay_dsn schedule): it is due and one of the deferred
/// recipients asked for delay notices. Counts the notice in the envelope, under its lock, so
/// two parts of one message deferred at once send it once.
fn delay_notice_now(env: &mut Envelope, s: &Settled, opts: &DeliveryOptions, now: u64) -> bool {
    let Some((interval, max)) = opts.delay_notices else {
        return false;
    };
    if env.sender.is_empty() || s.retry_at.is_none() {
        return false;
    }
    let due =
        bindery_queue::retry::delay_notice_due(env.received, interval, max, env.delay_notices);
    let wanted = s.retry.iter().any(|&i| {
        env.recipients
            .get(i as usize)
            .is_some_and(wants_delay_report)
    });
    if !wanted || due.is_none_or(|t| now < t) {
        return false;
    }
    env.delay_notices += 1;
    true
}

/// A part that never reached a transaction: every recipient gets `reply`, whose class
/// (4xx or 5xx) decides between a retry and a failure.
pub(super) async fn no_connection(
    inner: &Arc<Inner>,
    q: QueueId,
    opts: &DeliveryOptions,
    part: Part,
    reply: &Response,
) {
    // A whole queue is deferred at once here: `delayed_binding_domain_fuzz` spreads its
    // next attempts.
    let fuzz = match opts.delayed_fuzz {
        0 => 0,
        f => fastrand::u64(0..=f),
    };
    let each = |_| (reply, stage::NOT_CONNECTED);
    settle(inner, q, opts, part, each, &Via::default(), fuzz).await;
}

/// A transaction's outcome.
pub(super) async fn apply(
    inner: &Arc<Inner>,
    q: QueueId,
    opts: &DeliveryOptions,
    part: Part,
    outcome: &Outcome,
    via: &Via,
) {
    let each = |k| (outcome.for_recipient(k), stage::of(outcome.phase_for(k)));
    settle(inner, q, opts, part, each, via, 0).await;
}

/// What the log and the reports need of a message once a part is settled: its fields, with
/// only the part's own recipients. Copying the whole recipient list for every batch would
/// make a 20,000-recipient message cost O(n) per batch, O(n²) in all.
struct View {
    /// The envelope with an empty recipient list.
    env: Envelope,
    rcpts: Vec<(u32, Recipient)>,
}

impl View {
    fn of(env: &mut Envelope, part: &[u32]) -> View {
        let rcpts = part
            .iter()
            .filter_map(|&i| Some((i, env.recipients.get(i as usize)?.clone())))
            .collect();
        let all = std::mem::take(&mut env.recipients);
        let view = env.clone();
        env.recipients = all;
        View { env: view, rcpts }
    }

    fn rcpt(&self, i: u32) -> Option<&Recipient> {
        self.rcpts.iter().find(|(k, _)| *k == i).map(|(_, r)| r)
    }

    fn address(&self, i: u32) -> &str {
        self.rcpt(i).map_or("", |r| r.address.as_ref())
    }
}

struct Settled {
    delivered: Vec<(u32, Response)>,
    failed: Vec<(u32, Response)>,
    /// The connection stage of each of `failed`, in order (for Momentum's logs).
    failed_stage: Vec<u8>,
    retry: Vec<u32>,
    /// The connection stage of each of `retry`, in order.
    retry_stage: Vec<u8>,
    retry_at: Option<u64>,
    transient_reply: Option<Response>,
}

/// `each(k)`: the reply deciding recipient `k` of the part, and the connection stage it came
/// at. `fuzz`: seconds added to a retry's time (never past the message's expiry).
fn decide<'r>(
    env: &mut Envelope,
    part: &Part,
    retry: &RetryPolicy,
    each: impl Fn(usize) -> (&'r Response, u8),
    now: u64,
    fuzz: u64,
) -> Settled {
    let mut s = Settled {
        delivered: Vec::new(),
        failed: Vec::new(),
        failed_stage: Vec::new(),
        retry: Vec::new(),
        retry_stage: Vec::new(),
        retry_at: None,
        transient_reply: None,
    };
    for (k, &i) in part.rcpts.iter().enumerate() {
        let (r, stage) = each(k);
        let Some(rc) = env.recipients.get_mut(i as usize) else {
            continue;
        };
        if r.is_positive_completion() {
            rc.state = RcptState::Delivered;
            s.delivered.push((i, r.clone()));
        } else if r.is_permanent() {
            rc.state = RcptState::Failed;
            s.failed.push((i, r.clone()));
            s.failed_stage.push(stage);
        } else {
            s.retry.push(i);
            s.retry_stage.push(stage);
            s.transient_reply.get_or_insert_with(|| r.clone());
        }
    }
    if !s.retry.is_empty() {
        match retry.after_transient(part.attempts, env.received, now) {
            Next::RetryAt(t) => {
                let expires = env.received.saturating_add(retry.message_expiration);
                let t = t.saturating_add(fuzz).min(expires.max(t));
                s.retry_at = Some(t);
                env.next_attempt = t;
            }
            Next::Fail(text) => {
                let r = internal(text);
                for i in std::mem::take(&mut s.retry) {
                    if let Some(rc) = env.recipients.get_mut(i as usize) {
                        rc.state = RcptState::Failed;
                    }
                    s.failed.push((i, r.clone()));
                }
                s.failed_stage.append(&mut s.retry_stage);
            }
        }
    }
    env.attempts = env.attempts.max(part.attempts);
    s
}

async fn settle<'r>(
    inner: &Arc<Inner>,
    q: QueueId,
    opts: &DeliveryOptions,
    mut part: Part,
    each: impl Fn(usize) -> (&'r Response, u8),
    via: &Via,
    fuzz: u64,
) {
    let now = inner.now_ms() / 1000;
    part.attempts += 1;
    let msg = Arc::clone(&part.msg);
    let (settled, view, delay_notice) = {
        let mut env = msg.env.lock().unwrap_or_else(|p| p.into_inner());
        let s = decide(&mut env, &part, &opts.retry, each, now, fuzz);
        let notice = delay_notice_now(&mut env, &s, opts, now);
        // Copied out so no lock is held while the log and reports are written.
        (s, View::of(&mut env, &part.rcpts), notice)
    };
    let mut settled = settled;
    if let Some(events) = &inner.cfg.events {
        tell(events.as_ref(), &view, &mut settled, now);
    }
    let classes = classify(inner, &view, &settled);
    log_attempts(inner, &view, &settled, &classes, via, part.attempts);
    if opts.adaptive.is_some() {
        // The distinct failure replies, in order, through the response rules.
        let mut replies: Vec<String> = Vec::new();
        let failures = settled.failed.iter().map(|(_, r)| r);
        for r in failures.chain(settled.transient_reply.as_ref()) {
            let line = r.one_line();
            if !replies.contains(&line) {
                replies.push(line);
            }
        }
        super::adaptive::replies(inner, q, opts, &replies).await;
    }
    let (delivered, failed) = (settled.delivered.len() as u64, settled.failed.len() as u64);
    let transient = if settled.retry_at.is_some() {
        settled.retry.len() as u64
    } else {
        0
    };
    let slot = {
        let mut st = inner.lock();
        let c = Inner::conns(&mut st, q);
        c.inflight = c.inflight.saturating_sub(1);
        c.delivered += delivered;
        c.failed += failed;
        c.transient += transient;
        st.queues.get(q).binding
    };
    inner.cfg.stats.count(slot, |t| {
        t.delivered.fetch_add(delivered, Ordering::Relaxed);
        t.failed.fetch_add(failed, Ordering::Relaxed);
        t.transient.fetch_add(transient, Ordering::Relaxed);
    });

    // Reports to the sender.
    if !view.env.sender.is_empty() {
        let failures: Vec<&(u32, Response)> = settled
            .failed
            .iter()
            .filter(|(i, _)| view.rcpt(*i).is_some_and(wants_failure_report))
            .collect();
        if opts.generate_bounces && !failures.is_empty() {
            report(inner, opts, &view, ReportKind::Failure, &failures, via).await;
        }
        if delay_notice && let Some(r) = &settled.transient_reply {
            let delayed: Vec<(u32, Response)> = settled
                .retry
                .iter()
                .filter(|&&i| view.rcpt(i).is_some_and(wants_delay_report))
                .map(|&i| (i, r.clone()))
                .collect();
            let delayed: Vec<&(u32, Response)> = delayed.iter().collect();
            report(inner, opts, &view, ReportKind::Delay, &delayed, via).await;
        }
        if !via.dsn {
            let successes: Vec<&(u32, Response)> = settled
                .delivered
                .iter()
                .filter(|(i, _)| view.rcpt(*i).is_some_and(|r| notify_has(r, "SUCCESS")))
                .collect();
            if !successes.is_empty() {
                report(inner, opts, &view, ReportKind::Success, &successes, via).await;
            }
        }
    }

    // A pure transient failure changes no recipient's state: the envelope is not rewritten.
    // (After a crash the message is retried at once with its last written attempt count;
    // an fsync per deferral would make a dead destination cost one disk flush per message.)
    let changed: Vec<u32> = (settled.delivered.iter().chain(&settled.failed))
        .map(|(i, _)| *i)
        .collect();
    // Requeue what is left, or count the part done.
    match settled.retry_at {
        Some(t) => {
            part.rcpts = settled.retry.into_iter().collect();
            let mut st = inner.lock();
            let now_ms = inner.now_ms();
            st.queues.push(q, part, t.saturating_mul(1000), now_ms);
            drop(st);
            inner.wake.notify_one();
        }
        None => {
            drop(part);
            msg.parts.fetch_sub(1, Ordering::AcqRel);
        }
    }
    if delay_notice {
        // The count of notices sent is in the envelope (a whole rewrite, which carries the
        // recipients' states too): a restart does not send one twice.
        persist(inner, msg, None).await;
    } else if !changed.is_empty() {
        persist(inner, msg, Some(changed)).await;
    }
}

/// Writes the message's current state: removes it when no part is left, else records the
/// recipients in `changed` (a journal line of that batch's size: `Spool::settle_recipients`),
/// or with `None` rewrites the whole envelope. Reads the state under the message's lock at
/// write time (and the write holds that lock), so concurrent parts of one message can only
/// ever write a newer state, and nothing is written after the removal is asked for.
///
/// The removal is awaited: the connection takes its next part only once the delivered
/// message has left the spool, so a crash at any moment re-sends at most what was on the wire
/// (one message per connection). Handed to a reaper thread instead, delivered messages queued
/// for it came back after a kill -9 by the hundred. The unlinks run on the blocking pool, in
/// parallel across connections.
pub(super) async fn persist(inner: &Arc<Inner>, msg: Arc<Message>, changed: Option<Vec<u32>>) {
    let spool = Arc::clone(&inner.cfg.spool);
    if msg.parts.load(Ordering::Acquire) == 0 {
        let id = {
            let env = msg.env.lock().unwrap_or_else(|p| p.into_inner());
            if msg.removed.swap(true, Ordering::AcqRel) {
                return;
            }
            env.id.to_string()
        };
        let r = tokio::task::spawn_blocking(move || spool.remove(&id)).await;
        match r {
            Ok(Ok(())) => {}
            // Left in the spool, the message is delivered again after a restart; never lost.
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot remove a delivered message"),
            Err(e) => tracing::warn!(error = %e, "spool task failed"),
        }
        return;
    }
    let r = tokio::task::spawn_blocking(move || {
        let env = msg.env.lock().unwrap_or_else(|p| p.into_inner());
        if msg.removed.load(Ordering::Acquire) {
            return Ok(());
        }
        match &changed {
            Some(c) => spool.settle_recipients(&env, c),
            None => spool.update(&env),
        }
    })
    .await;
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "spool write after delivery failed"),
        Err(e) => tracing::warn!(error = %e, "spool task failed"),
    }
}

/// Tells `events` each recipient's outcome; a reply a script rewrote replaces the one the
/// logs and reports would carry.
fn tell(events: &dyn crate::events::Events, view: &View, s: &mut Settled, now: u64) {
    use crate::events::{Event, EventKind};
    let env = &view.env;
    let one = |kind: EventKind, i: u32, r: &Response| -> Option<Response> {
        let rcpt = view.address(i);
        let domain = rcpt.rsplit_once('@').map_or("", |(_, d)| d);
        let text = r.one_line();
        let text = text.split_once(' ').map_or("", |(_, t)| t);
        let e = Event {
            kind,
            id: &env.id,
            sender: &env.sender,
            rcpt,
            binding_group: &env.binding_group,
            binding: &env.binding,
            domain,
            code: r.code,
            text,
            time: now,
        };
        events
            .record(&e)
            .map(|(code, text)| Response::local(code, text))
    };
    if events.wants(EventKind::Delivery) {
        for (i, r) in &mut s.delivered {
            if let Some(new) = one(EventKind::Delivery, *i, r) {
                *r = new;
            }
        }
    }
    if events.wants(EventKind::Permanent) {
        for (i, r) in &mut s.failed {
            if let Some(new) = one(EventKind::Permanent, *i, r) {
                *r = new;
            }
        }
    }
    if events.wants(EventKind::Transient)
        && s.retry_at.is_some()
        && let Some(r) = s.transient_reply.clone()
    {
        for &i in &s.retry {
            // One reply stands for every deferred recipient of the part: not rewritten.
            let _ = one(EventKind::Transient, i, &r);
        }
    }
    if events.wants(EventKind::Requeue)
        && s.retry_at.is_some()
        && let Some(r) = s.transient_reply.clone()
    {
        for &i in &s.retry {
            let _ = one(EventKind::Requeue, i, &r);
        }
    }
}

/// The bounce class of every failure of a settled part (issue 22): each failed
/// recipient's, in order, and the transient reply's. Counted per binding, domain and class.
struct Classes {
    failed: Vec<u16>,
    transient: Option<u16>,
}

fn classify(inner: &Inner, view: &View, s: &Settled) -> Classes {
    let mut out = Classes {
        failed: Vec::with_capacity(s.failed.len()),
        transient: None,
    };
    if s.failed.is_empty() && s.retry_at.is_none() {
        return out;
    }
    let c = inner.cfg.bounces.load();
    // A part's recipients share their domain.
    let domain = view
        .rcpts
        .first()
        .and_then(|(i, _)| view.address(*i).rsplit_once('@'))
        .map_or("", |(_, d)| d);
    let env = &view.env;
    // Replies repeat within a part: one classification per distinct reply.
    let mut last: Option<(&Response, u16)> = None;
    for (_, r) in &s.failed {
        let class = match last {
            Some((p, k)) if p == r => k,
            _ => c.smtp(&r.one_line(), domain).class,
        };
        last = Some((r, class));
        out.failed.push(class);
        inner
            .cfg
            .stats
            .bounces
            .count(&env.binding, domain, class, true, 1);
    }
    if let (Some(_), Some(r)) = (s.retry_at, &s.transient_reply) {
        let class = c.smtp(&r.one_line(), domain).class;
        out.transient = Some(class);
        let n = s.retry.len() as u64;
        inner
            .cfg
            .stats
            .bounces
            .count(&env.binding, domain, class, false, n);
    }
    out
}

fn log_attempts(
    inner: &Inner,
    view: &View,
    s: &Settled,
    classes: &Classes,
    via: &Via,
    attempt: u32,
) {
    if inner.cfg.mainlog.is_some() {
        log_json(inner, view, s, classes, via, attempt);
    }
    if !inner.cfg.eclogs.is_empty() {
        log_momentum(inner, view, s, classes, via, attempt);
    }
}

fn log_json(inner: &Inner, view: &View, s: &Settled, classes: &Classes, via: &Via, attempt: u32) {
    let env = &view.env;
    let time = inner.now_ms() / 1000;
    let rec = |kind: &'static str, i: u32, reply: String, next: Option<u64>, class: Option<u16>| {
        Attempt {
            kind,
            id: &env.id,
            time,
            sender: &env.sender,
            rcpt: view.address(i),
            binding_group: &env.binding_group,
            binding: &env.binding,
            conn: via.record(),
            reply,
            attempt,
            next_attempt: next,
            tls: via.tls,
            bounce_class: class,
        }
    };
    for (i, r) in &s.delivered {
        inner.log(&rec("delivery", *i, r.one_line(), None, None));
    }
    for ((i, r), c) in s.failed.iter().zip(&classes.failed) {
        inner.log(&rec("permanent", *i, r.one_line(), None, Some(*c)));
    }
    if let (Some(t), Some(r)) = (s.retry_at, &s.transient_reply) {
        for i in &s.retry {
            inner.log(&rec(
                "transient",
                *i,
                r.one_line(),
                Some(t),
                classes.transient,
            ));
        }
    }
}

/// The mainlog's `D`/`T`/`P` records and the bouncelog's, one per recipient.
fn log_momentum(
    inner: &Inner,
    view: &View,
    s: &Settled,
    classes: &Classes,
    via: &Via,
    attempt: u32,
) {
    let env = &view.env;
    let now_ms = inner.now_ms();
    let elapsed = eclog::fields::elapsed(env.received.saturating_mul(1000), now_ms);
    let ip = via.addr.map(|a| a.to_string()).unwrap_or_default();
    let one = |fate: Fate, i: u32, stage: u8, reply: &str, class: u16| {
        inner.cfg.eclogs.attempt(
            fate,
            &eclog::Attempt {
                time: now_ms / 1000,
                id: &env.id,
                conn: &via.id,
                rcpt: view.address(i),
                sender: &env.sender,
                size: env.body_len,
                bytes: via.bytes,
                binding_group: &env.binding_group,
                binding: &env.binding,
                stage,
                retries: attempt.saturating_sub(1),
                elapsed: &elapsed,
                ip: &ip,
                reply,
                class,
            },
        );
    };
    for (i, _) in &s.delivered {
        one(Fate::Delivered, *i, 0, "", 0);
    }
    for (((i, r), st), c) in s.failed.iter().zip(&s.failed_stage).zip(&classes.failed) {
        one(Fate::Permanent, *i, *st, &r.one_line(), *c);
    }
    if let (Some(_), Some(r)) = (s.retry_at, &s.transient_reply) {
        let text = r.one_line();
        let c = classes
            .transient
            .unwrap_or(bindery_bounce::class::UNDETERMINED);
        for (i, st) in s.retry.iter().zip(&s.retry_stage) {
            one(Fate::Transient, *i, *st, &text, c);
        }
    }
}

/// Builds a report for `rcpts`, spools it as a new message from the null sender to the
/// original sender, and queues it on the report binding.
async fn report(
    inner: &Arc<Inner>,
    opts: &DeliveryOptions,
    view: &View,
    kind: ReportKind,
    rcpts: &[&(u32, Response)],
    via: &Via,
) {
    let env = &view.env;
    let now = inner.now_ms() / 1000;
    let hostname = &inner.cfg.hostname;
    let inline = match (opts.inline_original, env.ret) {
        (InlineOriginal::None, _) => InlineOriginal::None,
        (_, Some(Ret::Hdrs)) => InlineOriginal::Headers,
        (_, Some(Ret::Full)) => InlineOriginal::All,
        (o, None) => o,
    };
    let original = if inline == InlineOriginal::None {
        Vec::new()
    } else {
        inner
            .message(&env.id, env.prefix.clone())
            .await
            .unwrap_or_default()
    };
    let from = opts
        .mailerdaemon
        .clone()
        .unwrap_or_else(|| format!("mailer-daemon@{hostname}"));
    let id = inner.cfg.ids.next(now);
    let body = dsn::build(&Report {
        kind,
        hostname,
        from: &from,
        to: &env.sender,
        id: &id,
        original_id: &env.id,
        envid: env.envid.as_deref(),
        arrival: env.received,
        now,
        retry_until: Some(env.received.saturating_add(opts.retry.message_expiration)),
        recipients: rcpts
            .iter()
            .map(|(i, r)| {
                let rc = view.rcpt(*i);
                ReportRecipient {
                    address: view.address(*i).to_string(),
                    orcpt: rc.and_then(|rc| rc.orcpt.as_deref()).map(str::to_string),
                    status: r.status(),
                    remote_mta: via.host.clone(),
                    diagnostic: r.one_line(),
                }
            })
            .collect(),
        original: &original,
        inline,
    });
    let (binding, group) = &inner.cfg.report_binding;
    let mut new = Envelope {
        id: id.as_str().into(),
        received: now,
        peer: "internal".into(),
        helo: hostname.as_str().into(),
        sender: "".into(),
        recipients: Box::new([Recipient::pending(env.sender.clone())]),
        binding_group: Arc::clone(group),
        binding: Arc::clone(binding),
        next_attempt: now,
        ..Envelope::default()
    };
    new.seal(&body);
    let (tx, rx) = oneshot::channel();
    inner.cfg.spool.store(
        new.clone(),
        body,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    match rx.await {
        Ok(Ok(())) => {
            inner.counters.reports.fetch_add(1, Ordering::Relaxed);
            if kind == ReportKind::Failure {
                let slot = inner.binding_of(&env.binding);
                inner.cfg.stats.count(slot, |t| {
                    t.bounced.fetch_add(1, Ordering::Relaxed);
                });
            }
            // Momentum logs the bounce it generates as a reception of protocol `internal`.
            inner.cfg.eclogs.reception(&eclog::Reception {
                time: now,
                id: &id,
                conn: "",
                rcpt: &env.sender,
                sender: "",
                peer_ip: "unknown",
                size: new.body_len,
                protocol: "internal",
                binding_group: group,
                binding,
            });
            inner.log(&ReportMade {
                kind: match kind {
                    ReportKind::Failure => "bounce",
                    ReportKind::Success => "success_dsn",
                    ReportKind::Delay => "delay_dsn",
                },
                id: &id,
                original_id: &env.id,
                time: now,
                to: &env.sender,
                rcpts: rcpts.iter().map(|(i, _)| view.address(*i)).collect(),
                replies: rcpts.iter().map(|(_, r)| r.one_line()).collect(),
                binding_group: &env.binding_group,
                binding: &env.binding,
                conn: via.record(),
                report_binding: binding,
            });
            inner.enqueue(new);
        }
        _ => tracing::warn!(original = %env.id, "could not spool a delivery report"),
    }
}
