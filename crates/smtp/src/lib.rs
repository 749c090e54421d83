//! The SMTP protocol core of bindery, without I/O.
//!
//! # Layout
//! - [`address`]: reverse and forward paths, parsed strictly, quoting kept.
//! - [`client`]: the outbound (client) state machine: replies in, commands out.
//! - [`command`]: one command line to a typed [`command::Command`].
//! - [`data`]: the DATA receiver (dot-unstuffing, the only end-of-data mark, bare CR/LF).
//! - [`line_ends`]: a message's line ends made CRLF (for what bindery builds or signs).
//! - [`relay`]: `relay_domains` matching and the open-relay rules.
//! - [`reply`]: replies with enhanced status codes.
//! - [`received`]: the `Received:` header and RFC 5322 dates.
//! - [`session`]: the server state machine that ties them together.
//!
//! Nothing here reads a socket, a file or a clock; the daemon does, and passes in what the
//! session needs (the peer address, the time for the trace header).

pub mod address;
pub mod client;
pub mod command;
pub mod data;
pub mod line_ends;
pub mod received;
pub mod relay;
pub mod reply;
pub mod session;

pub use reply::Reply;
pub use session::{Recipient, Rejected, Session, SessionConfig, Step, Transaction};
