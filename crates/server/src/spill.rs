//! A message too large to hold in memory goes to the spool as it arrives. Once the part of a
//! message the session holds reaches [`SPILL_AT`], the connection takes it
//! (`Session::take_data`) and writes it through a [`bindery_spool::Incoming`]: the message
//! gets its id and trace header then (as Postfix's smtpd writes its Received header when the
//! data begins), and every later megabyte is appended off the async threads. So a session
//! holds at most about two megabytes of any message, whatever its size; without this, a
//! 256 MB message took 524 MB of memory.
//!
//! The policy's end-of-DATA callouts see the message's header section (all they read; see
//! `bindery_policy::headers`). A message refused at its end, or whose client goes away, drops
//! its `Spill`, and the spool removes what was written.

use std::net::IpAddr;

use bindery_smtp::Session;
use bindery_smtp::received::{Trace, received};
use bindery_spool::{Incoming, SpoolError};

use crate::{Shared, unix_now};

/// Bytes of a message a session holds before it writes them to the spool.
pub const SPILL_AT: usize = 1 << 20;
/// The most of a header section kept for the policy.
const HEAD_MAX: usize = 256 * 1024;

/// What was written so far of the message being received.
pub struct Spill {
    serial: u64,
    pub id: String,
    /// The message's header section, for the policy.
    pub head: Vec<u8>,
    /// `None` once a write failed: the rest is read and thrown away, the message refused.
    body: Option<Incoming>,
    pub error: Option<SpoolError>,
}

impl Spill {
    /// Starts writing the message `session` is receiving, with `first`, the bytes taken.
    pub async fn start(
        shared: &Shared,
        session: &Session,
        peer: IpAddr,
        received_by: &str,
        first: Vec<u8>,
    ) -> Spill {
        let time = unix_now();
        let id = shared.ids.next(time);
        let (helo, protocol, rcpts) = session.trace();
        let single = match rcpts {
            [one] => Some(one.mailbox.to_string()),
            _ => None,
        };
        let header = received(&Trace {
            helo,
            peer,
            hostname: received_by,
            protocol,
            id: &id,
            single_rcpt: single.as_deref(),
            time,
            auth_user: session.authenticated().map(|(u, _)| u),
        });
        let head = header_section(&first).to_vec();
        let mut spill = Spill {
            serial: session.data_serial(),
            id: id.clone(),
            head,
            body: None,
            error: None,
        };
        match shared.spool.incoming(&id) {
            Ok(body) => {
                spill.body = Some(body);
                let mut start = header.into_bytes();
                start.extend_from_slice(&first);
                spill.write(start).await;
            }
            Err(e) => spill.fail(e),
        }
        spill
    }

    /// Whether this is the message `session` is receiving now.
    pub fn is_current(&self, session: &Session) -> bool {
        session.in_data() && session.data_serial() == self.serial
    }

    /// Appends bytes, off the async threads.
    pub async fn write(&mut self, bytes: Vec<u8>) {
        let Some(mut body) = self.body.take() else {
            return;
        };
        let done = tokio::task::spawn_blocking(move || {
            let r = body.write(&bytes);
            (body, r)
        })
        .await;
        match done {
            Ok((body, Ok(()))) => self.body = Some(body),
            Ok((_, Err(e))) => self.fail(e),
            Err(e) => self.fail(SpoolError::Io {
                op: "write",
                path: std::path::PathBuf::from("incoming"),
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }

    fn fail(&mut self, e: SpoolError) {
        tracing::warn!(id = %self.id, error = %e, "cannot write an incoming message to the spool");
        self.body = None;
        self.error.get_or_insert(e);
    }

    /// The body written, ready to store; `None` if a write failed.
    pub fn finish(self) -> Option<Incoming> {
        self.body
    }
}

/// The header section of a message's start: through the blank line that ends it, or all of
/// `bytes` (at most [`HEAD_MAX`]) when it has none yet.
fn header_section(bytes: &[u8]) -> &[u8] {
    let end = memchr::memmem::find(bytes, b"\r\n\r\n").map_or(bytes.len(), |i| i + 4);
    &bytes[..end.min(HEAD_MAX)]
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_header_section_ends_at_the_blank_line() {
        assert_eq!(
            super::header_section(b"A: 1\r\nB: 2\r\n\r\nbody\r\n"),
            b"A: 1\r\nB: 2\r\n\r\n"
        );
        assert_eq!(super::header_section(b"A: 1\r\n"), b"A: 1\r\n");
    }
}
