//! The delivery engine: queues every message part per (binding, domain), opens connections
//! as the limits allow, and turns each reply into delivered, retried or bounced.
//!
//! - `mod.rs` (this file): shared state, [`Engine::enqueue`], the dispatcher task.
//! - `connection.rs`: one connection's life: route, connect, send parts, idle, QUIT.
//! - `connects.rs`: connect pacing per remote address across bindings (attempts in
//!   progress, connects per second).
//! - `sites.rs`: queues that reach the same hosts the same way share connections: a queue's
//!   first connection waits for one of its site's, a connection that emptied its queue moves
//!   to the next queue of its site.
//! - `health.rs`: remote addresses whose connect failed (`host_failure_retry`), and when a
//!   destination that does not answer is given up on for now (`mx_failures_to_delay`,
//!   `connect_timeout_to_delay`).
//! - `hosts.rs`: host scope: connection limits and throttles per MX host, and skipping a
//!   host at its limit in MX selection.
//! - `outcome.rs`: what a reply means for each recipient; retries, expiry, persistence,
//!   reports (bounces and success DSNs).
//! - `records.rs`: the log records.
//! - `console.rs`: what the console and metrics read and do: queue views, fail, flush,
//!   retry, rebind, reconfigure.
//!
//! Memory: a queued part holds an `Arc` of its message's envelope (sender, recipients and
//! their state) and the indexes of its recipients (inline for up to two); the body stays in
//! the spool until a connection is ready to send it. Binding names are interned
//! (`Names`), so 100,000 queued messages on one binding hold one copy of its name.
//!
//! Locking: one `std::sync::Mutex` guards the queues and per-queue connection counts. It is
//! never held across an `.await` or a spool call.

mod adaptive;
mod connection;
mod connects;
pub mod console;
mod health;
mod hosts;
mod outcome;
pub mod records;
mod sites;
pub mod sweep;
mod warmup;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use bindery_config::Snapshot;
use bindery_config::snapshot::BindingId;
use bindery_queue::{
    CapId, CapKey, Caps, Clock, Limit, QueueId, Queues, SiteId, Sites, ThrottleStore,
};
use bindery_spool::{Envelope, IdGenerator, RcptState, Spool};
use ipnet::IpNet;
use tokio::sync::Notify;

use crate::mainlog::MainLog;
use crate::options::DeliveryOptions;
use crate::resolver::Resolver;
use crate::stats::Stats;

/// How long a queue whose connect failed while others worked keeps to the connections it
/// has (ms).
const CEILING_MS: u64 = 10_000;

/// How long a connection keeps its place under a cap that others wait on: after this, it
/// gives the place back at the end of its current transaction (ms).
pub(crate) const YIELD_AFTER_MS: u64 = 1_000;

/// The caps a connection holds places under (`bindery_queue::caps`).
pub(crate) type CapList = smallvec::SmallVec<[CapId; 4]>;

/// What the engine is built from.
pub struct EngineConfig {
    /// The first configuration generation; [`Engine::reconfigure`] replaces it.
    pub snapshot: Arc<Snapshot>,
    /// Counters shared with reception and the console.
    pub stats: Arc<Stats>,
    /// Our host name: `__hostname__` EHLO, Reporting-MTA, mailer-daemon address.
    pub hostname: String,
    pub spool: Arc<dyn Spool>,
    pub resolver: Arc<dyn Resolver>,
    pub clock: Arc<dyn Clock>,
    pub throttles: Arc<dyn ThrottleStore>,
    pub mainlog: Option<Arc<MainLog>>,
    /// Momentum's `@` logs (`ec_logger`, `bounce_logger`); empty when none is configured.
    pub eclogs: Arc<crate::eclog::EcLogs>,
    pub ids: Arc<IdGenerator>,
    /// `prohibited_hosts`: never connect to these.
    pub prohibited: Vec<IpNet>,
    /// The outbound TLS configurations, per (`tls_verify`, `tls_ca`).
    pub tls: Arc<crate::tls::ClientConfigs>,
    /// Where generated reports go: the default binding and its group.
    pub report_binding: (Arc<str>, Arc<str>),
    /// Each recipient's outcome, for a policy's log callouts (`crate::events`).
    pub events: Option<Arc<dyn crate::events::Events>>,
    /// The bounce classifier in force: every failure's class goes to the logs and metrics.
    pub bounces: Arc<bindery_bounce::Live>,
    /// The fbl module's mark header (`header_name`), when its `auto_log` is on: mail whose
    /// `enable_fbl_header_insertion` is on carries it, so a complaint names its binding.
    pub fbl_header: Option<String>,
    /// Adaptive delivery's shared state (`adaptive` module loaded); `None`: off.
    pub adaptive: Option<Arc<bindery_adaptive::Live>>,
}

