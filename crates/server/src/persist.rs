//! Statistics that survive a restart (Momentum's permastore): `stats.json` (delivery) and
//! `signing_stats.json` (DKIM, global and per binding) in the spool folder, written every
//! `Permastore_Interval` seconds and at shutdown, read at start.
//! The same task takes the once-a-second samples the console's rates come from.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bindery_config::schema::option_by_name;
use bindery_config::value::Value;
use bindery_delivery::stats::{Saved, Stats};
use tokio::sync::watch;

use crate::{Shared, unix_now};

const FILE: &str = "stats.json";
const SIGNING_FILE: &str = "signing_stats.json";

use bindery_control::signing::SigningStats;

/// Reads one saved file: `None` for a first start (no file) or an unreadable one, which is
/// logged and ignored (statistics are not worth refusing to start for).
fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<T>(&bytes) {
            Ok(saved) => Some(saved),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "statistics file unreadable; starting from zero");
                None
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read statistics file");
            None
        }
    }
}

/// Puts back the counters saved by the last run.
pub fn restore(stats: &Stats, signing: &SigningStats, spoolbase: &Path) {
    if let Some(saved) = read::<Saved>(&spoolbase.join(FILE)) {
        stats.restore(&saved);
    }
    if let Some(saved) = read(&spoolbase.join(SIGNING_FILE)) {
        signing.restore(&saved);
    }
}

/// Writes one file with [`crate::write_durably`], so a crash leaves the old or the new
/// file, never half of one.
fn write<T: serde::Serialize>(path: &Path, value: &T) {
    let write = || -> std::io::Result<()> {
        let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
        crate::write_durably(path, &bytes)
    };
    if let Err(e) = write() {
        tracing::warn!(path = %path.display(), error = %e, "cannot write statistics file");
    }
}

/// Writes the counters.
pub fn save(stats: &Stats, signing: &SigningStats, spoolbase: &Path) {
    write(&spoolbase.join(FILE), &stats.save());
    write(&spoolbase.join(SIGNING_FILE), &signing.save());
}

/// Samples rates and the spool's free space every second, and saves every
/// `Permastore_Interval` (read from the current generation each time, so a change applies at
/// once).
pub async fn ticker(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut last_save = unix_now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
        let now = unix_now();
        shared.stats.sample(now);
        if let Some(free) = shared.disk.free_bytes() {
            shared
                .spool_free
                .store(free, std::sync::atomic::Ordering::Relaxed);
        }
        let interval = option_by_name("Permastore_Interval")
            .and_then(|o| match shared.current().snapshot.global(o) {
                Some(Value::Seconds(s)) => Some(*s),
                _ => None,
            })
            .unwrap_or(300)
            .max(1);
        if now.saturating_sub(last_save) >= interval {
            last_save = now;
            let (stats, signing, base) = (
                Arc::clone(&shared.stats),
                Arc::clone(&shared.signing),
                shared.spoolbase.clone(),
            );
            let _ = tokio::task::spawn_blocking(move || save(&stats, &signing, &base)).await;
        }
    }
}
