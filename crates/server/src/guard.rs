//! What every side listener (HTTP, console) keeps to, so that no stranger who can reach it
//! can take descriptors or CPU from SMTP and the spool:
//!
//! - a connection cap (`Concurrency`; 0 means [`HTTP_CONCURRENCY`] or [`CONTROL_CONCURRENCY`]),
//!   past which a new connection is closed at once;
//! - a deadline on every read and every write ([`Deadline`]): a connection that sends nothing,
//!   or does not read what it is sent, for `Idle_Time` is closed;
//! - a reserve of descriptors it never takes: past `nofile - RESERVE` open descriptors, a side
//!   listener closes new connections, so SMTP sessions and spool files can still open;
//! - back-off when `accept` fails (`EMFILE` above all), instead of a loop that spins.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Connections an HTTP listener takes at once when `Concurrency` is 0 (unset).
pub const HTTP_CONCURRENCY: usize = 64;
/// Connections a console listener takes at once when `Concurrency` is 0 (unset).
pub const CONTROL_CONCURRENCY: usize = 16;
/// Descriptors a side listener leaves free for SMTP sessions, outbound connections and the
/// spool: 128, or a tenth of the limit when that is more.
fn reserve(limit: u64) -> u64 {
    (limit / 10).max(128)
}

/// A stream whose every read and write fails with `TimedOut` after waiting `limit` without
/// progress. A read that waits is an idle client (an HTTP keep-alive with no next request, a
/// slow request head); a write that waits is a client that does not read. A connection a
/// [`Gate`] admitted also holds its place under the cap here, until it is dropped.
pub struct Deadline<S> {
    inner: S,
    limit: Duration,
    read: Option<Pin<Box<Sleep>>>,
    write: Option<Pin<Box<Sleep>>>,
    _slot: Option<OwnedSemaphorePermit>,
}

impl<S> Deadline<S> {
    pub fn new(inner: S, limit: Duration) -> Deadline<S> {
        Deadline {
            inner,
            limit,
            read: None,
            write: None,
            _slot: None,
        }
    }
}

/// Settles one poll against its timer: progress disarms it, waiting arms it (once), and a
/// wait past the limit becomes `TimedOut`.
fn against<T>(
    r: Poll<io::Result<T>>,
    timer: &mut Option<Pin<Box<Sleep>>>,
    limit: Duration,
    cx: &mut Context<'_>,
) -> Poll<io::Result<T>> {
    match r {
        Poll::Ready(r) => {
            *timer = None;
            Poll::Ready(r)
        }
        Poll::Pending => {
            let t = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
            if t.as_mut().poll(cx).is_ready() {
                *timer = None;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no progress within the listener's idle time",
                )))
            } else {
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadline<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        against(r, &mut this.read, this.limit, cx)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadline<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        against(r, &mut this.write, this.limit, cx)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        against(r, &mut this.write, this.limit, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        against(r, &mut this.write, this.limit, cx)
    }
}

/// The admission rules of one side listener.
#[derive(Clone)]
pub struct Gate {
    what: &'static str,
    slots: Arc<Semaphore>,
    idle: Duration,
}

impl Gate {
    pub fn new(what: &'static str, cap: usize, idle: Duration) -> Gate {
        Gate {
            what,
            slots: Arc::new(Semaphore::new(cap)),
            idle,
        }
    }

    /// Admits a new connection, or refuses it (the caller drops it, which closes it) when
    /// the cap is reached or the process is into its descriptor reserve.
    pub fn admit<S>(&self, stream: S) -> Option<Deadline<S>> {
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            tracing::debug!(
                listener = self.what,
                "connection cap reached; closing a new connection"
            );
            return None;
        };
        if let Some((open, limit)) = descriptors()
            && open + reserve(limit) > limit
        {
            tracing::warn!(
                listener = self.what,
                open,
                limit,
                "descriptors low; closing a new connection to keep them for SMTP and the spool"
            );
            return None;
        }
        Some(Deadline {
            _slot: Some(slot),
            ..Deadline::new(stream, self.idle)
        })
    }
}

/// Open descriptors of this process and the soft `nofile` limit, where /proc tells.
fn descriptors() -> Option<(u64, u64)> {
    let limit = nofile()?.0;
    let open = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some((open, limit))
}

/// The soft and hard `RLIMIT_NOFILE`.
fn nofile() -> Option<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return None;
    }
    Some((r.rlim_cur, r.rlim_max))
}

/// Raises the soft `nofile` limit to the hard one (a daemon that may hold 10,000 sessions
/// should not stop at a shell's 1,024), and returns the limit now in force.
pub fn raise_nofile() -> Option<u64> {
    let (soft, hard) = nofile()?;
    if soft < hard {
        let r = libc::rlimit {
            rlim_cur: hard,
            rlim_max: hard,
        };
        // SAFETY: setrlimit reads one rlimit we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } == 0 {
            return Some(hard);
        }
    }
    Some(soft)
}