/// A message in the queues: its envelope, shared by its parts.
pub(crate) struct Message {
    pub env: Mutex<Envelope>,
    /// Parts still queued or in flight; the message leaves the spool when this reaches 0.
    pub parts: AtomicU32,
    /// Removed from the spool: no further envelope write may happen.
    pub removed: AtomicBool,
}

/// A part's recipients, as indexes into the envelope's. Most parts have one or two, kept
/// inline: a delayed part then costs no allocation of its own.
pub(crate) type Rcpts = smallvec::SmallVec<[u32; 2]>;

/// A message's recipients for one domain: the unit that queues, retries and is sent.
pub(crate) struct Part {
    pub msg: Arc<Message>,
    pub rcpts: Rcpts,
    /// Attempts made so far for these recipients.
    pub attempts: u32,
    /// Attempts that ended in a temporary DNS failure of the route (4.4.3), for
    /// `dns_failures_to_purge` and `mx_failures_fallback_to_a`. Kept in memory only: a
    /// restart counts again from 0 (it never fails mail sooner than configured).
    pub dns_failures: u32,
}

/// Connection bookkeeping of one queue.
#[derive(Default)]
pub(crate) struct Conns {
    /// Connections waiting for work (they hold the connection open for `idle_timeout`).
    pub idle: u32,
    /// Connections started that have not yet taken their first part.
    pub opening: u32,
    pub notify: Arc<Notify>,
    /// No new connection before this time (a connection throttle or an unreachable
    /// destination said wait), in ms.
    pub not_before_ms: u64,
    /// Parts taken by a connection and not yet settled (their bodies may be in memory).
    pub inflight: u32,
    /// How many connections the queue may have now: slow start toward its limit
    /// (`bindery_queue::pacing`); 0 before its first connection.
    pub target: u32,
    /// After a connect failed while others worked: the target stays at most this until the
    /// time (ms), so the queue does not probe for one more connection after every delivery.
    pub ceiling: Option<(u32, u64)>,
    /// In the dispatcher's timer heap until this time (ms), for `not_before_ms`.
    pub parked_ms: Option<u64>,
    /// Since when every connect of the queue has failed, and the last reply: the streak
    /// `mx_failures_to_delay` and `connect_timeout_to_delay` judge (`health.rs`). `None`
    /// once a connection works.
    pub failing: Option<Box<Failing>>,
    /// The site of the queue's last route (`sites.rs`); `None` before its first.
    pub site: Option<SiteId>,
    /// Recipients delivered, failed and deferred on this queue since the process started
    /// (the console's `S:` column and the per-domain metrics).
    pub delivered: u64,
    pub failed: u64,
    pub transient: u64,
    /// The adaptive book's generation the queue's options were last resolved against.
    pub adaptive_seen: u64,
    /// Held by an adaptive suspension until this time (ms); 0: not held.
    pub held_until_ms: u64,
    /// The hold is a blackhole: the queue's mail fails instead of waiting.
    pub held_blackhole: bool,
    /// An adaptive `bounce` fired: the mail waiting now fails at the next pass.
    pub bounce_waiting: bool,
    /// The UTC day (days since the epoch) the queue's warm-up cap was last logged as
    /// reached (the count itself is in `Stats::warmup`).
    pub warm_told: i64,
    /// Held by the warm-up cap until this time (ms, the next UTC day); 0: not held.
    pub warm_hold_ms: u64,
}

/// A queue's streak of failed connects.
pub(crate) struct Failing {
    pub since_ms: u64,
    /// What the last failed connect got: the reply its parts are deferred with when the
    /// destination is given up on.
    pub last: bindery_smtp::client::Response,
}

pub(crate) struct State {
    /// Keyed by (binding slot in [`Stats`], domain): slots outlive configuration generations.
    pub queues: Queues<Part>,
    pub conns: Vec<Conns>,
    /// Options per queue, resolved on first use for the current snapshot.
    pub opts: Vec<Option<Arc<DeliveryOptions>>>,
    /// The per-message logins (Momentum's `outbound_smtp_auth_config`, or the
    /// `outbound_smtp_auth_*` context a policy kept) that set queues apart: a queue's
    /// `variant` n > 0 is `logins[n - 1]`. Only ever grows: a variant's number stays its own.
    pub logins: Vec<crate::options::AuthSettings>,
    pub login_ids: std::collections::HashMap<crate::options::AuthSettings, u32>,
    /// The caps per queue, resolved with its options.
    pub cap_ids: Vec<CapList>,
    /// Connection caps that cross queues, and who waits on them.
    pub caps: Caps,
    /// Queues the dispatcher should look at again now: a connection ended, slow start grew,
    /// a cap place freed. Each entry stands for an event; nothing is rescanned.
    pub ready: Vec<QueueId>,
    /// Queues held back by `not_before_ms` (a throttle, a failed destination), by time: the
    /// dispatcher looks at each when it is due, not on every pass.
    pub later: BinaryHeap<Reverse<(u64, QueueId)>>,
    /// Queues that reach the same hosts the same way, and the queues waiting for one of
    /// their connections.
    pub sites: Sites<sites::SiteKey>,
    /// Per site, by its id: what the engine keeps beside `sites`.
    pub site_info: Vec<sites::SiteInfo>,
}

