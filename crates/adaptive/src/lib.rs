//! Adaptive delivery for bindery (issue 22), without I/O: Momentum's adaptive rules
//! (`3-ad/` in SparkPost/support-docs) kept per binding x domain.
//!
//! - [`duration`]: `4 hours`, `15 minutes`.
//! - [`action`]: `suspend`, `blackhole`, `throttle down`, `greylisted`,
//!   `reduce_connections`, `reduce_deliveries`, and bindery's `bounce`.
//! - [`trigger`]: `1` and `N/S`.
//! - [`rules`]: the rule sets, aliases, `augment` and `replace`, matching per domain.
//!
//! - [`state`]: the book per binding x domain: suspensions, lowered limits, the climb
//!   back, history, persistence as JSON lines.
//! - [`sweep`]: Momentum's sweep rules on bounce and FBL rates.
//! - [`system`]: Momentum's system rules, in force before any script registers its own.
//! - [`live`]: the daemon's shared state (rules in force, the book, change hooks).

pub mod action;
pub mod duration;
pub mod live;
pub mod rules;
pub mod state;
pub mod sweep;
pub mod system;
pub mod trigger;

pub use action::{Action, ActionError};
pub use duration::DurationError;
pub use live::Live;
pub use rules::{DomainRules, Entry, Mode, Range, Response, RuleSet, RuleSetError};
pub use state::{Book, BookError, Change, Explanation, Key, Limits, Lowered, State, Suspension};
pub use sweep::{Code, SweepError, SweepRule, Totals, Volumes, Window, Windows};
pub use trigger::{Trigger, TriggerError};
