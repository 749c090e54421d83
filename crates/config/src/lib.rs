//! Momentum's configuration language for bindery.
//!
//! # Layout
//! - [`span`], [`diag`]: source files, locations and diagnostics.
//! - [`lexer`], [`parser`], [`syntax`]: text to syntax tree, no I/O, never panics.
//! - [`loader`]: reads the main file and its includes through a [`loader::Source`].
//! - [`schema`]: the one table of scopes and options.
//! - [`value`]: typed values, checked against the schema.
//! - [`tree`]: the merged scope tree, validated against the schema.
//! - [`snapshot`]: the compiled, immutable configuration with the fallback chains.
//! - [`query`]: scope paths as the console writes them (`binding b domain d opt`).
//! - [`show`]: prints a tree back as normalised configuration text.
//! - [`change`]: run-time `config set` / `config unset` on a copy of the tree.
//! - [`writeback`]: the running tree's difference from the files, for `Local_Changes_File`.

pub mod change;
pub mod diag;
pub mod inbound;
pub mod lexer;
pub mod loader;
pub mod parser;
pub mod query;
pub mod schema;
pub mod show;
pub mod snapshot;
pub mod span;
pub mod syntax;
pub mod tls_protocols;
pub mod tree;
pub mod value;
pub mod writeback;

pub use diag::{Diagnostic, Severity};
pub use loader::{FsSource, LoadOptions, MemSource, Source};
pub use snapshot::Snapshot;
pub use tree::ConfigTree;

use std::io;
use std::path::{Path, PathBuf};

/// Loads a configuration file with its includes and checks it against the schema.
///
/// Returns the tree and every diagnostic, errors and warnings alike; the tree is only fit
/// to compile when no diagnostic is an error. The `Err` case is reserved for the main file
/// itself being unreadable.
pub fn load(
    source: &dyn Source,
    main: &Path,
    opts: &LoadOptions,
) -> io::Result<(ConfigTree, Vec<Diagnostic>)> {
    let loaded = loader::load(source, main, opts)?;
    Ok(ConfigTree::build(loaded))
}

/// Where `config writeback` writes and where the next start reads run-time changes: the
/// global `Local_Changes_File` (Momentum's default path when unset). A relative path is taken
/// from the daemon's working folder, as `Spoolbase` is.
pub fn local_changes_path(tree: &ConfigTree) -> PathBuf {
    let opt = schema::option_id("Local_Changes_File");
    let value = tree
        .scope(tree::ROOT)
        .setting(opt)
        .map(|s| s.value.clone())
        .or_else(|| snapshot::default_value(opt));
    match value {
        Some(value::Value::Path(p) | value::Value::Str(p)) => PathBuf::from(p),
        _ => PathBuf::from("local_changes.conf"),
    }
}

/// Reads `Local_Changes_File`, if it exists, into `tree`: after every other file, so that
/// what it says wins (Momentum loads it implicitly, last). Diagnostics point into it.
pub fn load_local_changes(tree: &mut ConfigTree, source: &dyn Source) -> Vec<Diagnostic> {
    let path = local_changes_path(tree);
    if source.kind(&path) != Some(false) {
        return Vec::new();
    }
    match source.read(&path) {
        Ok(text) => tree.apply(&path.display().to_string(), &text),
        Err(e) => {
            let file = tree.sources.add(path.clone(), String::new());
            vec![Diagnostic::error(
                span::Span::new(file, 0, 0),
                format!("cannot read local changes file {}: {e}", path.display()),
            )]
        }
    }
}

/// Compiles one configuration text with no includes: for tests and embedded configurations.
/// Errors come back rendered (`FILE:LINE:COL: error: ...` with the caret).
pub fn snapshot_from_str(name: &str, text: &str) -> Result<Snapshot, String> {
    let source = MemSource::new().with(name, text);
    let opts = LoadOptions {
        node: "localhost".into(),
        search_path: Some(String::new()),
    };
    let (tree, diags) = load(&source, Path::new(name), &opts).map_err(|e| e.to_string())?;
    let errors: Vec<Diagnostic> = diags.into_iter().filter(|d| d.is_error()).collect();
    if !errors.is_empty() {
        return Err(diag::render_all(&errors, &tree.sources));
    }
    Ok(Snapshot::compile(tree, 1))
}
