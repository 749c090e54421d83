//! Warm-up plans (issue 22; bindery's own, beyond Momentum and KumoMTA): a new binding's
//! IP earns its reputation by sending each domain a little more each day. `warmup_plan =
//! ( 50 100 500 1000 )` with `warmup_start = "2026-12-01"` lets a binding::domain be sent at
//! most 50 recipients on the first UTC day, 100 on the second, and so on; past the plan,
//! no cap.
//!
//! The count is taken where a connection is about to send a part (each of its recipients
//! counts), so every path to the wire passes through it. A part that would start over the
//! cap goes back to the head of its queue, the connection closes, and the queue waits until
//! the next UTC day: it is parked in the timer heap, not retried, and its mail is neither
//! bounced nor counted as an attempt. A part may take the count past the cap by its own
//! recipients less one (the count is checked before a part, not split inside it). The
//! first time a day's cap is reached, the paniclog and the JSON mainlog say so.
//!
//! The day's count is kept in [`crate::stats::WarmCounts`], saved in `stats.json` with the
//! other counters: a restart goes on from it.

use bindery_queue::QueueId;

use super::Inner;
use crate::options::{DAY_MS, Warmup};

impl Inner {
    /// Whether `q` may send a part of `rcpts` recipients now under `plan`; counts them if
    /// so. If not, the queue waits for the next UTC day.
    pub(super) fn warm_admit(&self, q: QueueId, plan: &Warmup, rcpts: u32) -> bool {
        let now = self.now_ms();
        let day = i64::try_from(now / DAY_MS).unwrap_or(i64::MAX);
        let Some(cap) = plan.cap(day) else {
            return true;
        };
        let key = self.key_of(&self.lock(), q);
        if self
            .cfg
            .stats
            .warmup
            .admit(&key.binding, &key.domain, day, cap, rcpts)
        {
            return true;
        }
        let next_day_ms = (now / DAY_MS + 1) * DAY_MS;
        let tell = {
            let mut st = self.lock();
            let c = Inner::conns(&mut st, q);
            c.not_before_ms = c.not_before_ms.max(next_day_ms);
            c.warm_hold_ms = next_day_ms;
            let tell = c.warm_told != day;
            c.warm_told = day;
            tell
        };
        if tell {
            self.cfg.stats.adaptive.count(&key.binding, "warmup_cap");
            let action = format!(
                "warm-up day {} cap of {cap} reached: held until {}",
                plan.day_number(day),
                next_day_ms / 1000
            );
            let secs = now / 1000;
            self.cfg.eclogs.panic(
                secs,
                &format!("adaptive: {}::{} {action}", key.binding, key.domain),
            );
            tracing::info!(binding = %key.binding, domain = %key.domain, "{action}");
            self.log(&super::records::Adaptive {
                kind: "warmup",
                time: secs,
                binding: &key.binding,
                domain: &key.domain,
                action: &action,
                reply: "",
            });
        }
        false
    }

    /// Ends `q`'s warm-up hold if its options (`opts`, just resolved) no longer hold it: a
    /// new day, or a plan changed at run time (a higher cap, an earlier start, none).
    pub(super) fn warm_release(
        &self,
        st: &mut super::State,
        q: QueueId,
        opts: &crate::options::DeliveryOptions,
        now: u64,
    ) {
        if Inner::conns(st, q).warm_hold_ms == 0 {
            return;
        }
        let day = i64::try_from(now / DAY_MS).unwrap_or(i64::MAX);
        let full = match opts.warmup.as_ref().and_then(|p| p.cap(day)) {
            Some(cap) => {
                let key = self.key_of(st, q);
                self.cfg.stats.warmup.sent(&key.binding, &key.domain, day) >= cap
            }
            None => false,
        };
        let c = Inner::conns(st, q);
        if !full || c.warm_hold_ms <= now {
            if c.not_before_ms == c.warm_hold_ms {
                c.not_before_ms = 0;
            }
            c.warm_hold_ms = 0;
        }
    }
}
