//! What the console and the metrics endpoint read from the engine and do to it.
//!
//! Reads copy what they need under the state lock and return plain values. Operations that
//! end or move mail (fail, flush, retry, rebind) take the parts out under the lock and then
//! settle them exactly as a delivery attempt would, through `outcome`, so a purged message
//! is logged, bounced and removed from the spool by the same code as any other failure.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bindery_config::Snapshot;
use bindery_queue::{CapKey, QueueId};
use bindery_smtp::client::Response;
use bindery_spool::{Envelope, RcptState};

use super::{Engine, Inner, Message, Part, outcome};

/// One (binding, domain) queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueView {
    pub binding: String,
    pub domain: String,
    pub active: usize,
    pub delayed: usize,
    /// Open outbound connections.
    pub connections: u32,
    /// Parts taken by a connection and not settled yet.
    pub inflight: u32,
    /// How many connections slow start lets the queue have now (0 before its first).
    pub target: u32,
    /// Connections waiting for work.
    pub idle: u32,
    /// The cap across queues it waits for a place under, as [`describe`] names it, or the
    /// site whose connection it waits for (`site HOST`), if any; its active parts wait with
    /// it.
    pub waiting_for: Option<String>,
    /// While every connect of the queue fails (`engine::health`): for how many seconds,
    /// and the last reply, as `"120s: 421 4.3.2 busy"`. Its active parts wait, unattempted,
    /// until the destination answers or is given up on for now.
    pub unreachable: Option<String>,
    /// Recipients delivered, failed, deferred here since the process started.
    pub delivered: u64,
    pub failed: u64,
    pub transient: u64,
}

impl QueueView {
    /// Active parts that wait for a place under a connection cap (none when the queue is
    /// not waiting on one).
    pub fn waiting_for_slot(&self) -> u64 {
        if self.waiting_for.is_some() {
            self.active as u64
        } else {
            0
        }
    }
}

/// A cap as the console names it: `server`, `binding` (its total), `host NAME`, or the
/// stanza that set `scope_max_outbound_connections`, as written
/// (`binding_group "g" domain "gmail.com"`).
pub fn describe(snap: &Snapshot, key: &CapKey) -> String {
    match key {
        CapKey::Server => "server".into(),
        CapKey::Binding(_) => "binding".into(),
        CapKey::Host(_, h) => format!("host {h}"),
        CapKey::Scope(s) => {
            let tree = &snap.tree;
            let mut path = Vec::new();
            let mut at = Some(bindery_config::tree::ScopeId(*s));
            while let Some(scope) = at.and_then(|id| tree.get(id)) {
                if let Some(name) = &scope.name {
                    path.push(format!(
                        "{} \"{name}\"",
                        scope.kind.def().keyword.to_ascii_lowercase()
                    ));
                }
                at = scope.parent;
            }
            path.reverse();
            if path.is_empty() {
                "global".into()
            } else {
                path.join(" ")
            }
        }
    }
}

/// One queued part, as `showqueue` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartView {
    pub id: String,
    pub binding: String,
    pub domain: String,
    /// `None` when active, else when it is due (seconds since the epoch).
    pub due: Option<u64>,
    pub received: u64,
    pub sender: String,
    pub recipients: Vec<String>,
    pub attempts: u32,
}

/// One message, as `message details` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageView {
    pub id: String,
    pub sender: String,
    pub received: u64,
    pub peer: String,
    pub binding_group: String,
    pub binding: String,
    pub attempts: u32,
    pub next_attempt: u64,
    pub size: u64,
    /// Each recipient with its state: `pending`, `delivered` or `failed`.
    pub recipients: Vec<(String, &'static str)>,
    /// The parts still queued.
    pub parts: Vec<PartView>,
}

