//! Delivery queues without I/O: where each message part waits, when it is due, and whether a
//! throttle lets it go.
//!
//! # Layout
//! - [`queues`]: one active and one delayed queue per (binding, domain), and the timers that
//!   wake a delayed queue when its earliest part is due. Nothing here ever walks every
//!   message: promotion pops due parts off per-queue heaps, and the timer heap holds at most
//!   one entry per queue and wake-up time.
//! - [`retry`]: the retry schedule (`retry_interval` doubling up to `max_retry_interval`,
//!   `max_retries`, `message_expiration`, `never_retry`).
//! - [`throttle`]: token buckets keyed by the scope that defined the throttle (Momentum's
//!   "by reference" semantics), behind the [`throttle::ThrottleStore`] seam.
//! - [`pacing`]: slow start, how many connections a queue may open now.
//! - [`caps`]: connection caps that cross queues (server, binding, configuration scope,
//!   host), with their waiters woken in order when a place frees.
//! - [`sites`]: queues that reach the same hosts the same way share their connections; a
//!   queue's first connection waits for one of its site's.
//! - [`clock`]: the [`clock::Clock`] seam, real and manual.
//!
//! The payload of a queued part is generic: the daemon stores a handle to the message's
//! envelope and the indexes of the recipients this part carries.

pub mod caps;
pub mod clock;
pub mod pacing;
pub mod queues;
pub mod retry;
pub mod sites;
pub mod throttle;

pub use caps::{CapId, CapKey, Caps, Limit, Refused};
pub use clock::{Clock, ManualClock, SystemClock};
pub use queues::{QueueId, Queues};
pub use retry::{MaxRetries, Next, RetryPolicy};
pub use sites::{SiteId, SiteView, Sites};
pub use throttle::{Rate, ThrottleKey, ThrottleStore, TokenBuckets};
