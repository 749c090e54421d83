//! One outbound connection's life for a (binding, domain) queue: route, connect (failing
//! over to the next address), send parts until the queue is empty or a limit is reached,
//! move on to the next queue waiting on the same site (`sites.rs`), wait `idle_timeout` for
//! more, then QUIT.
//!
//! The task lives as long as its connection, so its size is paid per open connection: the
//! rare or short states (connecting, settling a failed route, applying a reply, QUIT) are
//! boxed, which took it from 5.8 KB to 2.9 KB (`-Zprint-type-sizes`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bindery_queue::{CapId, QueueId, SiteId};
use bindery_smtp::client::{ClientConfig, Origin, OutRecipient, Outgoing, Response, TlsWish};

use super::connects::ConnectLimits;
use super::hosts::{self, HostBusy, HostClaim, HostOptions};
use super::outcome::{self, Via};
use super::sites::SiteKey;
use super::{CapList, Inner, Part, YIELD_AFTER_MS};
use crate::options::{DeliveryOptions, EhloName};
use crate::outbound::{ConnectFailure, Outbound};
use crate::route::route;

/// Releases the connection slot, and its places under the caps across queues, however the
/// task ends.
struct Slot {
    inner: Arc<Inner>,
    /// The queue it serves now: a connection can move to another queue of its site.
    q: QueueId,
    opening: bool,
    caps: CapList,
    /// The site it counts for, once routed (or admitted by the dispatcher).
    site: Option<SiteId>,
}

