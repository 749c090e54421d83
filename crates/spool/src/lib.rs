//! The spool: where accepted messages live until they are delivered or bounced.
//!
//! # Layout
//! - [`envelope`]: the envelope format (JSON + CRC line), recipients and their state.
//! - [`file`]: the message file (head line, envelope at acceptance, body).
//! - [`fs`]: the file-system seam under the disk spool, real or in memory (able to lose
//!   power, for the crash test).
//! - [`id`]: message ids and the folder each lives in.
//! - [`incoming`]: a body written as it arrives, for messages too large to hold in memory.
//! - [`journal`]: recipients' changes of state, appended per batch (`ID.jrn`).
//! - [`disk`]: the real spool, files in hashed folders with group commit.
//! - [`memory`]: an in-memory spool for tests, with injectable failures.
//!
//! The [`Spool`] trait is the seam. Its `store` is callback-based so the crate needs no async
//! runtime: the daemon wraps it in a oneshot channel.

pub mod disk;
pub mod envelope;
pub mod file;
pub mod fs;
pub mod id;
pub mod incoming;
pub mod journal;
pub mod memory;

use std::path::PathBuf;

pub use disk::{DiskSpool, SyncMethod};
pub use envelope::{Envelope, RcptState, Recipient, Ret};
pub use id::IdGenerator;
pub use incoming::Incoming;
pub use memory::MemSpool;

/// Called once, from the spool's own thread, when a store is durable (`Ok`) or has failed.
pub type Completion = Box<dyn FnOnce(Result<(), SpoolError>) + Send + 'static>;

/// Why the spool could not do what was asked. The SMTP layer answers `451 4.3.0` to any of
/// these on a store; nothing half-written is left behind.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no such message: {0}")]
    NotFound(String),
    #[error("the spool is shutting down")]
    Closed,
    #[error("injected failure")]
    Injected,
}

/// `body` with an envelope's `prefix` before it: the message as it is sent.
pub fn with_prefix(prefix: Option<&str>, body: Vec<u8>) -> Vec<u8> {
    match prefix {
        Some(p) => {
            let mut out = Vec::with_capacity(p.len() + body.len());
            out.extend_from_slice(p.as_bytes());
            out.extend_from_slice(&body);
            out
        }
        None => body,
    }
}

/// A file recovery could not use.
#[derive(Debug, Clone)]
pub struct Quarantined {
    /// Where it is now (in the quarantine folder, unless moving it failed or the scan was
    /// read-only).
    pub path: PathBuf,
    pub reason: String,
}

/// What a scan of the spool found.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Every usable message, oldest first.
    pub messages: Vec<Envelope>,
    pub quarantined: Vec<Quarantined>,
    /// Leftovers of interrupted work, removed: envelope rewrites that did not finish (the
    /// previous envelope stands) and envelopes whose message file a removal had already
    /// unlinked.
    pub removed_unfinished: usize,
}

/// The seam between the daemon and message storage.
pub trait Spool: Send + Sync + 'static {
    /// Makes the message durable, then calls `done`. Sets `body_len` and `body_crc`.
    fn store(&self, env: Envelope, body: Vec<u8>, done: Completion);
    /// Starts a body written as it arrives, for message `id` (not yet in the queue).
    fn incoming(&self, id: &str) -> Result<Incoming, SpoolError> {
        Ok(Incoming::memory(id))
    }
    /// Like `store`, for a body written through [`Spool::incoming`]; sets `body_len` and
    /// `body_crc` from it.
    fn store_incoming(&self, mut env: Envelope, mut body: Incoming, done: Completion) {
        let (len, crc) = body.seal();
        env.body_len = len;
        env.body_crc = crc;
        match body.take() {
            incoming::Sink::Memory(bytes) => self.store(env, bytes, done),
            _ => done(Err(SpoolError::Closed)),
        }
    }
    /// Replaces the envelope atomically (a retry, a recipient's new state).
    fn update(&self, env: &Envelope) -> Result<(), SpoolError>;
    /// Makes the new states of the recipients at `changed` durable, at a cost in proportion to
    /// `changed`, not to the whole envelope: what delivery calls after each batch. Only the
    /// recipients' states are promised; attempts and the next attempt time keep what the
    /// last `update` wrote. The default rewrites the envelope.
    fn settle_recipients(&self, env: &Envelope, changed: &[u32]) -> Result<(), SpoolError> {
        let _ = changed;
        self.update(env)
    }
    /// Forgets the message.
    fn remove(&self, id: &str) -> Result<(), SpoolError>;
    /// Reads the body.
    fn body(&self, id: &str) -> Result<Vec<u8>, SpoolError>;
    /// The message as it is sent: the envelope's `prefix` (signatures of a message that was
    /// written as it arrived), then the body.
    fn message(&self, env: &Envelope) -> Result<Vec<u8>, SpoolError> {
        Ok(with_prefix(env.prefix.as_deref(), self.body(&env.id)?))
    }
    /// Finds every stored message; sets aside what cannot be used.
    fn recover(&self) -> Result<Recovered, SpoolError>;
    /// False after several writes in a row failed, until [`Spool::probe`] or a store succeeds.
    fn healthy(&self) -> bool;
    /// Tries a small durable write; success makes the spool healthy again.
    fn probe(&self) -> bool;
}
