//! One active and one delayed queue per (binding, domain), and the timers that wake them.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};

use rustc_hash::FxHashMap;

/// A queue's index; stable for the life of the process.
pub type QueueId = u32;

struct Delayed<T> {
    due_ms: u64,
    /// Insertion order breaks ties, so parts due at once go out first-in first-out.
    seq: u64,
    item: T,
}

impl<T> PartialEq for Delayed<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.due_ms, self.seq) == (o.due_ms, o.seq)
    }
}
impl<T> Eq for Delayed<T> {}
impl<T> PartialOrd for Delayed<T> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Delayed<T> {
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest on top.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.due_ms, o.seq).cmp(&(self.due_ms, self.seq))
    }
}

/// The queues of one (binding, domain).
pub struct Queue<T> {
    pub binding: u32,
    pub domain: Box<str>,
    /// 0, or what sets this queue's mail apart from the rest of its (binding, domain) that
    /// must not share a connection with it (a per-message SMTP AUTH login); the daemon keeps
    /// what each number means.
    pub variant: u32,
    active: VecDeque<T>,
    delayed: BinaryHeap<Delayed<T>>,
    /// The earliest wake-up in the timer heap for this queue, if any.
    armed_ms: Option<u64>,
    /// On the woken list already.
    woken: bool,
    /// Open outbound connections for this (binding, domain); the daemon keeps it.
    pub connections: u32,
}

impl<T> Queue<T> {
    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    pub fn delayed_len(&self) -> usize {
        self.delayed.len()
    }
}

/// Every queue, and the timer heap.
pub struct Queues<T> {
    queues: Vec<Queue<T>>,
    index: FxHashMap<(u32, u32, Box<str>), QueueId>,
    /// (wake-up time, queue). At most one live entry per queue and time: a queue is armed
    /// again only for an earlier time than it already has.
    timers: BinaryHeap<Reverse<(u64, QueueId)>>,
    seq: u64,
    woken: Vec<QueueId>,
}

impl<T> Default for Queues<T> {
    fn default() -> Self {
        Queues {
            queues: Vec::new(),
            index: FxHashMap::default(),
            timers: BinaryHeap::new(),
            seq: 0,
            woken: Vec::new(),
        }
    }
}

impl<T> Queues<T> {
    /// The queue for mail on `binding` to `domain` (lower-cased by the caller), made on first
    /// use.
    pub fn queue_id(&mut self, binding: u32, domain: &str) -> QueueId {
        self.queue_variant(binding, domain, 0)
    }

    /// The queue for mail on `binding` to `domain` set apart as `variant` (see
    /// [`Queue::variant`]; 0 is [`Queues::queue_id`]'s).
    pub fn queue_variant(&mut self, binding: u32, domain: &str, variant: u32) -> QueueId {
        if let Some(&q) = self.index.get(&(binding, variant, Box::from(domain))) {
            return q;
        }
        let q = self.queues.len() as QueueId;
        self.queues.push(Queue {
            binding,
            domain: domain.into(),
            variant,
            active: VecDeque::new(),
            delayed: BinaryHeap::new(),
            armed_ms: None,
            woken: false,
            connections: 0,
        });
        self.index.insert((binding, variant, domain.into()), q);
        q
    }

    pub fn get(&self, q: QueueId) -> &Queue<T> {
        &self.queues[q as usize]
    }

    pub fn get_mut(&mut self, q: QueueId) -> &mut Queue<T> {
        &mut self.queues[q as usize]
    }

    fn wake(&mut self, q: QueueId) {
        let queue = &mut self.queues[q as usize];
        if !queue.woken {
            queue.woken = true;
            self.woken.push(q);
        }
    }

    fn arm(&mut self, q: QueueId, due_ms: u64) {
        let queue = &mut self.queues[q as usize];
        if queue.armed_ms.is_none_or(|a| due_ms < a) {
            queue.armed_ms = Some(due_ms);
            self.timers.push(Reverse((due_ms, q)));
        }
    }

    /// Queues `item`: active if it is due at `now_ms`, else delayed until `due_ms`.
    pub fn push(&mut self, q: QueueId, item: T, due_ms: u64, now_ms: u64) {
        if due_ms <= now_ms {
            self.queues[q as usize].active.push_back(item);
            self.wake(q);
        } else {
            self.seq += 1;
            let seq = self.seq;
            self.queues[q as usize]
                .delayed
                .push(Delayed { due_ms, seq, item });
            self.arm(q, due_ms);
        }
    }

    /// The next part to attempt on queue `q`.
    pub fn pop_active(&mut self, q: QueueId) -> Option<T> {
        self.queues[q as usize].active.pop_front()
    }

