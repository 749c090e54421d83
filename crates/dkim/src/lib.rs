//! DKIM signing for bindery (issue 20): keys ([`key`]) and signatures ([`sign`]).
//!
//! This crate knows nothing of configurations or messages in flight: the daemon decides
//! which signatures a message gets (the `opendkim` stanzas, `opendkim_sign` through the
//! fallback chain) and calls [`sign::sign`] once per signature, before the spool write.

pub mod key;
pub mod sign;

pub use key::{Key, KeyError};
pub use sign::{Canon, Options, SignError, crlf, sign};
