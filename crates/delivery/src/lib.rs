//! Delivery: from a queued message to a remote server's reply, as the message's binding.
//!
//! # Layout
//! - [`options`]: the delivery options of one (binding, domain), resolved once.
//! - [`resolver`]: the DNS seam (hickory, in-memory, TTL cache); [`resolv_conf`] reads
//!   `resolv_conf` files.
//! - [`route`]: gateway, routes, MX and implicit MX into an ordered list of addresses.
//! - [`engine`]: queues, the dispatcher, connection tasks and outcomes.
//! - [`dsn`]: RFC 3464 bounces and success reports.
//! - [`events`]: each recipient's outcome, for a policy's log callouts.
//! - [`mainlog`]: the JSON-lines log.
//! - [`stats`]: counters per binding and global, for the console and metrics.
//! - [`sweep_rules`]: the `adaptive_sweep_rule` stanzas, and those of one binding::domain.

pub mod dsn;
pub mod eclog;
pub mod engine;
pub mod events;
pub mod logfile;
pub mod mainlog;
pub mod options;
pub mod outbound;
pub mod resolv_conf;
pub mod resolver;
pub mod route;
pub mod stats;
pub mod stream;
pub mod sweep_rules;
pub mod tls;
