//! The figures `binding summary`, `summary` and the metrics share: queue sizes and counters
//! gathered per binding from the engine's queues and the statistics.

use std::collections::HashMap;

use bindery_delivery::engine::console::QueueView;
use bindery_delivery::stats::Counts;

use crate::daemon::Daemon;

/// One binding's figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BindingFigures {
    pub name: String,
    pub group: String,
    pub open_connections: u64,
    pub active: u64,
    pub delayed: u64,
    /// Parts on a connection right now: their bodies are in memory.
    pub inflight: u64,
    /// The connections slow start lets its queues have now, summed.
    pub target: u64,
    /// Active parts of its queues that wait for a place under a connection cap.
    pub waiting_for_slot: u64,
    /// Since start or the last `summary reset`.
    pub since_reset: Counts,
    /// Since the counters were first made (the metrics).
    pub total: Counts,
    pub delivery_rate: f64,
    pub reception_rate: f64,
}

impl BindingFigures {
    pub fn queued(&self) -> u64 {
        self.active + self.delayed
    }

    /// Adds a member's figures to a group's.
    pub fn absorb(&mut self, o: &BindingFigures) {
        self.open_connections += o.open_connections;
        self.active += o.active;
        self.delayed += o.delayed;
        self.inflight += o.inflight;
        self.target += o.target;
        self.waiting_for_slot += o.waiting_for_slot;
        self.since_reset.add(o.since_reset);
        self.total.add(o.total);
        self.delivery_rate += o.delivery_rate;
        self.reception_rate += o.reception_rate;
    }
}

/// Every binding of the configuration, in configuration order, then any binding that is no
/// longer configured but still has queued mail or counters (group `-`).
pub fn bindings<D: Daemon>(d: &D, queues: &[QueueView]) -> Vec<BindingFigures> {
    let snap = d.snapshot();
    let stats = d.stats();
    let (_, _, since) = stats.since_reset();
    let mut out: Vec<BindingFigures> = snap
        .bindings()
        .map(|b| BindingFigures {
            name: snap.binding_name(b).to_string(),
            group: snap.group_name(snap.group_of(b)).to_string(),
            ..BindingFigures::default()
        })
        .collect();
    // Bindings by name: a configuration may hold thousands, and a scrape visits every queue.
    let mut index: HashMap<String, usize> = out
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.clone(), i))
        .collect();
    for slot in stats.bindings() {
        let i = *index.entry(slot.name.to_string()).or_insert_with(|| {
            out.push(BindingFigures {
                name: slot.name.to_string(),
                group: "-".into(),
                ..BindingFigures::default()
            });
            out.len() - 1
        });
        let f = &mut out[i];
        f.total = slot.tally.read();
        f.since_reset = since.get(&slot.name).copied().unwrap_or_default();
        (f.delivery_rate, f.reception_rate) = stats.rates(&slot.name);
    }
    for q in queues {
        if let Some(&i) = index.get(&q.binding) {
            let f = &mut out[i];
            f.open_connections += u64::from(q.connections);
            f.active += q.active as u64;
            f.delayed += q.delayed as u64;
            f.inflight += u64::from(q.inflight);
            f.target += u64::from(q.target);
            f.waiting_for_slot += q.waiting_for_slot();
        }
    }
    out.retain(|f| f.group != "-" || f.queued() > 0 || f.total != Counts::default());
    out
}
