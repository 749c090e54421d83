//! Bounce classification for bindery (issue 22): Momentum's bounce classes ([`class`]),
//! the rule set bindery ships ([`rules`], `rules/shipped.rules`), Momentum's
//! `bounce_classifier_override` files ([`overrides`]), and the [`Classifier`] that puts
//! them in order.
//!
//! Sans-IO: this crate reads no file and keeps no clock. The server reads the override
//! files (and re-reads them every `refresh` seconds) and builds a new [`Classifier`].

pub mod class;
pub mod classifier;
mod error;
pub mod overrides;
pub mod report;
pub mod rules;

pub use class::{CLASSES, Category, Class, Classes, Described};
pub use classifier::{Classifier, Counts, Sources, Verdict, normalize};
pub use error::RuleError;
pub use overrides::SmtpOverride;
pub use rules::{Origin, Rule};

/// The classifier in force, swapped whole when overrides are read again: delivery, the
/// console and Lua read it without a lock.
#[derive(Debug)]
pub struct Live(arc_swap::ArcSwap<Classifier>);

impl Live {
    pub fn new(c: Classifier) -> Live {
        Live(arc_swap::ArcSwap::from_pointee(c))
    }

    pub fn load(&self) -> arc_swap::Guard<std::sync::Arc<Classifier>> {
        self.0.load()
    }

    pub fn store(&self, c: Classifier) {
        self.0.store(std::sync::Arc::new(c));
    }

    pub fn store_arc(&self, c: std::sync::Arc<Classifier>) {
        self.0.store(c);
    }
}

impl Default for Live {
    /// The shipped rules alone.
    fn default() -> Live {
        Live(arc_swap::ArcSwap::new(shipped()))
    }
}

static SHIPPED: std::sync::LazyLock<std::sync::Arc<Classifier>> =
    std::sync::LazyLock::new(|| std::sync::Arc::new(Classifier::shipped()));

/// The shipped rules alone, compiled once per process.
pub fn shipped() -> std::sync::Arc<Classifier> {
    std::sync::Arc::clone(&SHIPPED)
}