impl State {
    /// Gives back places under `caps`; the waiters that frees go on `ready`. Returns
    /// whether any was woken (the dispatcher then needs a nudge).
    pub fn close_caps(&mut self, caps: &[CapId]) -> bool {
        let before = self.ready.len();
        self.caps.close(caps, &mut self.ready);
        self.ready.len() > before
    }

    /// A connection stopped serving `q` (it ended, or moved to another queue of its site).
    /// Returns the connections `q` has left and whether it still has parts to send; a queue
    /// left with neither starts slow start from one next time.
    pub fn leave_queue(&mut self, q: QueueId) -> (u32, bool) {
        let queue = self.queues.get_mut(q);
        queue.connections = queue.connections.saturating_sub(1);
        let (left, active) = (queue.connections, queue.active_len() > 0);
        if !active && left == 0 {
            Inner::conns(self, q).target = 0;
        }
        (left, active)
    }

    /// Queue `q` wants no connection now: it leaves the cap it waits on, and the next
    /// waiter there goes on `ready`.
    pub fn withdraw(&mut self, q: QueueId) {
        self.caps.withdraw(q, &mut self.ready);
        self.sites.withdraw(q);
    }
}

/// Counters for the console and tests.
#[derive(Default)]
pub struct Counters {
    /// Reports (bounces and success DSNs) spooled. Recipient outcomes are counted in
    /// [`Stats`], per binding and globally.
    pub reports: AtomicU64,
    pub connections: AtomicU64,
    pub open_connections: AtomicU64,
    /// Dispatcher passes, and queues looked at in them: what a pass costs, for the test that
    /// holds it independent of the queues that merely wait.
    pub dispatch_passes: AtomicU64,
    pub dispatch_considered: AtomicU64,
}

pub(crate) struct Inner {
    pub cfg: EngineConfig,
    /// The configuration generation in force; swapped whole by a reload.
    pub snapshot: ArcSwap<Snapshot>,
    pub state: Mutex<State>,
    /// Wakes the dispatcher: new work, a connection ended, shutdown.
    pub wake: Notify,
    pub stopping: AtomicBool,
    pub counters: Counters,
    pub spread: AtomicU32,
    /// One copy of each binding and binding group name, shared by every queued envelope.
    pub names: Names,
    /// Connect pacing per remote address, across bindings.
    pub connects: connects::Connects,
    /// Remote addresses whose connect failed, per source address (`health.rs`).
    pub health: health::Health,
    /// The most outbound connections the process's descriptors allow (`u32::MAX`: no
    /// limit known); the server's cap is lowered to it.
    pub descriptor_cap: AtomicU32,
}

/// Binding and group names, interned: every message on a binding holds the same `Arc<str>`
/// instead of two small allocations of its own (with 100,000 messages queued that is about
/// 60 bytes a message). Names come from the configuration and the spool, so the set stays
/// small.
#[derive(Default)]
pub(crate) struct Names(Mutex<rustc_hash::FxHashSet<Arc<str>>>);

impl Names {
    /// The shared copy of `name`.
    pub fn share(&self, name: &Arc<str>) -> Arc<str> {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match set.get(name) {
            Some(shared) => Arc::clone(shared),
            None => {
                set.insert(Arc::clone(name));
                Arc::clone(name)
            }
        }
    }
}

impl Inner {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn now_ms(&self) -> u64 {
        self.cfg.clock.now_ms()
    }

    /// A message as it is sent (its envelope's `prefix`, then the body from the spool), read
    /// off the async workers; `None` if unreadable.
    pub async fn message(&self, id: &str, prefix: Option<Box<str>>) -> Option<Vec<u8>> {
        let spool = Arc::clone(&self.cfg.spool);
        let id = id.to_string();
        tokio::task::spawn_blocking(move || match prefix {
            // Only the id and prefix are read from the envelope: no copy of the whole.
            Some(prefix) => {
                let env = bindery_spool::Envelope {
                    id: id.into_boxed_str(),
                    prefix: Some(prefix),
                    ..bindery_spool::Envelope::default()
                };
                spool.message(&env)
            }
            None => spool.body(&id),
        })
        .await
        .ok()?
        .ok()
    }

    pub fn log(&self, rec: &impl serde::Serialize) {
        if let Some(l) = &self.cfg.mainlog {
            l.record(rec);
        }
    }

