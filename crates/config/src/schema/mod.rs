//! The schema: every scope kind and every option bindery knows, in one place.
//!
//! [`scopes::SCOPES`] says which stanzas exist and where they may appear;
//! [`options::OPTIONS`] declares each option's canonical name (as Momentum spells it), value
//! type, default, the scopes where it is valid and whether it can change at run time.
//! Nothing else in the code base may hard-code an option's default or validity.

pub mod kinds;
pub mod modules;
pub mod options;
pub mod scopes;

pub use kinds::{Kind, kind_of};
pub use options::{OPTION_COUNT, OPTIONS, OptionDef, OptionId, ValueType};
pub use scopes::{SCOPES, ScopeDef, ScopeKind, ScopeSet};

/// Finds an option by name, ignoring case (`max_outbound_connections` ==
/// `Max_Outbound_Connections`).
pub fn option_by_name(name: &str) -> Option<OptionId> {
    OPTIONS
        .iter()
        .position(|o| o.name.eq_ignore_ascii_case(name))
        .map(|i| OptionId(i as u16))
}

/// The id of an option the code names by a constant. Panics on a name missing from the
/// schema: that is a programming error, caught by the first test that resolves it (callers
/// keep these ids in a `LazyLock`).
pub fn option_id(name: &'static str) -> OptionId {
    option_by_name(name).unwrap_or_else(|| panic!("option {name} missing from the schema"))
}

/// Finds a scope kind by its keyword, ignoring case.
pub fn scope_by_keyword(word: &str) -> Option<&'static ScopeDef> {
    SCOPES.iter().find(|s| s.keyword.eq_ignore_ascii_case(word))
}
