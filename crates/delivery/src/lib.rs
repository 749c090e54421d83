//! Delivery: from a queued message to a remote server's reply, as the message's binding.
//!
//! # Layout
//! - [`options`]: the delivery options of one (binding, domain), resolved once.
//! - [`resolver`]: the DNS seam (hickory, in-memory, TTL cache); [`resolv_conf`] reads
//!   `resolv_conf` files.
//! - [`route`]: gateway, routes, MX and implicit MX into an ordered list of addresses.
//! - [`dsn`]: RFC 3464 bounces and success reports.
//! - [`mainlog`]: the JSON-lines log.

pub mod dsn;
pub mod mainlog;
pub mod options;
pub mod outbound;
pub mod resolv_conf;
pub mod resolver;
pub mod route;
pub mod stream;
pub mod tls;