    /// Puts a part taken with [`Queues::pop_active`] back at the head of the active queue,
    /// unattempted (every host it could go to was at its limit).
    pub fn unpop_active(&mut self, q: QueueId, item: T) {
        self.queues[q as usize].active.push_front(item);
    }

    /// Moves every part due at `now_ms` from delayed to active. Costs one heap pop per due
    /// part and per fired timer; queues with nothing due are not touched.
    pub fn promote(&mut self, now_ms: u64) -> usize {
        let mut moved = 0;
        while let Some(&Reverse((t, q))) = self.timers.peek() {
            if t > now_ms {
                break;
            }
            self.timers.pop();
            let queue = &mut self.queues[q as usize];
            if queue.armed_ms != Some(t) {
                continue; // superseded by an earlier arm that already fired
            }
            queue.armed_ms = None;
            while queue.delayed.peek().is_some_and(|d| d.due_ms <= now_ms) {
                if let Some(d) = queue.delayed.pop() {
                    queue.active.push_back(d.item);
                    moved += 1;
                }
            }
            let next = queue.delayed.peek().map(|d| d.due_ms);
            let has_active = !queue.active.is_empty();
            if let Some(next) = next {
                self.arm(q, next);
            }
            if has_active {
                self.wake(q);
            }
        }
        moved
    }

    /// When the next timer fires.
    pub fn next_timer_ms(&self) -> Option<u64> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// Queues that got active work since the last call. A queue is listed once however many
    /// parts arrived; the caller decides whether to open connections for it.
    pub fn take_woken(&mut self) -> Vec<QueueId> {
        let list = std::mem::take(&mut self.woken);
        for &q in &list {
            self.queues[q as usize].woken = false;
        }
        list
    }