    /// The binding a queue's slot stands for in `snap`; the default binding when the
    /// configuration no longer has it.
    pub fn binding_id(&self, snap: &Snapshot, slot: u32) -> BindingId {
        self.cfg
            .stats
            .binding(slot)
            .and_then(|b| snap.binding_id(&b.name))
            .unwrap_or(BindingId::DEFAULT)
    }

    /// The queue key of a binding name: its statistics slot.
    fn binding_of(&self, name: &str) -> u32 {
        self.cfg.stats.slot(name)
    }

    /// The options of a queue, resolved once per queue and configuration generation. A
    /// binding that the configuration no longer has sends with the default binding's
    /// options until its mail is rebound.
    pub fn options(&self, st: &mut State, q: QueueId) -> Arc<DeliveryOptions> {
        let i = q as usize;
        if st.opts.len() <= i {
            st.opts.resize(i + 1, None);
        }
        if let Some(o) = &st.opts[i] {
            return Arc::clone(o);
        }
        let queue = st.queues.get(q);
        let snap = self.snapshot.load();
        let key = snap.domain_key(&queue.domain);
        let binding = self.binding_id(&snap, queue.binding);
        let mut o = DeliveryOptions::resolve(&snap, binding, &key);
        if queue.variant > 0
            && let Some(login) = st.logins.get(queue.variant as usize - 1)
        {
            o.auth = login.clone();
        }
        // `default_binding = suspended` holds the default binding's mail; read from the
        // generation in force, so a run-time change applies at the next attempt.
        if binding == BindingId::DEFAULT && default_suspended(&snap) {
            o.suspend = true;
        }
        let slot = queue.binding;
        self.adapt(st, q, &mut o);
        let o = Arc::new(o);
        st.opts[i] = Some(Arc::clone(&o));
        let mut keys = vec![(CapKey::Server, self.server_limit(o.server_cap))];
        if let Some(max) = o.binding_cap {
            keys.push((CapKey::Binding(slot), Limit::new(max)));
        }
        for &(scope, max) in &o.scope_caps {
            keys.push((CapKey::Scope(scope), Limit::new(max)));
        }
        let mut woken = Vec::new();
        let caps: CapList = keys
            .into_iter()
            .map(|(k, l)| st.caps.cap(k, l, &mut woken))
            .collect();
        if st.cap_ids.len() <= i {
            st.cap_ids.resize_with(i + 1, CapList::new);
        }
        st.cap_ids[i] = caps;
        st.ready.append(&mut woken);
        o
    }

    /// The server's cap as configured, within what the descriptors allow: the ceiling
    /// (max plus reserve) is at most `descriptor_cap`.
    fn server_limit(&self, configured: Limit) -> Limit {
        let fds = self.descriptor_cap.load(Ordering::Relaxed);
        let max = configured.max.min(fds);
        Limit {
            max,
            reserve: configured.reserve.min(fds - max),
        }
    }

    /// The caps a new connection of `q` takes places under.
    pub fn caps_of(&self, st: &mut State, q: QueueId) -> CapList {
        self.options(st, q);
        st.cap_ids[q as usize].clone()
    }

    /// A connection gave back its places under `caps`: the waiters they free are woken.
    pub fn release(&self, caps: &[CapId]) {
        if !caps.is_empty() && self.lock().close_caps(caps) {
            self.wake.notify_one();
        }
    }

    /// Holds `q` back until `not_before_ms`, in the dispatcher's timer heap.
    pub fn park(st: &mut State, q: QueueId) {
        let c = Inner::conns(st, q);
        let due = c.not_before_ms;
        if c.parked_ms.is_none_or(|p| due < p) {
            c.parked_ms = Some(due);
            st.later.push(Reverse((due, q)));
        }
    }

    /// A connection of `q` was made, or delivered a message: the remote takes what we open,
    /// so while parts wait and every connection is busy, slow start lets the queue open more.
    pub fn proven(&self, q: QueueId) {
        let mut st = self.lock();
        let opts = self.options(&mut st, q);
        // The site grows for the queues waiting on it, whatever this queue has left.
        let site = Inner::conns(&mut st, q).site;
        let mut wake = site.is_some_and(|s| st.site_proven(s, &opts));
        let queue = st.queues.get(q);
        let (open, waiting) = (queue.connections, queue.active_len() as u32);
        let c = Inner::conns(&mut st, q);
        if waiting > 0 && c.idle == 0 && c.opening == 0 {
            let mut max = opts.max_connections.unwrap_or(u32::MAX);
            if let Some((ceiling, until)) = c.ceiling {
                if self.now_ms() < until {
                    max = max.min(ceiling);
                } else {
                    c.ceiling = None;
                }
            }
            let grown = bindery_queue::pacing::grow(c.target, open, waiting, max, opts.ramp);
            if grown > c.target.max(1) {
                c.target = grown;
                // The dispatcher looks at it again, and may open another connection.
                st.ready.push(q);
                wake = true;
            }
        }
        drop(st);
        if wake {
            self.wake.notify_one();
        }
    }