/// The connections an ESMTP listener can really take under a descriptor limit of `limit`:
/// what is left once the side listeners' reserve is kept. Each session costs one descriptor,
/// and delivery, the spool and the logs need theirs.
pub fn smtp_cap(configured: usize, limit: u64) -> usize {
    let room = limit.saturating_sub(reserve(limit)).max(1);
    configured.min(usize::try_from(room).unwrap_or(usize::MAX))
}

/// The outbound connections delivery can really open under a descriptor limit of `limit`,
/// with `inbound` sessions allowed on the ESMTP listeners: the room the SMTP cap has, less
/// those sessions, but never under half of it (each side may be busy at a time; a
/// connect that finds no descriptor would defer its mail, one that waits for a place does
/// not).
pub fn outbound_cap(limit: u64, inbound: usize) -> u32 {
    let room = limit.saturating_sub(reserve(limit)).max(2);
    let left = room.saturating_sub(inbound as u64).max(room / 2);
    u32::try_from(left).unwrap_or(u32::MAX)
}

/// Paces an accept loop after failures: 5 ms doubling to 1 s, reset by a success; logs the
/// first failure of a run and then at most one line every 10 s.
pub struct Backoff {
    what: &'static str,
    wait: Duration,
    logged: Option<Instant>,
    failures: u64,
}

impl Backoff {
    pub fn new(what: &'static str) -> Backoff {
        Backoff {
            what,
            wait: Duration::from_millis(5),
            logged: None,
            failures: 0,
        }
    }

    pub fn succeeded(&mut self) {
        self.wait = Duration::from_millis(5);
        self.failures = 0;
    }

    /// Waits before the next accept.
    pub async fn failed(&mut self, e: &io::Error) {
        self.failures += 1;
        let now = Instant::now();
        if self
            .logged
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10))
        {
            self.logged = Some(now);
            tracing::warn!(listener = self.what, error = %e, failures = self.failures, "accept failed; backing off");
        }
        tokio::time::sleep(self.wait).await;
        self.wait = (self.wait * 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn outbound_connections_get_what_inbound_sessions_leave_but_half_at_least() {
        // 4,096 descriptors: 3,687 of room after the reserve (a tenth).
        assert_eq!(outbound_cap(4096, 1000), 2687);
        assert_eq!(outbound_cap(4096, 20_000), 1843, "half the room");
        assert_eq!(outbound_cap(1_048_576, 1000), 942_719);
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_or_write_without_progress_times_out() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut a = Deadline::new(a, Duration::from_secs(5));
        let mut buf = [0u8; 8];
        b.write_all(b"hi").await.unwrap();
        assert_eq!(a.read(&mut buf).await.unwrap(), 2, "progress is no timeout");
        let e = a.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "nothing sent for 5 s");
        // b never reads: the 64-byte pipe fills and the write waits.
        let e = a.write_all(&[0u8; 1000]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "nothing read for 5 s");
    }

    /// An accept that fails at once (EMFILE) must not make its loop spin: ten failures in a
    /// row wait out at least the doubling steps, 5 ms to 1 s.
    #[tokio::test(start_paused = true)]
    async fn failed_accepts_back_off() {
        let mut b = Backoff::new("test");
        let e = io::Error::from_raw_os_error(libc::EMFILE);
        let start = Instant::now();
        for _ in 0..10 {
            b.failed(&e).await;
        }
        let waited = start.elapsed();
        assert!(
            waited
                >= Duration::from_millis(5 * (1 + 2 + 4 + 8 + 16 + 32 + 64 + 128))
                    + Duration::from_secs(2),
            "{waited:?}"
        );
        b.succeeded();
        let start = Instant::now();
        b.failed(&e).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(5),
            "a success starts again"
        );
    }

    #[test]
    fn the_gate_caps_connections() {
        let gate = Gate::new("test", 2, Duration::from_secs(1));
        let one = gate.admit(());
        let two = gate.admit(());
        assert!(one.is_some() && two.is_some());
        assert!(gate.admit(()).is_none(), "over the cap");
        drop(one);
        assert!(gate.admit(()).is_some(), "a slot came back");
    }

    #[test]
    fn an_smtp_cap_beyond_the_descriptors_is_lowered() {
        assert_eq!(smtp_cap(10_000, 1024), 896);
        assert_eq!(smtp_cap(500, 1024), 500);
        assert_eq!(smtp_cap(10_000, 1_048_576), 10_000);
        assert_eq!(smtp_cap(10, 64), 1, "never 0");
    }

    #[test]
    fn the_reserve_is_a_tenth_or_128() {
        assert_eq!(reserve(1024), 128);
        assert_eq!(reserve(65536), 6553);
    }
}