    /// How many queues exist; ids run from 0 to this.
    pub fn len(&self) -> usize {
        self.queues.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// Takes every part out of queue `q`, active ones first (the console's `binding fail`).
    pub fn drain(&mut self, q: QueueId) -> Vec<T> {
        let queue = &mut self.queues[q as usize];
        let mut out: Vec<T> = queue.active.drain(..).collect();
        let mut delayed: Vec<Delayed<T>> = std::mem::take(&mut queue.delayed).into_vec();
        delayed.sort_by_key(|d| (d.due_ms, d.seq));
        out.extend(delayed.into_iter().map(|d| d.item));
        queue.armed_ms = None; // a stale timer entry, if any, is skipped when it fires
        out
    }

    /// Takes the parts of queue `q` that `pick` chooses, wherever they wait.
    pub fn take_where(&mut self, q: QueueId, mut pick: impl FnMut(&T) -> bool) -> Vec<T> {
        let queue = &mut self.queues[q as usize];
        let mut out = Vec::new();
        let mut keep = VecDeque::with_capacity(queue.active.len());
        for item in queue.active.drain(..) {
            if pick(&item) {
                out.push(item);
            } else {
                keep.push_back(item);
            }
        }
        queue.active = keep;
        let mut kept = BinaryHeap::new();
        for d in std::mem::take(&mut queue.delayed) {
            if pick(&d.item) {
                out.push(d.item);
            } else {
                kept.push(d);
            }
        }
        queue.delayed = kept;
        out
    }

    /// Makes every delayed part of queue `q` due now (`binding flush domain`). Returns how
    /// many moved.
    pub fn flush(&mut self, q: QueueId) -> usize {
        self.flush_where(q, |_| true)
    }

    /// Makes the delayed parts of queue `q` that `pick` chooses due now, in due order
    /// (`message retry`). Returns how many moved.
    pub fn flush_where(&mut self, q: QueueId, mut pick: impl FnMut(&T) -> bool) -> usize {
        let queue = &mut self.queues[q as usize];
        let mut delayed: Vec<Delayed<T>> = std::mem::take(&mut queue.delayed).into_vec();
        delayed.sort_by_key(|d| (d.due_ms, d.seq));
        let mut moved = 0;
        for d in delayed {
            if pick(&d.item) {
                queue.active.push_back(d.item);
                moved += 1;
            } else {
                queue.delayed.push(d);
            }
        }
        // A timer still armed for a moved part fires later and finds nothing due.
        if moved > 0 {
            self.wake(q);
        }
        moved
    }

    /// Every part of queue `q` with where it waits: `None` for active, else its due time.
    /// Active parts come first in sending order, then delayed ones by due time.
    pub fn parts(&self, q: QueueId) -> Vec<(&T, Option<u64>)> {
        let queue = &self.queues[q as usize];
        let mut out: Vec<(&T, Option<u64>)> = queue.active.iter().map(|t| (t, None)).collect();
        let mut delayed: Vec<&Delayed<T>> = queue.delayed.iter().collect();
        delayed.sort_by_key(|d| (d.due_ms, d.seq));
        out.extend(delayed.into_iter().map(|d| (&d.item, Some(d.due_ms))));
        out
    }

    /// Marks queue `q` as having work, so the caller looks at it again (after its options
    /// changed, say).
    pub fn touch(&mut self, q: QueueId) {
        if !self.queues[q as usize].active.is_empty() {
            self.wake(q);
        }
    }

    /// Total parts in every active and every delayed queue.
    pub fn totals(&self) -> (usize, usize) {
        self.queues.iter().fold((0, 0), |(a, d), q| {
            (a + q.active.len(), d + q.delayed.len())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_parts_go_active_others_wait_for_their_timer() {
        let mut qs: Queues<&str> = Queues::default();
        let a = qs.queue_id(0, "a.test");
        let b = qs.queue_id(1, "a.test");
        assert_ne!(a, b);
        assert_eq!(qs.queue_id(0, "a.test"), a);
        let v = qs.queue_variant(0, "a.test", 1);
        assert_ne!(v, a);
        assert_eq!(qs.queue_variant(0, "a.test", 1), v);
        assert_eq!(qs.get(v).variant, 1);
        qs.push(a, "now", 100, 100);
        qs.push(a, "later", 5000, 100);
        qs.push(a, "sooner", 2000, 100);
        qs.push(b, "b-later", 3000, 100);
        assert_eq!(qs.take_woken(), vec![a]);
        assert_eq!(qs.pop_active(a), Some("now"));
        assert_eq!(qs.pop_active(a), None);
        assert_eq!(qs.next_timer_ms(), Some(2000));
        assert_eq!(qs.promote(1999), 0);
        assert_eq!(qs.promote(2000), 1);
        assert_eq!(qs.take_woken(), vec![a]);
        assert_eq!(qs.pop_active(a), Some("sooner"));
        assert_eq!(qs.next_timer_ms(), Some(3000));
        assert_eq!(qs.promote(10_000), 2);
        let mut woken = qs.take_woken();
        woken.sort();
        assert_eq!(woken, vec![a, b]);
        assert_eq!(qs.totals(), (2, 0));
        assert_eq!(qs.next_timer_ms(), None);
    }

    #[test]
    fn console_operations_drain_pick_and_flush() {
        let mut qs: Queues<u32> = Queues::default();
        let q = qs.queue_id(0, "d");
        qs.push(q, 1, 0, 0);
        qs.push(q, 2, 500, 0);
        qs.push(q, 3, 100, 0);
        qs.push(q, 4, 0, 0);
        qs.take_woken();
        let listed: Vec<(u32, Option<u64>)> =
            qs.parts(q).into_iter().map(|(t, d)| (*t, d)).collect();
        assert_eq!(
            listed,
            vec![(1, None), (4, None), (3, Some(100)), (2, Some(500))]
        );
        assert_eq!(qs.take_where(q, |&t| t == 3 || t == 4), vec![4, 3]);
        qs.push(q, 5, 900, 0);
        assert_eq!(qs.flush_where(q, |&t| t == 5), 1);
        assert_eq!(qs.get(q).delayed_len(), 1, "2 stays delayed");
        assert_eq!(qs.take_where(q, |&t| t == 5), vec![5]);
        assert_eq!(qs.flush(q), 1);
        assert_eq!(qs.take_woken(), vec![q]);
        assert_eq!(qs.get(q).active_len(), 2);
        // The timer armed for 100 (now stale) fires without moving anything.
        assert_eq!(qs.promote(1000), 0);
        assert_eq!(qs.drain(q), vec![1, 2]);
        assert_eq!(qs.totals(), (0, 0));
    }

    #[test]
    fn equal_due_times_keep_arrival_order() {
        let mut qs: Queues<u32> = Queues::default();
        let q = qs.queue_id(0, "d");
        for i in 0..5 {
            qs.push(q, i, 50, 0);
        }
        qs.promote(50);
        let got: Vec<u32> = std::iter::from_fn(|| qs.pop_active(q)).collect();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn many_delayed_parts_cost_one_timer_per_queue() {
        let mut qs: Queues<u32> = Queues::default();
        let q = qs.queue_id(0, "d");
        for i in 0..10_000u32 {
            qs.push(q, i, 1_000_000 - u64::from(i), 0);
        }
        // Arming happens only for a new earliest time, which here is every push (descending
        // times); the stale entries are skipped when they fire.
        assert_eq!(qs.promote(990_001), 1);
        assert_eq!(qs.get(q).delayed_len(), 9_999);
        let mut later: Queues<u32> = Queues::default();
        let q = later.queue_id(0, "d");
        for i in 0..10_000u32 {
            later.push(q, i, 1000 + u64::from(i), 0);
        }
        assert_eq!(later.timers.len(), 1);
        assert_eq!(later.promote(u64::MAX), 10_000);
    }
}
