//! Adaptive delivery for bindery (issue 22), without I/O: Momentum's adaptive rules
//! (`3-ad/` in SparkPost/support-docs) kept per binding x domain.
//!
//! - [`duration`]: `4 hours`, `15 minutes`.
//! - [`action`]: `suspend`, `blackhole`, `throttle down`, `greylisted`, `warmup`,
//!   `reduce_connections`, `reduce_deliveries`, and bindery's `bounce`.
//! - [`trigger`]: `1` and `N/S`.
//! - [`rules`]: the rule sets, aliases, `augment` and `replace`, matching per domain.
//!
//! The per binding x domain state, sweep rules and persistence come in the
//! next slices; nothing in the configuration reaches this crate yet.

pub mod action;
pub mod duration;
pub mod rules;
pub mod state;
pub mod sweep;
pub mod trigger;

pub use action::{Action, ActionError};
pub use duration::DurationError;
pub use rules::{DomainRules, Entry, Mode, Range, Response, RuleSet, RuleSetError};
pub use state::{Book, BookError, Change, Key, Limits, State, Suspension};
pub use sweep::{Code, SweepError, SweepRule, Volumes, Window};
pub use trigger::{Trigger, TriggerError};
