//! DKIM signing for bindery (issue 20): keys ([`key`]), signatures ([`sign`]), and
//! Momentum's `opendkim` module ([`plan`]): which signatures a message gets, made once,
//! before the spool write.
//!
//! - [`key`]: private keys, RSA 1024 to 4096 bits and Ed25519.
//! - [`keycache`]: keys read from files, with Momentum's cache TTLs.
//! - [`responsible`]: the responsible domain (Sender, else From).
//! - [`strip`]: removes our own signatures from an earlier pass.
//! - [`sign`]: one `DKIM-Signature` field.
//! - [`copies`]: the `z=` tag (`copy_headers`), which mail-auth does not write.
//! - [`plan`]: the `opendkim` stanzas made ready to sign.
//! - [`verify`]: verification with OpenDKIM's statuses, for Lua.

pub mod copies;
pub mod key;
pub mod keycache;
pub mod plan;
pub mod responsible;
pub mod sign;
pub mod strip;
pub mod verify;

pub use key::{Key, KeyError};
pub use plan::{Outcome, PlanError, Signed, Signers};
pub use sign::{Canon, Options, SignError, crlf, sign};