    /// How many connections of `q` work: made and greeted (a connect in progress, the
    /// caller's own among them, does not count).
    pub fn working(&self, q: QueueId) -> u32 {
        let mut st = self.lock();
        let open = st.queues.get(q).connections;
        open.saturating_sub(Inner::conns(&mut st, q).opening)
    }

    /// A connect of `q` failed or timed out: slow start halves its target, and while other
    /// connections of the queue work it grows no further than them for `CEILING_MS`.
    /// Returns how many connections of the queue work: made and greeted, not counting other
    /// connects still in progress (one of them may be failing too: counted, it let the
    /// queue probe again before the 10 s were up).
    pub fn connect_failed(&self, q: QueueId) -> u32 {
        let now = self.now_ms();
        let mut st = self.lock();
        let open = st.queues.get(q).connections;
        let c = Inner::conns(&mut st, q);
        // This connect is among the `opening` ones.
        let others = open.saturating_sub(c.opening);
        c.target = bindery_queue::pacing::shrink(c.target).max(others);
        if others > 0 {
            c.ceiling = Some((others, now + CEILING_MS));
        }
        others
    }

    pub fn conns(st: &mut State, q: QueueId) -> &mut Conns {
        let i = q as usize;
        if st.conns.len() <= i {
            st.conns.resize_with(i + 1, Conns::default);
        }
        &mut st.conns[i]
    }

    /// Queues a message's pending recipients, one part per domain (and per
    /// `max_recipients_per_batch`); a message with a routing domain (`msg:routing_domain`)
    /// is one part per batch on that domain's queue.
    pub fn enqueue(&self, mut env: Envelope) {
        env.binding = self.names.share(&env.binding);
        env.binding_group = self.names.share(&env.binding_group);
        let due_ms = env.next_attempt.saturating_mul(1000);
        let binding = self.binding_of(&env.binding);
        let attempts = env.attempts;
        // Group pending recipients by domain, keeping their order.
        let mut groups: Vec<(String, Vec<u32>)> = Vec::new();
        for (i, r) in env.recipients.iter().enumerate() {
            if r.state != RcptState::Pending {
                continue;
            }
            let domain = match env.routing.as_deref() {
                Some(d) => d.to_ascii_lowercase(),
                None => domain_of(&r.address),
            };
            match groups.iter_mut().find(|(d, _)| *d == domain) {
                Some((_, v)) => v.push(i as u32),
                None => groups.push((domain, vec![i as u32])),
            }
        }
        if groups.is_empty() {
            // Nothing left to do (recovered after every recipient was final).
            let spool = Arc::clone(&self.cfg.spool);
            let id = env.id.clone();
            tokio::task::spawn_blocking(move || spool.remove(&id));
            return;
        }
        let kept_login = env.context.is_some();
        let msg = Arc::new(Message {
            env: Mutex::new(env),
            parts: AtomicU32::new(0),
            removed: AtomicBool::new(false),
        });
        let now = self.now_ms();
        let mut st = self.lock();
        let mut queued: Vec<(QueueId, Vec<u32>)> = Vec::with_capacity(groups.len());
        for (domain, rcpts) in groups {
            let mut q = st.queues.queue_id(binding, &domain);
            // `gateway = "#name"` (Momentum's synthetic route target, as in SparkPost's relay
            // example): the part goes to the queue of domain stanza `#name`, whose routes
            // and options (TLS, the login) it is delivered with.
            if let Some(gw) = synthetic_gateway(&self.options(&mut st, q).gateway)
                && !gw.eq_ignore_ascii_case(&domain)
            {
                q = st.queues.queue_id(binding, &gw.to_ascii_lowercase());
            }
            queued.push((q, rcpts));
        }
        // A login of the message's own (Momentum's `outbound_smtp_auth_config` hook, or the
        // `outbound_smtp_auth_*` context a policy kept at reception) may set its parts apart.
        if kept_login || self.cfg.events.as_ref().is_some_and(|e| e.wants_login()) {
            let opts: Vec<_> = queued
                .iter()
                .map(|&(q, _)| (self.options(&mut st, q), st.queues.get(q).domain.clone()))
                .collect();
            // The hook runs a script: never under the engine's lock. The envelope's own lock
            // is held instead; no part of the message is queued yet, so no one waits on it.
            drop(st);
            let logins: Vec<_> = {
                let env = msg.env.lock().unwrap_or_else(|e| e.into_inner());
                queued
                    .iter()
                    .zip(&opts)
                    .map(|((_, rcpts), (o, domain))| self.message_login(&env, domain, rcpts, o))
                    .collect()
            };
            st = self.lock();
            for ((q, _), login) in queued.iter_mut().zip(logins) {
                if let Some(login) = login {
                    *q = self.login_queue(&mut st, *q, login);
                }
            }
        }
        for (q, rcpts) in queued {
            let batch = self.options(&mut st, q).max_recipients_per_batch;
            for chunk in rcpts.chunks(batch) {
                msg.parts.fetch_add(1, Ordering::Relaxed);
                let part = Part {
                    msg: Arc::clone(&msg),
                    rcpts: Rcpts::from_slice(chunk),
                    attempts,
                    dns_failures: 0,
                };
                st.queues.push(q, part, due_ms, now);
            }
        }
        drop(st);
        self.wake.notify_one();
    }
}

