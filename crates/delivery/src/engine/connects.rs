//! Connect pacing per remote address, across every binding: at most
//! `host_max_connects_in_progress` attempts between the SYN and the end of EHLO, and at most
//! `host_connect_rate` new connections a second. With thousands of bindings, each queue's
//! slow start alone still let every queue open its first connection at once: 2,000 bindings
//! to one sink put 7,900 connects in SYN-SENT, and the kernel's SYN retries (1 s, 3 s, 7 s)
//! set the pace. Here the connects to one address wait their turn, first come first served
//! (a `tokio` semaphore is fair), and a remote that greets slowly gets fewer at once.
//!
//! The values are read per connect: the global value, or the one in a global `host` stanza
//! matching the host's name or address (only global host stanzas: the limit is for every
//! binding together).

use std::net::IpAddr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use bindery_config::Snapshot;
use bindery_config::schema::{OptionId, option_id};
use bindery_config::snapshot::Level;
use bindery_config::value::Value;
use bindery_queue::throttle::Bucket;
use bindery_queue::{Clock, Rate};
use rustc_hash::FxHashMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::route::Target;

struct Ids {
    in_progress: OptionId,
    rate: OptionId,
}

static IDS: LazyLock<Ids> = LazyLock::new(|| Ids {
    in_progress: option_id("Host_Max_Connects_In_Progress"),
    rate: option_id("Host_Connect_Rate"),
});

/// The pacing for one remote address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnectLimits {
    /// 0: no limit.
    pub in_progress: u32,
    /// `None`: no limit.
    pub rate: Option<Rate>,
}

impl ConnectLimits {
    pub fn resolve(snap: &Snapshot, target: &Target) -> ConnectLimits {
        let ids = &*IDS;
        let value = |opt: OptionId| -> Option<Value> {
            if snap.has_hosts() {
                let ip = target.addr.ip().to_string();
                for name in [target.host.as_str(), ip.as_str()] {
                    let dk = snap.domain_key(name);
                    if let Some(r) = snap.host_chain(None, None, &dk).get(opt)
                        && r.level == Some(Level::GlobalHost)
                    {
                        return Some(r.value.clone());
                    }
                }
            }
            snap.global(opt).cloned()
        };
        ConnectLimits {
            in_progress: match value(ids.in_progress) {
                Some(Value::Int(n)) => u32::try_from(n).unwrap_or(0),
                _ => 0,
            },
            rate: match value(ids.rate) {
                Some(Value::Throttle(t)) if t.count > 0 && t.seconds > 0 => Some(Rate {
                    count: t.count,
                    seconds: t.seconds,
                }),
                _ => None,
            },
        }
    }
}

struct Gate {
    max: u32,
    slots: Arc<Semaphore>,
    /// The connect rate's bucket, made at the first connect under a rate.
    bucket: Option<Bucket>,
}

/// Every remote address's gate.
#[derive(Default)]
pub(crate) struct Connects {
    gates: Mutex<FxHashMap<IpAddr, Gate>>,
    /// The map's size after the last sweep of unused gates.
    swept: Mutex<usize>,
}

/// A connect's turn; the next one's starts when this is dropped.
pub(crate) struct Turn {
    _slot: Option<OwnedSemaphorePermit>,
}

impl Connects {
    fn lock(&self) -> std::sync::MutexGuard<'_, FxHashMap<IpAddr, Gate>> {
        self.gates.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a connect's turn to `ip`: a slot among those in progress, then a token.
    pub async fn enter(&self, ip: IpAddr, limits: ConnectLimits, clock: &dyn Clock) -> Turn {
        let slots = if limits.in_progress == 0 {
            None
        } else {
            let mut gates = self.lock();
            self.sweep(&mut gates);
            let gate = gates.entry(ip).or_insert_with(|| new_gate(limits));
            if gate.max != limits.in_progress {
                // A reload changed the limit: later connects take the new one; those in
                // progress finish under the old.
                gate.max = limits.in_progress;
                gate.slots = Arc::new(Semaphore::new(limits.in_progress as usize));
            }
            Some(Arc::clone(&gate.slots))
        };
        let slot = match slots {
            Some(s) => s.acquire_owned().await.ok(),
            None => None,
        };
        if let Some(rate) = limits.rate {
            while let Err(wait) = self.token(ip, rate, limits, clock) {
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
        }
        Turn { _slot: slot }
    }

    /// Takes a token for `ip`, or says how many ms until there is one.
    fn token(
        &self,
        ip: IpAddr,
        rate: Rate,
        limits: ConnectLimits,
        clock: &dyn Clock,
    ) -> Result<(), u64> {
        let now = clock.now_ms();
        let mut gates = self.lock();
        let gate = gates.entry(ip).or_insert_with(|| new_gate(limits));
        gate.bucket
            .get_or_insert_with(|| Bucket::new(rate, now))
            .take(rate, now)
    }

    /// Drops the gates nobody uses (no connect in progress, a full bucket), once the map has
    /// doubled since the last sweep: memory stays in proportion to the addresses in use,
    /// at O(1) amortised per connect.
    fn sweep(&self, gates: &mut FxHashMap<IpAddr, Gate>) {
        let mut swept = self.swept.lock().unwrap_or_else(|p| p.into_inner());
        if gates.len() < (*swept * 2).max(1024) {
            return;
        }
        gates.retain(|_, g| {
            Arc::strong_count(&g.slots) > 1 || g.bucket.as_ref().is_some_and(|b| !b.is_full())
        });
        *swept = gates.len();
    }
}

fn new_gate(limits: ConnectLimits) -> Gate {
    Gate {
        max: limits.in_progress,
        slots: Arc::new(Semaphore::new(limits.in_progress.max(1) as usize)),
        bucket: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bindery_queue::ManualClock;

    fn limits(in_progress: u32, rate: Option<(u32, u32)>) -> ConnectLimits {
        ConnectLimits {
            in_progress,
            rate: rate.map(|(count, seconds)| Rate { count, seconds }),
        }
    }

    #[tokio::test]
    async fn connects_to_one_address_wait_for_a_turn() {
        let connects = Arc::new(Connects::default());
        let clock = Arc::new(ManualClock::new(0));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let l = limits(2, None);
        let a = connects.enter(ip, l, clock.as_ref()).await;
        let _b = connects.enter(ip, l, clock.as_ref()).await;
        let c2 = Arc::clone(&connects);
        let k2 = Arc::clone(&clock);
        let third = tokio::spawn(async move { c2.enter(ip, l, k2.as_ref()).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!third.is_finished(), "two in progress already");
        let _elsewhere = connects.enter(other, l, clock.as_ref()).await;
        drop(a);
        let _c = tokio::time::timeout(Duration::from_secs(1), third)
            .await
            .expect("a turn came when one ended")
            .unwrap();
    }

    #[test]
    fn the_rate_refills_as_the_clock_moves() {
        let connects = Connects::default();
        let clock = ManualClock::new(0);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let rate = Rate {
            count: 2,
            seconds: 1,
        };
        let l = limits(0, Some((2, 1)));
        assert!(connects.token(ip, rate, l, &clock).is_ok());
        assert!(connects.token(ip, rate, l, &clock).is_ok());
        assert_eq!(connects.token(ip, rate, l, &clock), Err(500));
        clock.advance_ms(500);
        assert!(connects.token(ip, rate, l, &clock).is_ok());
    }
}
