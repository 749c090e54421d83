//! Statistics that survive a restart (Momentum's permastore): `stats.json` in the spool
//! folder, written every `Permastore_Interval` seconds and at shutdown, read at start.
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

/// Puts back the counters saved by the last run. A missing file is a first start; an
/// unreadable one is logged and ignored (statistics are not worth refusing to start for).
pub fn restore(stats: &Stats, spoolbase: &Path) {
    let path = spoolbase.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice::<Saved>(&bytes) {
            Ok(saved) => stats.restore(&saved),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "statistics file unreadable; starting from zero")
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot read statistics file"),
    }
}

/// Writes the counters with [`crate::write_durably`], so a crash leaves the old or the new
/// file, never half of one.
pub fn save(stats: &Stats, spoolbase: &Path) {
    let path = spoolbase.join(FILE);
    let write = || -> std::io::Result<()> {
        let bytes = serde_json::to_vec(&stats.save()).map_err(std::io::Error::other)?;
        crate::write_durably(&path, &bytes)
    };
    if let Err(e) = write() {
        tracing::warn!(path = %path.display(), error = %e, "cannot write statistics file");
    }
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
            let (stats, base) = (Arc::clone(&shared.stats), shared.spoolbase.clone());
            let _ = tokio::task::spawn_blocking(move || save(&stats, &base)).await;
        }
    }
}
