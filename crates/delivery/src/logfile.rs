//! An append-only log file written by a thread of its own, so no SMTP session or delivery
//! waits on the disk. Used by the JSON mainlog and by each of Momentum's logs.
//!
//! The writer batches what is queued and flushes after each batch, so `tail -f` sees every
//! line within one wake-up. It can write a heartbeat line on a fixed period (Momentum's
//! `heartbeat`), and reopen its path on request (after `ec_rotate` or `logrotate` moved the
//! file away).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A periodic line: `line(now)` every `every`, `now` in seconds since the epoch.
#[derive(Clone, Copy, Debug)]
pub struct Beat {
    pub every: Duration,
    pub line: fn(u64) -> String,
}

enum Msg {
    Line(Vec<u8>),
    Reopen,
}

pub struct LogFile {
    path: PathBuf,
    tx: Mutex<Option<Sender<Msg>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

fn open_append(path: &Path, mode: u32) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(mode)
        .open(path)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl LogFile {
    /// Opens (creating with `mode`) `path` for appending, and starts its writer.
    pub fn open(path: &Path, mode: u32, beat: Option<Beat>) -> std::io::Result<LogFile> {
        let file = open_append(path, mode)?;
        let (tx, rx) = mpsc::channel::<Msg>();
        let reopen_path = path.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("log writer".into())
            .spawn(move || {
                let mut out = BufWriter::new(file);
                let mut next_beat = beat.map(|b| Instant::now() + b.every);
                loop {
                    let msg = match next_beat {
                        None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                        Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
                    };
                    let handle = |m: Msg, out: &mut BufWriter<File>| match m {
                        Msg::Line(l) => {
                            let _ = out.write_all(&l);
                        }
                        Msg::Reopen => {
                            let _ = out.flush();
                            match open_append(&reopen_path, mode) {
                                Ok(f) => *out = BufWriter::new(f),
                                Err(e) => tracing::warn!(path = %reopen_path.display(), error = %e, "cannot reopen log; still writing the old file"),
                            }
                        }
                    };
                    match msg {
                        Ok(m) => {
                            handle(m, &mut out);
                            while let Ok(more) = rx.try_recv() {
                                handle(more, &mut out);
                            }
                        }
                        Err(RecvTimeoutError::Timeout) => {
                            if let (Some(b), Some(at)) = (beat, next_beat.as_mut()) {
                                let _ = out.write_all((b.line)(unix_now()).as_bytes());
                                *at += b.every;
                            }
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                    let _ = out.flush();
                }
                let _ = out.flush();
            })?;
        Ok(LogFile {
            path: path.to_path_buf(),
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues one line (which ends in a newline).
    pub fn line(&self, bytes: Vec<u8>) {
        self.send(Msg::Line(bytes));
    }

    /// Closes the file and opens its path again (after rotation).
    pub fn reopen(&self) {
        self.send(Msg::Reopen);
    }

    fn send(&self, m: Msg) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = tx.send(m);
        }
    }

    /// Writes what is queued and stops the writer.
    pub fn close(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = h.join();
        }
    }
}

impl Drop for LogFile {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_heartbeats_and_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let beat = Beat {
            every: Duration::from_millis(30),
            line: |now| format!("{now}@@@@M\n"),
        };
        let log = LogFile::open(&path, 0o600, Some(beat)).expect("open");
        log.line(b"one\n".to_vec());
        std::thread::sleep(Duration::from_millis(100));
        std::fs::rename(&path, dir.path().join("log.1")).expect("rotate");
        log.reopen();
        log.line(b"two\n".to_vec());
        log.close();
        let old = std::fs::read_to_string(dir.path().join("log.1")).expect("old");
        assert!(old.starts_with("one\n"), "{old}");
        assert!(
            old.lines().filter(|l| l.ends_with("@@@@M")).count() >= 2,
            "{old}"
        );
        let new = std::fs::read_to_string(&path).expect("new");
        assert!(new.starts_with("two\n"), "{new}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