impl Inner {
    /// The login of a message's recipients `rcpts` to `domain` (queue options `o`): the
    /// options, overridden by what the policy kept in the message context and then by what
    /// the `outbound_smtp_auth_config` hook sets; `None` when that is the queue's own.
    fn message_login(
        &self,
        env: &Envelope,
        domain: &str,
        rcpts: &[u32],
        o: &DeliveryOptions,
    ) -> Option<crate::options::AuthSettings> {
        use crate::options::CTX_KEY;
        let mut context: Vec<(String, String)> = env
            .context
            .iter()
            .flatten()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(key) = &o.auth.key
            && !context.iter().any(|(k, _)| k == CTX_KEY)
        {
            context.push((CTX_KEY.to_string(), key.clone()));
        }
        if let Some(events) = self.cfg.events.as_ref().filter(|e| e.wants_login()) {
            context = events.login(crate::events::LoginQuery {
                id: &env.id,
                sender: &env.sender,
                rcpts: rcpts
                    .iter()
                    .filter_map(|&i| env.recipients.get(i as usize))
                    .map(|r| &*r.address)
                    .collect(),
                binding_group: &env.binding_group,
                binding: &env.binding,
                domain,
                context,
            });
        }
        let login = o.auth.overridden(&context);
        (login != o.auth).then_some(login)
    }

    /// The queue beside `q` for mail that logs in as `login`.
    fn login_queue(
        &self,
        st: &mut State,
        q: QueueId,
        login: crate::options::AuthSettings,
    ) -> QueueId {
        let next = st.logins.len() as u32 + 1;
        let variant = *st.login_ids.entry(login.clone()).or_insert(next);
        if variant == next {
            st.logins.push(login);
        }
        let queue = st.queues.get(q);
        let (binding, domain) = (queue.binding, queue.domain.clone());
        st.queues.queue_variant(binding, &domain, variant)
    }
}

/// A `gateway` that names a synthetic domain stanza (`#name`), not a host.
pub(crate) fn synthetic_gateway(gateway: &Option<String>) -> Option<&str> {
    gateway
        .as_deref()
        .filter(|g| g.len() > 1 && g.starts_with('#'))
}

fn default_suspended(snap: &Snapshot) -> bool {
    let opt = bindery_config::schema::option_id("default_binding");
    matches!(snap.global(opt), Some(bindery_config::value::Value::Word(w)) if w.eq_ignore_ascii_case("suspended"))
}

/// The domain of an address, lower case; an address literal keeps its brackets.
pub fn domain_of(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((_, d)) => d.to_ascii_lowercase(),
        None => String::new(),
    }
}

/// The running engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// Queue sizes, for the console and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueTotals {
    pub active: usize,
    pub delayed: usize,
    pub connections: u64,
}

impl Engine {
    /// Starts the dispatcher. Call from inside a tokio runtime.
    pub fn start(cfg: EngineConfig) -> Engine {
        let inner = Arc::new(Inner {
            snapshot: ArcSwap::new(Arc::clone(&cfg.snapshot)),
            cfg,
            state: Mutex::new(State {
                queues: Queues::default(),
                conns: Vec::new(),
                opts: Vec::new(),
                logins: Vec::new(),
                login_ids: std::collections::HashMap::new(),
                cap_ids: Vec::new(),
                caps: Caps::default(),
                ready: Vec::new(),
                later: BinaryHeap::new(),
                sites: Sites::default(),
                site_info: Vec::new(),
            }),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            counters: Counters::default(),
            spread: AtomicU32::new(0),
            names: Names::default(),
            connects: connects::Connects::default(),
            health: health::Health::default(),
            descriptor_cap: AtomicU32::new(u32::MAX),
        });
        if let Some(live) = &inner.cfg.adaptive {
            // The hook holds the engine weakly: the book outlives it in the daemon.
            let weak = Arc::downgrade(&inner);
            live.on_change(move || {
                if let Some(i) = weak.upgrade() {
                    i.book_changed();
                }
            });
        }
        tokio::spawn(dispatch(Arc::clone(&inner)));
        Engine { inner }
    }

