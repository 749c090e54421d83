//! `bindery run`: the daemon.
//!
//! Today it loads, checks and compiles the configuration, reports what it would serve, and
//! stops: the SMTP listener and spool arrive with issue 3, delivery with issue 4.

use std::process::ExitCode;

use bindery_config::diag::render_all;
use bindery_config::schema::{ScopeKind, option_by_name};
use bindery_config::snapshot::Snapshot;

use super::{ConfigArgs, load};

pub fn run(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let (tree, diags) = load(args)?;
    eprint!("{}", render_all(&diags, &tree.sources));
    if diags.iter().any(|d| d.is_error()) {
        eprintln!("bindery: configuration has errors; not starting");
        return Ok(ExitCode::FAILURE);
    }
    let snap = Snapshot::compile(tree, 1);
    let listens: Vec<String> = snap
        .tree
        .scope_ids()
        .filter(|&id| snap.tree.scope(id).kind == ScopeKind::Listen)
        .filter_map(|id| snap.tree.scope(id).name.clone())
        .collect();
    let spool = option_by_name("spoolbase")
        .and_then(|o| snap.global(o).map(|v| v.to_string()))
        .unwrap_or_default();
    eprintln!(
        "bindery: configuration generation {} loaded: {} bindings in {} binding groups; listeners {:?}; spool {}",
        snap.generation,
        snap.bindings().count(),
        snap.groups().count(),
        listens,
        spool
    );
    eprintln!("bindery: the SMTP listener is not implemented yet (issue 3); exiting");
    Ok(ExitCode::from(2))
}
