//! Helpers the delivery crate's integration tests share.
#![allow(dead_code)] // each test binary uses its own part of the helpers
pub mod dnsmasq;