    /// Caps outbound connections at `most` (what the descriptors allow), below
    /// `server_max_outbound_connections` and its reserve. Returns whether that lowers the
    /// configured cap of the generation in force.
    pub fn limit_connections(&self, most: u32) -> bool {
        self.inner.descriptor_cap.store(most, Ordering::Relaxed);
        let snap = self.inner.snapshot.load_full();
        let configured = crate::options::DeliveryOptions::server_cap(&snap);
        // Queues resolve their caps again, against the new ceiling.
        self.reconfigure(snap);
        configured.max.saturating_add(configured.reserve) > most
    }

    /// Hands a spooled message to the queues.
    pub fn enqueue(&self, env: Envelope) {
        self.inner.enqueue(env);
    }

    /// Hands a message just accepted from a client to the queues, counting it as received
    /// on its binding.
    pub fn received(&self, env: Envelope) {
        let slot = self.inner.binding_of(&env.binding);
        self.inner.cfg.stats.count(slot, |t| {
            t.received.fetch_add(1, Ordering::Relaxed);
        });
        self.inner.enqueue(env);
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.inner.cfg.stats
    }

    /// Makes the dispatcher look at its timers now. It sleeps in real time until the next
    /// one by the engine's clock; a `ManualClock` moved forward needs this to be seen.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    pub fn totals(&self) -> QueueTotals {
        let st = self.inner.lock();
        let (active, delayed) = st.queues.totals();
        QueueTotals {
            active,
            delayed,
            connections: self.inner.counters.open_connections.load(Ordering::Relaxed),
        }
    }

    /// Stops taking parts; connections finish the transaction in flight and say QUIT.
    /// Waits for them up to `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.inner.wake.notify_one();
        {
            let st = self.inner.lock();
            for c in &st.conns {
                c.notify.notify_waiters();
            }
        }
        let deadline = tokio::time::Instant::now() + grace;
        while self.inner.counters.open_connections.load(Ordering::SeqCst) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The dispatcher: promotes due parts, hands new work to idle connections, opens connections