impl Slot {
    fn ready(&mut self) {
        if self.opening {
            self.opening = false;
            let mut st = self.inner.lock();
            let c = Inner::conns(&mut st, self.q);
            c.opening = c.opening.saturating_sub(1);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.ready();
        {
            let mut st = self.inner.lock();
            if st.leave_queue(self.q).1 {
                st.ready.push(self.q);
            }
            if let Some(s) = self.site {
                st.leave_site(s);
            }
            // Counted closed before its places under the caps are given back: the dispatcher
            // may open another in them at once, and the count must never pass the caps (it
            // did, by one, for a moment: `a_server_cap_is_shared_in_turns` saw 5 under 4).
            self.inner
                .counters
                .open_connections
                .fetch_sub(1, Ordering::SeqCst);
            // The dispatcher is woken below in any case.
            st.close_caps(&self.caps);
        }
        self.inner.wake.notify_one();
    }
}

/// Takes the next part of the queue, or of the next queue waiting on the connection's site
/// (the connection then serves that queue: `slot.q` and `slot.caps` change), waiting up to
/// `idle` for either. Gives none once the queue's delivery is suspended (a console or policy
/// change takes effect at the next attempt, not at the next connection), nor when another
/// queue waits for a place under one of the connection's caps: an idle connection does not
/// keep a place somebody needs.
async fn next_part(inner: &Inner, slot: &mut Slot, idle: Duration) -> Option<Part> {
    let deadline = tokio::time::Instant::now() + idle;
    loop {
        let (own, site) = {
            let mut st = inner.lock();
            inner.adaptive_fresh(&mut st, slot.q);
            if inner.options(&mut st, slot.q).suspend {
                return None;
            }
            let now = inner.now_ms();
            if Inner::held(&mut st, slot.q, now).is_some() {
                return None;
            }
            if let Some(p) = take(&mut st, slot.q) {
                return Some(p);
            }
            if let Some(s) = slot.site
                && let Some(q2) = inner.migrate(&mut st, s, slot.q, &mut slot.caps)
            {
                slot.q = q2;
                if let Some(p) = take(&mut st, q2) {
                    return Some(p);
                }
                continue;
            }
            if inner.stopping.load(Ordering::SeqCst)
                || tokio::time::Instant::now() >= deadline
                || st.caps.contended(slot.q, &slot.caps)
            {
                return None;
            }
            st.caps.idle(slot.q, &slot.caps, true);
            let site = slot.site.map(|s| {
                st.sites.idle(s, true);
                st.site_notify(s)
            });
            let c = Inner::conns(&mut st, slot.q);
            c.idle += 1;
            (Arc::clone(&c.notify), site)
        };
        let site_work = async {
            match &site {
                Some(n) => n.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = own.notified() => {}
            _ = site_work => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
        let mut st = inner.lock();
        st.caps.idle(slot.q, &slot.caps, false);
        if let Some(s) = slot.site {
            st.sites.idle(s, false);
        }
        let c = Inner::conns(&mut st, slot.q);
        c.idle = c.idle.saturating_sub(1);
        if inner.stopping.load(Ordering::SeqCst) {
            return None;
        }
    }
}

/// Pops an active part and counts it in flight until `outcome` settles it.
fn take(st: &mut super::State, q: QueueId) -> Option<Part> {
    let p = st.queues.pop_active(q)?;
    Inner::conns(st, q).inflight += 1;
    Some(p)
}

fn ehlo_name(inner: &Inner, opts: &DeliveryOptions, part: &Part) -> String {
    match &opts.ehlo {
        EhloName::Hostname => inner.cfg.hostname.clone(),
        EhloName::Literal(s) => s.clone(),
        EhloName::Message => {
            let env = part.msg.env.lock().unwrap_or_else(|p| p.into_inner());
            match env.sender.rsplit_once('@') {
                Some((_, d)) if !d.is_empty() => d.to_string(),
                _ => inner.cfg.hostname.clone(),
            }
        }
    }
}

/// Why no connection was made.
enum Unconnected {
    /// Every address tried failed (or refused us): the reply of the last one.
    Failed(ConnectFailure),
    /// Every address is skipped after a failure (`host_failure_retry`) until this time (ms).
    Down(u64),
    /// No address failed, but the ones left were at their host-scope limits: the queue
    /// waits, without counting an attempt, for a token of a host's throttle (this many ms)
    /// or, with `None`, for a place under the host cap it now waits on.
    Busy(Option<u64>),
}

/// Connects to the first address that answers and greets, with the TLS fallback, skipping
/// hosts at their host-scope limits and addresses held back after a failure
/// (`health.rs`). Returns the connection with its place under its host's limits; the
/// addresses that failed on the way are added to `failed`.
async fn connect(
    inner: &Arc<Inner>,
    q: QueueId,
    opts: &DeliveryOptions,
    targets: &[crate::route::Target],
    ehlo: &str,
    failed: &mut Vec<std::net::IpAddr>,
) -> Result<(Outbound, Option<HostClaim>), Unconnected> {
    // The TLS configuration for this (tls_verify, tls_ca, tls_protocols); one that cannot be built (an
    // unreadable tls_ca) fails like a handshake, so the fallback rules apply to it.
    let tls_config = match opts.tls {
        TlsWish::No => None,
        _ => Some(
            inner
                .cfg
                .tls
                .get(opts.tls_verify, opts.tls_ca.as_deref(), opts.tls_protocols),
        ),
    };
    let open = |t, wish| {
        let cfg = tls_config.clone();
        async move {
            let cfg = match (wish, cfg) {
                (TlsWish::No, _) | (_, None) => None,
                (_, Some(Ok(c))) => Some(c),
                (_, Some(Err(e))) => {
                    return Err(ConnectFailure {
                        response: Response::local(451, format!("4.7.5 {e}")),
                        tls_failed: true,
                        answered: false,
                    });
                }
            };
            let auth = match opts.auth.login() {
                Ok(a) => a,
                Err(why) => {
                    return Err(ConnectFailure {
                        response: Response::local(451, format!("4.7.0 {why}")),
                        tls_failed: false,
                        answered: true,
                    });
                }
            };
            let session = ClientConfig {
                ehlo: ehlo.to_string(),
                tls: wish,
                protocol: opts.protocol,
                xclient: opts.xclient,
                transform_8bit: opts.transform_8bit,
                auth,
            };
            Outbound::open(t, opts.bind_address, session, cfg.as_ref(), opts.timeouts).await
        }
    };
    let snap = inner.snapshot.load_full();
    let slot = inner.lock().queues.get(q).binding;
    let binding = inner.binding_id(&snap, slot);
    let mut last = None;
    // Hosts that took no connection: some at a cap (the queue now waits on it), some
    // throttled (the soonest token).
    let mut capped = false;
    let mut throttled: Option<u64> = None;
    // The soonest an address held back after a failure is tried again.
    let mut down: Option<u64> = None;
    for t in targets {
        if let Some(until) = inner
            .health
            .down_until(opts.bind_address, t.addr.ip(), inner.now_ms())
        {
            tracing::debug!(host = %t.host, addr = %t.addr, "address held back after a failure; next host");
            down = Some(down.map_or(until, |d| d.min(until)));
            continue;
        }
        let claim = match HostOptions::resolve(&snap, binding, t) {
            None => None,
            Some(h) => match hosts::claim(inner, q, slot, h, inner.now_ms()) {
                Ok(c) => Some(c),
                Err(why) => {
                    tracing::debug!(host = %t.host, "host at its limit; next host");
                    match why {
                        HostBusy::Capped => capped = true,
                        HostBusy::Throttled(ms) => {
                            throttled = Some(throttled.map_or(ms, |t| t.min(ms)));
                        }
                    }
                    continue;
                }
            },
        };
        // Our turn among the connects to this address, from every binding.
        let limits = ConnectLimits::resolve(&snap, t);
        // Held through the plaintext retry, given back when this address is done with.
        let _turn = inner
            .connects
            .enter(t.addr.ip(), limits, inner.cfg.clock.as_ref())
            .await;
        match open(t, opts.tls).await {
            Ok(c) => return Ok((c, claim)),
            Err(f) if f.tls_failed && opts.tls == TlsWish::IfAvailable && opts.tls_fallback => {
                tracing::debug!(host = %t.host, reply = %f.response, "TLS failed; retrying in plaintext");
                match open(t, TlsWish::No).await {
                    Ok(c) => return Ok((c, claim)),
                    Err(f) => last = Some(f),
                }
            }
            Err(f) => {
                tracing::debug!(host = %t.host, addr = %t.addr, reply = %f.response, "connection failed; next host");
                // A refused certificate is no outage: the address answered.
                if !f.response.is_permanent() && !f.tls_failed && !f.answered {
                    failed.push(t.addr.ip());
                }
                last = Some(f);
            }
        }
    }
    // A host that is only busy is not a failure of the destination: the part waits for it.
    if capped || throttled.is_some() {
        return Err(Unconnected::Busy(throttled));
    }
    if let (None, Some(until)) = (&last, down) {
        return Err(Unconnected::Down(until));
    }
    Err(Unconnected::Failed(last.unwrap_or(ConnectFailure {
        response: Response::local(451, "4.4.0 no host to try"),
        tls_failed: false,
        answered: false,
    })))
}

/// Puts a part that was never attempted back at the head of its active queue, not to be
/// taken again for `wait_ms`; no attempt is counted and nothing is logged.
fn requeue(inner: &Inner, q: QueueId, p: Part, wait_ms: u64) {
    let mut st = inner.lock();
    st.queues.unpop_active(q, p);
    let now = inner.now_ms();
    let c = Inner::conns(&mut st, q);
    c.inflight = c.inflight.saturating_sub(1);
    if wait_ms > 0 {
        c.not_before_ms = now + wait_ms;
    }
}

/// Settles `first` and every part still active in the queue with `reply`: they share the
/// fate of a failed route or connection, so one dead destination is one retry per part, not
/// a storm. A permanent route error or a 5xx from every host fails them; anything else
/// defers them.
async fn settle_all(
    inner: &Arc<Inner>,
    q: QueueId,
    opts: &DeliveryOptions,
    first: Part,
    reply: &Response,
) {
    for p in with_the_rest(inner, q, first) {
        outcome::no_connection(inner, q, opts, p, reply).await;
    }
}

/// `first` and every part still active in queue `q`, taken (counted in flight).
fn with_the_rest(inner: &Inner, q: QueueId, first: Part) -> Vec<Part> {
    let mut all = vec![first];
    let mut st = inner.lock();
    while let Some(p) = take(&mut st, q) {
        all.push(p);
    }
    all
}

pub(super) async fn run(inner: Arc<Inner>, q: QueueId, caps: CapList, joined: Option<SiteId>) {
    let opened_ms = inner.now_ms();
    let mut slot = Slot {
        inner: Arc::clone(&inner),
        q,
        opening: true,
        caps,
        site: joined,
    };
    let (mut opts, domain, binding) = {
        let mut st = inner.lock();
        let o = inner.options(&mut st, q);
        let queue = st.queues.get(q);
        (o, queue.domain.to_string(), queue.binding)
    };
    let Some(first) = next_part(&inner, &mut slot, Duration::ZERO).await else {
        return;
    };
    let spread = inner.spread.fetch_add(1, Ordering::Relaxed) as usize;
    let mx_as_a = opts.mx_fallback_to_a > 0 && first.dns_failures >= opts.mx_fallback_to_a;
    let targets = match route(
        inner.cfg.resolver.as_ref(),
        &domain,
        &opts,
        &inner.cfg.prohibited,
        spread,
        mx_as_a,
    )
    .await
    {
        Ok(t) => t,
        Err(e) if is_dns_failure(e.response()) => {
            Box::pin(settle_all_dns(&inner, q, &opts, first, e.response())).await;
            return;
        }
        Err(e) => {
            Box::pin(settle_all(&inner, q, &opts, first, e.response())).await;
            return;
        }
    };
    let ehlo = ehlo_name(&inner, &opts, &first);
    // Routed: the connection counts for its site, or the part waits for one of the site's.
    let key = SiteKey::new(binding, &targets, &ehlo, &opts);
    slot.site = inner.enter_site(q, key, slot.site.take());
    let Some(site) = slot.site else {
        requeue(&inner, q, first, 0);
        return;
    };
    // Boxed: connecting is the largest state of this task (3.6 KB) and lasts only until
    // the greeting; unboxed it sized every connection's task for its whole life.
    let mut failed = Vec::new();
    let connected = Box::pin(connect(&inner, q, &opts, &targets, &ehlo, &mut failed)).await;
    let (mut conn, host) = match connected {
        Ok(c) => {
            if inner.working(q) == 0 {
                mark_failed(&inner, &opts, &failed);
            }
            inner
                .health
                .succeeded(opts.bind_address, c.0.target.addr.ip());
            Inner::conns(&mut inner.lock(), q).failing = None;
            c
        }
        Err(Unconnected::Down(until)) => {
            if let Some(reply) = gives_up(&inner, q, &opts, &targets) {
                Box::pin(settle_all(&inner, q, &opts, first, &reply)).await;
                Box::pin(settle_waiters(&inner, site, &reply)).await;
                return;
            }
            let wait = until.saturating_sub(inner.now_ms()).max(MIN_HOLD_MS);
            requeue(&inner, q, first, wait);
            return;
        }
        Err(Unconnected::Busy(wait)) => {
            // Waiting for a throttle's token: `not_before`. For a host cap's place: the cap
            // wakes the queue. The slot's drop gives back this connection's places.
            if wait.is_some() {
                // A throttled host is the sooner way out: no cap wait besides.
                inner.lock().withdraw(q);
            }
            requeue(&inner, q, first, wait.unwrap_or(0));
            return;
        }
        Err(Unconnected::Failed(f)) => {
            let others = inner.connect_failed(q);
            inner.lock().sites.shrink(site);
            if others > 0 && !f.response.is_permanent() {
                // The destination takes the connections we have, not one more: this one was
                // slow start's step too far. Its part goes back unattempted; the others
                // carry on.
                requeue(&inner, q, first, 1000);
                return;
            }
            // A TLS failure (a certificate refused, no common version) or a refused login is
            // no outage of the destination: its parts are deferred at once, as a 5xx fails
            // them.
            mark_failed(&inner, &opts, &failed);
            if !f.response.is_permanent() && !f.tls_failed && !f.answered {
                note_failure(&inner, q, &f.response);
                if gives_up(&inner, q, &opts, &targets).is_none() {
                    // The destination has not failed long enough to be given up on: the
                    // part waits, unattempted, for the first address to come back.
                    let soonest = targets
                        .iter()
                        .filter_map(|t| {
                            inner
                                .health
                                .down_until(opts.bind_address, t.addr.ip(), inner.now_ms())
                        })
                        .min()
                        .unwrap_or(0);
                    let wait = soonest.saturating_sub(inner.now_ms()).max(MIN_HOLD_MS);
                    requeue(&inner, q, first, wait);
                    return;
                }
            }
            // A 5xx greeting or EHLO from every host is a refusal, not an outage.
            Box::pin(settle_all(&inner, q, &opts, first, &f.response)).await;
            // The queues waiting on the site go to the same hosts: with no connection of the
            // site left working, they share this one's fate instead of each waiting its
            // turn to find the same.
            Box::pin(settle_waiters(&inner, site, &f.response)).await;
            // Give the destination a moment before the next connection is tried.
            let mut st = inner.lock();
            let now = inner.now_ms();
            Inner::conns(&mut st, q).not_before_ms = now + 1000;
            return;
        }
    };
    slot.ready();
    inner.proven(q);
    if !inner.cfg.eclogs.is_empty() {
        conn.id = inner.cfg.ids.next(inner.now_ms() / 1000);
    }
    let mut part = Some(first);
    let mut deliveries = 0u32;
    // Recipients sent on this connection (`max_recipients_per_connection`).
    let mut recipients = 0u32;
    // The queue the connection serves, and since when, for the site's turns.
    let mut serving = q;
    let mut since_ms = opened_ms;
    loop {
        let p = match part.take() {
            Some(p) => p,
            None => match next_part(&inner, &mut slot, opts.timeouts.idle).await {
                Some(p) => p,
                None => break,
            },
        };
        let q = slot.q;
        if q != serving {
            // It moved to another queue of its site: that queue's options apply.
            serving = q;
            opts = inner.options(&mut inner.lock(), q);
            since_ms = inner.now_ms();
        }
        // A connection that sat idle may have been closed by the remote meanwhile: that is
        // no attempt. The part goes back to the head of the queue and a fresh connection
        // (the slot's drop wakes the dispatcher) takes it at once.
        if deliveries > 0 && conn.stale() {
            tracing::debug!(host = %conn.target.host, "cached connection closed by the remote; part requeued");
            requeue(&inner, q, p, 0);
            break;
        }
        // The day's warm-up cap: over it, the part waits for tomorrow at the head of the
        // queue, and the connection ends.
        if let Some(plan) = &opts.warmup
            && !inner.warm_admit(q, plan, p.rcpts.len() as u32)
        {
            requeue(&inner, q, p, 0);
            break;
        }
        // The domain's message throttle, then the host's: they add up.
        let host_throttle = host.as_ref().and_then(|h| h.opts.throttle_messages);
        for (key, rate) in [opts.throttle_messages, host_throttle]
            .into_iter()
            .flatten()
        {
            while let Err(wait) = inner.cfg.throttles.acquire(key, rate, inner.now_ms()) {
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
        }
        let mark = match (&inner.cfg.fbl_header, opts.fbl_mark) {
            (Some(h), true) => Some(h.as_str()),
            _ => None,
        };
        let Some(msg) = outgoing(&inner, &p, opts.announce_8bit, mark).await else {
            // The body is unreadable: counted as a transient failure for the part.
            let r = Response::local(451, "4.3.0 message body unreadable in the spool");
            Box::pin(outcome::no_connection(&inner, q, &opts, p, &r)).await;
            continue;
        };
        let result = conn.send(msg).await;
        if deliveries > 0 && conn.dropped_before_mail(&result) {
            // The remote's close crossed our MAIL on the wire.
            tracing::debug!(host = %conn.target.host, "cached connection dropped before MAIL's reply; part requeued");
            requeue(&inner, q, p, 0);
            break;
        }
        let via = Via {
            id: conn.id.clone(),
            bytes: conn.transaction_bytes(),
            source: Some(conn.local.ip()),
            host: Some(conn.target.host.clone()),
            addr: Some(conn.target.addr.ip()),
            tls: conn.tls(),
            dsn: conn.extensions().dsn,
        };
        let accepted = result
            .data
            .as_ref()
            .is_some_and(|r| r.is_positive_completion());
        recipients = recipients.saturating_add(p.rcpts.len() as u32);
        Box::pin(outcome::apply(&inner, q, &opts, p, &result, &via)).await;
        if accepted {
            inner.proven(q);
        }
        deliveries += 1;
        let limit = opts.max_deliveries_per_connection;
        let rcpt_limit = opts.max_recipients_per_connection;
        if !conn.usable()
            || (limit > 0 && deliveries >= limit)
            || (rcpt_limit > 0 && recipients >= rcpt_limit)
            || inner.stopping.load(Ordering::SeqCst)
            || yields(&inner, q, &slot.caps, host.as_ref(), opened_ms)
        {
            break;
        }
        // Its turn on this queue is up while other queues of the site wait: it moves on.
        if inner.now_ms().saturating_sub(since_ms) >= YIELD_AFTER_MS {
            let mut st = inner.lock();
            if st.sites.has_waiters(site)
                && let Some(q2) = inner.migrate(&mut st, site, q, &mut slot.caps)
            {
                slot.q = q2;
                part = take(&mut st, q2);
            }
        }
    }
    Box::pin(conn.quit()).await;
}

/// The least a part held back for a failing destination waits before its next connect
/// (ms): with `host_failure_retry = 0` the addresses are tried again, but not in a loop.
const MIN_HOLD_MS: u64 = 1_000;

/// Marks each address in `failed` as held back for the queue's `host_failure_retry`.
fn mark_failed(inner: &Inner, opts: &DeliveryOptions, failed: &[std::net::IpAddr]) {
    let now = inner.now_ms();
    let retry_ms = opts.host_failure_retry.saturating_mul(1000);
    for &ip in failed {
        let n = inner.health.failed(opts.bind_address, ip, now, retry_ms);
        tracing::info!(
            source = ?opts.bind_address,
            addr = %ip,
            failures = n,
            "connect failed; address held back for host_failure_retry = {}s",
            opts.host_failure_retry
        );
    }
}

/// Starts or extends queue `q`'s streak of failed connects with `reply`.
fn note_failure(inner: &Inner, q: QueueId, reply: &Response) {
    let now = inner.now_ms();
    let mut st = inner.lock();
    let c = Inner::conns(&mut st, q);
    match &mut c.failing {
        Some(f) => f.last = reply.clone(),
        None => {
            c.failing = Some(Box::new(super::Failing {
                since_ms: now,
                last: reply.clone(),
            }))
        }
    }
}

/// The reply to defer queue `q`'s parts with when its destination is given up on for now
/// (`mx_failures_to_delay`, `connect_timeout_to_delay`), or `None` while its parts wait.
/// Starts the queue's streak if it has none.
fn gives_up(
    inner: &Inner,
    q: QueueId,
    opts: &DeliveryOptions,
    targets: &[crate::route::Target],
) -> Option<Response> {
    let rule = super::health::DelayRule {
        mx_failures: opts.mx_failures_to_delay,
        connect_timeout_ms: opts.connect_timeout_to_delay.saturating_mul(1000),
    };
    let now = inner.now_ms();
    let (since, last) = {
        let mut st = inner.lock();
        // Every address was held back by another queue's failures: this queue's streak
        // starts now, so it too is given up on in time.
        let f = Inner::conns(&mut st, q).failing.get_or_insert_with(|| {
            Box::new(super::Failing {
                since_ms: now,
                last: Response::local(
                    451,
                    "4.4.1 [internal] every address of the destination is held back after a failure (host_failure_retry)",
                ),
            })
        });
        (f.since_ms, f.last.clone())
    };
    let counts = targets
        .iter()
        .map(|t| inner.health.consecutive(opts.bind_address, t.addr.ip()));
    rule.gives_up(since, now, counts).then_some(last)
}

/// A temporary DNS failure of a route (RFC 3463's 4.4.3, "directory server failure").
fn is_dns_failure(r: &Response) -> bool {
    r.code / 100 == 4 && r.status() == "4.4.3"
}

/// As [`settle_all`] for a route that failed for DNS: each part counts the failure, and one
/// that reached `dns_failures_to_purge` fails permanently (Momentum's rule), the rest are
/// deferred with `reply`.
async fn settle_all_dns(
    inner: &Arc<Inner>,
    q: QueueId,
    opts: &DeliveryOptions,
    first: Part,
    reply: &Response,
) {
    let purge = opts.dns_failures_to_purge;
    let purged = Response::local(
        554,
        format!(
            "5.4.4 [internal] {purge} DNS failures without a route (dns_failures_to_purge); last: {}",
            reply.one_line()
        ),
    );
    for mut p in with_the_rest(inner, q, first) {
        p.dns_failures = p.dns_failures.saturating_add(1);
        let r = if purge > 0 && p.dns_failures >= purge {
            &purged
        } else {
            reply
        };
        outcome::no_connection(inner, q, opts, p, r).await;
    }
}

/// Settles the parts of every queue waiting on site `s` with `reply`, as `settle_all` does
/// for the connection's own queue.
async fn settle_waiters(inner: &Arc<Inner>, s: SiteId, reply: &Response) {
    loop {
        let (q, opts, first) = {
            let mut st = inner.lock();
            if st.sites.connections(s) > 1 {
                // Another connection of the site still works: they wait for it.
                return;
            }
            let Some(q) = st.sites.next_waiter(s) else {
                return;
            };
            let opts = inner.options(&mut st, q);
            let Some(first) = take(&mut st, q) else {
                continue;
            };
            (q, opts, first)
        };
        settle_all(inner, q, &opts, first, reply).await;
    }
}

/// Whether the connection should give its places back now: another queue has waited for a
/// place under one of its caps, and it has had them for `YIELD_AFTER_MS`. Its queue's
/// remaining parts go out on the connection it gets back in turn, so a cap is shared in
/// turns of about a second instead of by whoever came first.
fn yields(
    inner: &Inner,
    q: QueueId,
    caps: &[CapId],
    host: Option<&HostClaim>,
    opened_ms: u64,
) -> bool {
    if inner.now_ms().saturating_sub(opened_ms) < YIELD_AFTER_MS {
        return false;
    }
    let mut st = inner.lock();
    st.caps.contended(q, caps) || host.is_some_and(|h| st.caps.contended(q, h.caps()))
}

/// The part as the client sends it; the body is read from the spool now, not before. With
/// `mark` (the fbl module's header name), the body starts with Momentum's FBL mark:
/// base64 of `rcptlocal@rcptdomain@binding@bindinggroup@` (`modules/fbl.md`). A part with
/// several recipients names none in it (the complaint's `Original-Rcpt-To` does).
async fn outgoing(
    inner: &Inner,
    p: &Part,
    announce_8bit: bool,
    mark: Option<&str>,
) -> Option<Outgoing> {
    let (id, prefix, mut msg) = {
        let env = p.msg.env.lock().unwrap_or_else(|e| e.into_inner());
        let prefix = match mark {
            None => env.prefix.clone(),
            Some(name) => {
                let rcpt = match p.rcpts.as_slice() {
                    [one] => env
                        .recipients
                        .get(*one as usize)
                        .map(|r| r.address.to_string())
                        .unwrap_or_default(),
                    _ => String::new(),
                };
                let value = bindery_bounce::report::encode_mark(&bindery_bounce::report::FblMark {
                    rcpt,
                    binding: env.binding.to_string(),
                    binding_group: env.binding_group.to_string(),
                    user_string: String::new(),
                });
                let mut s = format!("{name}: {value}\r\n");
                s.push_str(env.prefix.as_deref().unwrap_or(""));
                Some(s.into_boxed_str())
            }
        };
        let recipients = p
            .rcpts
            .iter()
            .filter_map(|&i| env.recipients.get(i as usize))
            .map(|r| OutRecipient {
                address: r.address.to_string(),
                notify: r.notify.as_deref().map(str::to_string),
                orcpt: r.orcpt.as_deref().map(str::to_string),
            })
            .collect();
        (
            env.id.clone(),
            prefix,
            Outgoing {
                sender: env.sender.to_string(),
                recipients,
                body: Arc::default(),
                ret: env.ret.map(|r| r.as_str().to_string()),
                envid: env.envid.as_deref().map(str::to_string),
                smtputf8: env.smtputf8,
                announce_8bit,
                // A message we made (a bounce) has no peer: XCLIENT says [UNAVAILABLE].
                origin: env.peer.parse().ok().map(|addr| Origin {
                    addr,
                    helo: env.helo.to_string(),
                }),
            },
        )
    };
    msg.body = Arc::new(inner.message(&id, prefix).await?);
    Some(msg)
}
