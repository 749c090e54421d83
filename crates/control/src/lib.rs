//! The control console and the metrics of bindery.
//!
//! # Layout
//! - [`words`]: a console line into words (quotes, escapes).
//! - [`frame`]: the wire format, sans-IO: request lines in, length-prefixed frames out.
//! - [`auth`]: the challenge-response login of TCP listeners, and htdigest password files.
//! - [`authz`]: the `Authorization` stanza: which commands a user's roles may run.
//! - [`session`]: one console connection's state machine (greeting, login, commands).
//! - [`daemon`]: the [`daemon::Daemon`] trait the commands run against.
//! - [`change`]: the one road for run-time `set`/`unset`, the console's and Lua's.
//! - [`commands`]: one file per command family; Momentum's output formats and JSON.
//! - [`injections`]: logins and injections per SMTP AUTH user and API key.
//! - [`metrics`]: the Prometheus text for `/metrics`.
//! - [`complete`]: completion candidates for the interactive client.
//!
//! **Architecture Invariant:** this crate opens no socket and reads no file; the server's
//! `control` and `http` modules move the bytes, and every change goes through the same
//! calls the daemon uses (`Daemon::install`, the engine's operations).

pub mod auth;
pub mod authz;
pub mod change;
pub mod commands;
pub mod complete;
pub mod daemon;
pub mod frame;
pub mod injections;
pub mod metrics;
pub mod session;
pub mod signing;
pub mod words;

pub use commands::{Output, run};
pub use daemon::Daemon;