/// Which queued mail an operation is about.
#[derive(Clone, Copy, Debug, Default)]
pub struct Select<'a> {
    /// A binding name; `None` for every binding.
    pub binding: Option<&'a str>,
    /// A domain (any case); `None` for every domain.
    pub domain: Option<&'a str>,
    /// One message id; `None` for every message.
    pub id: Option<&'a str>,
}

impl Inner {
    fn queue_matches(&self, st: &super::State, q: QueueId, sel: &Select<'_>) -> bool {
        let queue = st.queues.get(q);
        let binding_ok = sel.binding.is_none_or(|b| {
            self.cfg
                .stats
                .binding(queue.binding)
                .is_some_and(|s| &*s.name == b)
        });
        binding_ok
            && sel
                .domain
                .is_none_or(|d| queue.domain.eq_ignore_ascii_case(d))
    }

    fn queue_ids(&self, st: &super::State, sel: &Select<'_>) -> Vec<QueueId> {
        (0..st.queues.len() as QueueId)
            .filter(|&q| self.queue_matches(st, q, sel))
            .collect()
    }

    /// Every queued part `sel` names, with its queue and where it waits (`None`: active),
    /// queue by queue, active before delayed.
    fn selected<'s>(
        &self,
        st: &'s super::State,
        sel: &Select<'_>,
    ) -> Vec<(QueueId, &'s Part, Option<u64>)> {
        let mut out = Vec::new();
        for q in self.queue_ids(st, sel) {
            for (p, due) in st.queues.parts(q) {
                if is_message(p, sel.id) {
                    out.push((q, p, due));
                }
            }
        }
        out
    }

    pub(super) fn binding_name(&self, slot: u32) -> String {
        self.cfg
            .stats
            .binding(slot)
            .map(|b| b.name.to_string())
            .unwrap_or_default()
    }

    fn part_view(&self, queue: (&str, &str), p: &Part, due_ms: Option<u64>) -> PartView {
        let env = p.msg.env.lock().unwrap_or_else(|e| e.into_inner());
        PartView {
            id: env.id.to_string(),
            binding: queue.0.to_string(),
            domain: queue.1.to_string(),
            due: due_ms.map(|d| d / 1000),
            received: env.received,
            sender: env.sender.to_string(),
            recipients: p
                .rcpts
                .iter()
                .filter_map(|&i| env.recipients.get(i as usize))
                .map(|r| r.address.to_string())
                .collect(),
            attempts: p.attempts,
        }
    }
}

/// A message's identity while it is queued (its parts share one `Arc`).
fn key(m: &Arc<Message>) -> usize {
    Arc::as_ptr(m) as usize
}

fn is_message(p: &Part, id: Option<&str>) -> bool {
    id.is_none_or(|id| {
        p.msg
            .env
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .id
            .as_ref()
            == id
    })
}

