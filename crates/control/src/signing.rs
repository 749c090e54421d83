//! DKIM signing statistics, Momentum's `signing_stats`: global, per signing domain, per
//! binding, and per binding per domain. The daemon counts each message its `opendkim`
//! stanzas considered; the console shows them and Prometheus scrapes them.
//!
//! Global and per-binding counts survive a restart (they go in the permastore file with the
//! others); per-domain counts do not, as in Momentum. Domains are counted under their own
//! name up to [`MAX_DOMAINS`], then under `_other`, so a sender cycling through domains cannot
//! grow this without bound.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Distinct signing domains counted by name.
pub const MAX_DOMAINS: usize = 500;

/// Upper bounds of the signing-time histogram, in seconds.
pub const BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25,
];

/// One block of Momentum's output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// `AccumulatedSigningTime`, seconds.
    pub time: f64,
    /// `TotalMessagesSigned`: signatures made.
    pub signed: u64,
    /// `FailedSigningAttempts`.
    pub failed: u64,
    /// `TotalMessagesProcessed`: messages considered, signed or not.
    pub processed: u64,
}

impl Counts {
    fn add(&mut self, time: f64, signed: u64, failed: u64) {
        self.time += time;
        self.signed += signed;
        self.failed += failed;
        self.processed += 1;
    }
}

/// What is kept: Momentum's `signing_stats` option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    All,
    Global,
    Off,
}

/// Everything counted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub global: Counts,
    pub per_domain: BTreeMap<String, Counts>,
    pub per_binding: BTreeMap<String, Counts>,
    pub per_binding_domain: BTreeMap<String, BTreeMap<String, Counts>>,
    /// Signing time per message: how many took at most each of [`BUCKETS`] and more than
    /// the one before, then how many took longer than the last.
    #[serde(default)]
    pub histogram: Vec<u64>,
}

/// What survives a restart.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    pub global: Counts,
    pub per_binding: BTreeMap<String, Counts>,
}

/// The counters, behind one lock: a message takes it once, after its signatures, whose
/// cost is a hundred times the lock's.
#[derive(Debug, Default)]
pub struct SigningStats {
    inner: Mutex<Figures>,
}

/// One message's outcome for one signing domain.
pub struct Record<'a> {
    pub domain: Option<&'a str>,
    pub signed: u64,
    pub failed: u64,
}

impl SigningStats {
    /// Counts one message on `binding`: its time, and what each signing domain got.
    pub fn record(&self, mode: Mode, binding: &str, elapsed: Duration, records: &[Record<'_>]) {
        if mode == Mode::Off {
            return;
        }
        let time = elapsed.as_secs_f64();
        let signed: u64 = records.iter().map(|r| r.signed).sum();
        let failed: u64 = records.iter().map(|r| r.failed).sum();
        let mut f = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f.global.add(time, signed, failed);
        if f.histogram.len() != BUCKETS.len() + 1 {
            f.histogram = vec![0; BUCKETS.len() + 1];
        }
        let slot = BUCKETS
            .iter()
            .position(|b| time <= *b)
            .unwrap_or(BUCKETS.len());
        f.histogram[slot] += 1;
        if mode == Mode::Global {
            return;
        }
        f.per_binding
            .entry(binding.to_string())
            .or_default()
            .add(time, signed, failed);
        for r in records {
            let Some(d) = r.domain else { continue };
            let name = if f.per_domain.contains_key(d) || f.per_domain.len() < MAX_DOMAINS {
                d
            } else {
                "_other"
            };
            f.per_domain
                .entry(name.to_string())
                .or_default()
                .add(time, r.signed, r.failed);
            f.per_binding_domain
                .entry(binding.to_string())
                .or_default()
                .entry(name.to_string())
                .or_default()
                .add(time, r.signed, r.failed);
        }
    }

    pub fn figures(&self) -> Figures {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `signing_stats reset`.
    pub fn reset(&self) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = Figures::default();
    }

    pub fn save(&self) -> Saved {
        let f = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Saved {
            global: f.global,
            per_binding: f.per_binding.clone(),
        }
    }

    pub fn restore(&self, saved: &Saved) {
        let mut f = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f.global = saved.global;
        f.per_binding.clone_from(&saved.per_binding);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_level_and_mode() {
        let s = SigningStats::default();
        let ms = Duration::from_millis(1);
        s.record(
            Mode::All,
            "b1",
            ms,
            &[Record {
                domain: Some("a.example"),
                signed: 2,
                failed: 0,
            }],
        );
        s.record(
            Mode::All,
            "b1",
            ms,
            &[Record {
                domain: Some("b.example"),
                signed: 0,
                failed: 1,
            }],
        );
        s.record(Mode::Global, "b2", ms, &[]);
        s.record(Mode::Off, "b3", ms, &[]);
        let f = s.figures();
        assert_eq!(f.global.processed, 3);
        assert_eq!(f.global.signed, 2);
        assert_eq!(f.global.failed, 1);
        assert_eq!(f.per_binding.len(), 1);
        assert_eq!(f.per_binding["b1"].processed, 2);
        assert_eq!(f.per_domain["b.example"].failed, 1);
        assert_eq!(f.per_binding_domain["b1"]["a.example"].signed, 2);
        assert_eq!(f.histogram.iter().sum::<u64>(), 3);
        let saved = s.save();
        s.reset();
        assert_eq!(s.figures().global.processed, 0);
        s.restore(&saved);
        assert_eq!(s.figures().global.processed, 3);
        assert!(s.figures().per_domain.is_empty());
    }
}