/// up to the limits, and sleeps until the next timer or wake-up.
///
/// Each pass costs O(k log n) for the k queues that had an event since the last one (new
/// parts, a connection ended, a cap place freed, a timer fell due), never O(queues): a
/// queue held back by a throttle sits in the `later` heap until its time, one waiting for a
/// cap place sits in that cap's waiters until a place frees.
async fn dispatch(inner: Arc<Inner>) {
    loop {
        if inner.stopping.load(Ordering::SeqCst) {
            return;
        }
        let now = inner.now_ms();
        let mut to_open: Vec<Opening> = Vec::new();
        let mut blackholed: Vec<(QueueId, Part, &'static str)> = Vec::new();
        let next_ms;
        let again;
        {
            let mut st = inner.lock();
            st.queues.promote(now);
            let mut candidates = st.queues.take_woken();
            candidates.append(&mut st.ready);
            while let Some(&Reverse((t, q))) = st.later.peek() {
                if t > now {
                    break;
                }
                st.later.pop();
                let c = Inner::conns(&mut st, q);
                if c.parked_ms == Some(t) {
                    c.parked_ms = None;
                    candidates.push(q);
                }
            }
            candidates.sort_unstable();
            candidates.dedup();
            let c = &inner.counters;
            c.dispatch_passes.fetch_add(1, Ordering::Relaxed);
            c.dispatch_considered
                .fetch_add(candidates.len() as u64, Ordering::Relaxed);
            for q in candidates {
                consider(&inner, &mut st, q, now, &mut to_open, &mut blackholed);
            }
            let later = st.later.peek().map(|Reverse((t, _))| *t);
            next_ms = match (st.queues.next_timer_ms(), later) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            // A place freed while this pass ran: look again at once.
            again = !st.ready.is_empty();
        }
        if !blackholed.is_empty() {
            let inner = Arc::clone(&inner);
            tokio::spawn(async move {
                for (q, part, text) in blackholed {
                    let reply = bindery_smtp::client::Response::local(554, text);
                    let opts = {
                        let mut st = inner.lock();
                        inner.options(&mut st, q)
                    };
                    outcome::no_connection(&inner, q, &opts, part, &reply).await;
                }
            });
        }
        for o in to_open {
            inner.counters.connections.fetch_add(1, Ordering::Relaxed);
            inner
                .counters
                .open_connections
                .fetch_add(1, Ordering::SeqCst);
            tokio::spawn(connection::run(Arc::clone(&inner), o.q, o.caps, o.site));
        }
        if again {
            tokio::task::yield_now().await;
            continue;
        }
        let sleep = match next_ms {
            Some(t) => Duration::from_millis(t.saturating_sub(inner.now_ms()).max(1)),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = inner.wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

/// One queue in a dispatcher pass: idle connections take its new parts, then it opens
/// connections as slow start, its limit, the caps across queues and its connection
/// throttle allow.
fn consider(
    inner: &Inner,
    st: &mut State,
    q: QueueId,
    now: u64,
    to_open: &mut Vec<Opening>,
    blackholed: &mut Vec<(QueueId, Part, &'static str)>,
) {
    inner.adaptive_fresh(st, q);
    let opts = inner.options(st, q);
    let active = st.queues.get(q).active_len() as u32;
    if active == 0 || opts.suspend {
        // Nothing to send: it gives up its turn at a cap, if it had one.
        st.withdraw(q);
        return;
    }
    inner.warm_release(st, q, &opts, now);
    let held = Inner::held(st, q, now);
    let bounce = std::mem::take(&mut Inner::conns(st, q).bounce_waiting);
    if held == Some(false) && !bounce {
        // Suspended by adaptive delivery: parked until the suspension ends (or the book
        // changes), not looked at on every pass.
        Inner::park(st, q);
        st.withdraw(q);
        return;
    }
    if opts.blackhole || held == Some(true) || bounce {
        // `Blackhole = internal`, or adaptive delivery's blackhole or bounce: every part
        // fails here, with no connection. Momentum's replies (its responses-by-code page).
        let text = if opts.blackhole {
            "5.7.0 [internal] Blackholed"
        } else if bounce {
            "5.7.1 [adaptive] Bounced by an adaptive rule"
        } else {
            "5.7.1 [adaptive] Blackholed by an adaptive rule"
        };
        while let Some(p) = st.queues.pop_active(q) {
            Inner::conns(st, q).inflight += 1;
            blackholed.push((q, p, text));
        }
        st.withdraw(q);
        return;
    }
    let open = st.queues.get(q).connections;
    let c = Inner::conns(st, q);
    // Idle connections take new work first.
    for _ in 0..c.idle.min(active) {
        c.notify.notify_one();
    }
    let (absorbed, target) = (c.idle + c.opening, c.target);
    if c.not_before_ms > now {
        Inner::park(st, q);
        return;
    }
    // Waiting for a cap place: woken when one frees.
    if st.caps.held_back(q) {
        return;
    }
    // A queue with no connection whose site has none to spare waits for one of the site's.
    let site = Inner::conns(st, q).site.filter(|_| open == 0);
    if let Some(s) = site
        && st.sites.waiting_on(q) == Some(s)
    {
        st.nudge_site(s);
        return;
    }
    // Slow start: no more than the queue's target, itself within the limit.
    let max = opts.max_connections.unwrap_or(u32::MAX);
    let allowed = max.min(target.max(1));
    let mut want = active
        .saturating_sub(absorbed)
        .min(allowed.saturating_sub(open));
    let caps = inner.caps_of(st, q);
    let mut woken = Vec::new();
    while want > 0 {
        let first = st.queues.get(q).connections == 0;
        if let Err(refused) = st.caps.open(q, &caps, first, &mut woken) {
            if let Some(p) = refused.close_idle {
                // An idle connection under the full cap closes; its place goes to `q`.
                Inner::conns(st, p).notify.notify_one();
            }
            break;
        }
        // The first connection of a queue with a known site counts for the site, if the
        // site has room; otherwise the queue waits on it.
        let joined = site.filter(|_| first);
        if let Some(s) = joined
            && !st.sites.admit(s, q)
        {
            st.caps.close(&caps, &mut woken);
            st.nudge_site(s);
            break;
        }
        if let Some((key, rate)) = opts.throttle_connections
            && let Err(wait) = inner.cfg.throttles.acquire(key, rate, now)
        {
            st.caps.close(&caps, &mut woken);
            if let Some(s) = joined {
                st.leave_site(s);
            }
            Inner::conns(st, q).not_before_ms = now + wait;
            Inner::park(st, q);
            break;
        }
        st.queues.get_mut(q).connections += 1;
        Inner::conns(st, q).opening += 1;
        to_open.push(Opening {
            q,
            caps: caps.clone(),
            site: joined,
        });
        want -= 1;
    }
    st.ready.append(&mut woken);
}

/// A connection the dispatcher starts: its queue, the caps it took places under, and the
/// site it was admitted to.
struct Opening {
    q: QueueId,
    caps: CapList,
    site: Option<SiteId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_shared_by_value() {
        let names = Names::default();
        let a = names.share(&Arc::from("b1"));
        let b = names.share(&Arc::from("b1"));
        let c = names.share(&Arc::from("b2"));
        assert!(Arc::ptr_eq(&a, &b), "one copy per name");
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!((&*a, &*c), ("b1", "b2"));
    }
}