impl Engine {
    /// The configuration generation delivery uses now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.load_full()
    }

    /// Switches delivery to a new configuration generation. Options are resolved again at
    /// each queue's next attempt; connections already sending finish their part with the
    /// options they started with. Every queue is looked at again, so mail held by a
    /// `suspend_delivery` that is now off goes out at once.
    pub fn reconfigure(&self, snap: Arc<Snapshot>) {
        self.inner.snapshot.store(snap);
        {
            let mut st = self.inner.lock();
            st.opts.clear();
            for q in 0..st.queues.len() as QueueId {
                st.queues.touch(q);
            }
        }
        self.inner.wake.notify_one();
    }

    /// Every queue that exists, in the order they were made.
    pub fn queue_views(&self) -> Vec<QueueView> {
        let snap = self.inner.snapshot.load_full();
        let mut st = self.inner.lock();
        (0..st.queues.len() as QueueId)
            .map(|q| {
                let queue = st.queues.get(q);
                let (binding, domain, active, delayed, connections) = (
                    queue.binding,
                    queue.domain.to_string(),
                    queue.active_len(),
                    queue.delayed_len(),
                    queue.connections,
                );
                let waiting_for = st
                    .caps
                    .waiting_on(q)
                    .map(|c| describe(&snap, &st.caps.key(c)))
                    .or_else(|| {
                        let s = st.sites.waiting_on(q)?;
                        st.site_info.get(s as usize).map(|i| i.name.to_string())
                    });
                let now = self.inner.now_ms();
                let c = Inner::conns(&mut st, q);
                let unreachable = c.failing.as_ref().map(|f| {
                    format!(
                        "{}s: {}",
                        now.saturating_sub(f.since_ms) / 1000,
                        f.last.one_line()
                    )
                });
                QueueView {
                    binding: self.inner.binding_name(binding),
                    domain,
                    active,
                    delayed,
                    connections,
                    inflight: c.inflight,
                    target: c.target,
                    idle: c.idle,
                    waiting_for,
                    unreachable,
                    delivered: c.delivered,
                    failed: c.failed,
                    transient: c.transient,
                }
            })
            .collect()
    }

    /// The queued parts `sel` names, active before delayed, skipping `offset` and returning
    /// at most `limit`.
    pub fn parts(&self, sel: Select<'_>, limit: usize, offset: usize) -> Vec<PartView> {
        let st = self.inner.lock();
        self.views(&st, &sel, limit, offset).0
    }

    /// The views of the selected parts, and the message of the first (for `message`).
    fn views(
        &self,
        st: &super::State,
        sel: &Select<'_>,
        limit: usize,
        offset: usize,
    ) -> (Vec<PartView>, Option<Arc<Message>>) {
        let selected = self.inner.selected(st, sel);
        let first = selected.first().map(|(_, p, _)| Arc::clone(&p.msg));
        let views = selected
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|(q, p, due)| {
                let queue = st.queues.get(q);
                let name = self.inner.binding_name(queue.binding);
                self.inner.part_view((&name, &queue.domain), p, due)
            })
            .collect();
        (views, first)
    }

    /// One queued message: its envelope and where its parts wait. `None` when no part of
    /// it is queued (delivered, failed, in flight on a connection, or unknown).
    pub fn message(&self, id: &str) -> Option<MessageView> {
        let sel = Select {
            id: Some(id),
            ..Select::default()
        };
        let (parts, msg) = {
            let st = self.inner.lock();
            self.views(&st, &sel, usize::MAX, 0)
        };
        let msg = msg?;
        let env = msg.env.lock().unwrap_or_else(|e| e.into_inner());
        Some(MessageView {
            id: env.id.to_string(),
            sender: env.sender.to_string(),
            received: env.received,
            peer: env.peer.to_string(),
            binding_group: env.binding_group.to_string(),
            binding: env.binding.to_string(),
            attempts: env.attempts,
            next_attempt: env.next_attempt,
            size: env.body_len,
            recipients: env
                .recipients
                .iter()
                .map(|r| {
                    let state = match r.state {
                        RcptState::Pending => "pending",
                        RcptState::Delivered => "delivered",
                        RcptState::Failed => "failed",
                    };
                    (r.address.to_string(), state)
                })
                .collect(),
            parts,
        })
    }

    /// Takes the selected parts out of their queues, counted in flight as if a connection
    /// had taken them, so `outcome` can settle them.
    fn take(&self, sel: &Select<'_>) -> Vec<(QueueId, Part)> {
        let mut st = self.inner.lock();
        let mut out = Vec::new();
        for q in self.inner.queue_ids(&st, sel) {
            let taken = st.queues.take_where(q, |p| is_message(p, sel.id));
            Inner::conns(&mut st, q).inflight += taken.len() as u32;
            out.extend(taken.into_iter().map(|p| (q, p)));
        }
        out
    }

    /// Fails the selected mail with `reply` (`binding fail domain`, `message fail`): every
    /// recipient fails, a bounce goes to the sender unless `quiet` (or the binding does not
    /// generate bounces), and the mainlog records it. Returns how many parts failed.
    pub async fn fail(&self, sel: Select<'_>, reply: &str, quiet: bool) -> usize {
        let taken = self.take(&sel);
        let (code, text) = reply.split_once(' ').unwrap_or((reply, ""));
        let response = Response::local(code.parse().unwrap_or(554), text);
        let n = taken.len();
        for (q, part) in taken {
            let opts = {
                let mut st = self.inner.lock();
                self.inner.options(&mut st, q)
            };
            let opts = if quiet {
                let mut o = (*opts).clone();
                o.generate_bounces = false;
                Arc::new(o)
            } else {
                opts
            };
            outcome::no_connection(&self.inner, q, &opts, part, &response).await;
        }
        n
    }

    /// Makes the selected delayed mail due now (`binding flush domain`, `message retry`).
    /// Returns how many parts moved.
    pub fn flush(&self, sel: Select<'_>) -> usize {
        let moved = {
            let mut st = self.inner.lock();
            self.inner
                .queue_ids(&st, &sel)
                .into_iter()
                .map(|q| st.queues.flush_where(q, |p| is_message(p, sel.id)))
                .sum()
        };
        self.inner.wake.notify_one();
        moved
    }

    /// `rebind`: asks `choose` for each selected message's binding (group, binding) again
    /// and moves the parts whose answer differs to the new binding's queue, rewriting the
    /// envelope; moved parts are due at once. `choose` runs with no lock held (it may run
    /// Lua or read the spool).
    /// Returns how many parts moved.
    pub async fn rebind(
        &self,
        sel: Select<'_>,
        mut choose: impl FnMut(&Envelope) -> Option<(String, String)>,
    ) -> usize {
        // 1. The messages concerned, each once.
        let msgs: Vec<Arc<Message>> = {
            let st = self.inner.lock();
            let mut seen = std::collections::HashSet::new();
            self.inner
                .selected(&st, &sel)
                .into_iter()
                .filter(|(_, p, _)| seen.insert(key(&p.msg)))
                .map(|(_, p, _)| Arc::clone(&p.msg))
                .collect()
        };
        // 2. The new choice per message, without locks; the envelope takes it at once.
        let mut moves: HashMap<usize, (u32, Arc<Message>)> = HashMap::new();
        for m in msgs {
            let env = m.env.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some((group, binding)) = choose(&env)
                && *binding != *env.binding
            {
                let slot = self.inner.binding_of(&binding);
                {
                    let mut env = m.env.lock().unwrap_or_else(|e| e.into_inner());
                    env.binding = self.inner.names.share(&binding.into());
                    env.binding_group = self.inner.names.share(&group.into());
                }
                moves.insert(key(&m), (slot, m));
            }
        }
        // 3. One pass over the queues moves every part of those messages; on its new
        //    binding a part is tried at once.
        let mut moved = 0;
        {
            let mut st = self.inner.lock();
            let now = self.inner.now_ms();
            for q in self.inner.queue_ids(&st, &sel) {
                let taken = st
                    .queues
                    .take_where(q, |p| moves.contains_key(&key(&p.msg)));
                let domain = st.queues.get(q).domain.to_string();
                // A per-message login goes with its mail to the new binding.
                let variant = st.queues.get(q).variant;
                for p in taken {
                    let slot = moves[&key(&p.msg)].0;
                    let to = st.queues.queue_variant(slot, &domain, variant);
                    st.queues.push(to, p, now, now);
                    moved += 1;
                }
            }
        }
        // 4. The envelopes, rewritten with their new binding.
        let rewrite: Vec<Arc<Message>> = moves.into_values().map(|(_, m)| m).collect();
        for m in rewrite {
            outcome::persist(&self.inner, m, None).await;
        }
        self.inner.wake.notify_one();
        moved
    }

    /// Open outbound connections, all queues.
    pub fn open_connections(&self) -> u64 {
        self.inner.counters.open_connections.load(Ordering::Relaxed)
    }
}
