//! The syntax tree of one configuration file, before any meaning is attached.
//!
//! Names of options and scopes are kept as written; the schema decides later what they are.

use crate::span::Span;

/// A value as written: a scalar, a list `( a b )` or a dictionary `[ k = v ]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawValue {
    Scalar(String),
    List(Vec<RawValue>),
    Dict(Vec<(String, RawValue)>),
}

#[derive(Clone, Debug)]
pub struct Spanned<T> {
    pub node: T,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum Item {
    /// `key = value`
    Option {
        key: Spanned<String>,
        value: Spanned<RawValue>,
    },
    /// `keyword ["name"] { items }`
    Stanza {
        keyword: Spanned<String>,
        name: Option<Spanned<String>>,
        items: Vec<Item>,
        /// Span of the opening brace, for "unclosed stanza" notes.
        open: Span,
    },
    /// `include "path"` or `readonly_include "path"`
    Include {
        readonly: bool,
        path: Spanned<String>,
    },
}
