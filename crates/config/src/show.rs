//! `config show`: the whole tree printed back as normalised configuration text.
//!
//! Canonical option and scope names, one option per line, four-space indent, names always
//! quoted, values bare when they are plain words and quoted otherwise. Bindings are printed
//! inside their binding group. Parsing the output gives a tree of the same shape (a property
//! test holds us to that).

use std::fmt::Write;

use crate::lexer::is_word_byte;
use crate::schema::ScopeKind;
use crate::syntax::RawValue;
use crate::tree::{ConfigTree, ROOT, ScopeId, Setting};
use crate::value::write_quoted;

pub fn show(tree: &ConfigTree) -> String {
    let mut out = String::new();
    body(tree, ROOT, 0, &Everything, &mut out);
    out
}

/// What a printout keeps: [`show`] keeps everything; `config writeback` keeps what the
/// running configuration adds to the files.
pub trait Keep {
    /// Whether scope `id` is printed at all (its stanza, even when nothing in it is kept).
    fn scope(&self, id: ScopeId) -> bool;
    /// Whether this setting of scope `id` is printed.
    fn setting(&self, id: ScopeId, s: &Setting) -> bool;
}

struct Everything;

impl Keep for Everything {
    fn scope(&self, _: ScopeId) -> bool {
        true
    }
    fn setting(&self, _: ScopeId, _: &Setting) -> bool {
        true
    }
}

/// The tree printed as [`show`] does, with only what `keep` keeps.
pub fn show_kept(tree: &ConfigTree, keep: &dyn Keep) -> String {
    let mut out = String::new();
    body(tree, ROOT, 0, keep, &mut out);
    out
}

/// One scope printed as its stanza, everything under it included; the global scope prints
/// as [`show`] does.
pub fn show_scope(tree: &ConfigTree, id: ScopeId) -> String {
    if id == ROOT {
        return show(tree);
    }
    let scope = tree.scope(id);
    let mut out = scope.kind.def().keyword.to_string();
    if let Some(name) = &scope.name {
        out.push(' ');
        let _ = write_quoted(&mut out, name);
    }
    out.push_str(" {\n");
    body(tree, id, 1, &Everything, &mut out);
    out.push_str("}\n");
    out
}

fn body(tree: &ConfigTree, id: ScopeId, depth: usize, keep: &dyn Keep, out: &mut String) {
    let indent = "    ".repeat(depth);
    let scope = tree.scope(id);
    for s in scope.settings.iter().filter(|s| keep.setting(id, s)) {
        let _ = write!(out, "{indent}{} = ", s.option.def().name);
        raw(&s.raw, out);
        out.push('\n');
    }
    let mut children: Vec<ScopeId> = scope
        .children
        .iter()
        .copied()
        .filter(|&c| !(tree.scope(c).kind == ScopeKind::Binding && tree.group_of(c).is_some()))
        .filter(|&c| keep.scope(c))
        .collect();
    if scope.kind == ScopeKind::BindingGroup {
        // Bindings live at the top of the tree; print the group's members inside it.
        let members = tree
            .scope(ROOT)
            .children
            .iter()
            .copied()
            .filter(|&c| tree.group_of(c) == Some(id) && keep.scope(c));
        children.splice(0..0, members);
    }
    for c in children {
        let child = tree.scope(c);
        let _ = write!(out, "{indent}{}", child.kind.def().keyword);
        if let Some(name) = &child.name {
            out.push(' ');
            let _ = write_quoted(out, name);
        }
        out.push_str(" {\n");
        body(tree, c, depth + 1, keep, out);
        let _ = writeln!(out, "{indent}}}");
    }
}

/// Writes a value as written in a file.
pub fn raw(value: &RawValue, out: &mut String) {
    match value {
        RawValue::Scalar(s) => scalar(s, out),
        RawValue::List(items) => {
            out.push('(');
            for i in items {
                out.push(' ');
                raw(i, out);
            }
            out.push_str(" )");
        }
        RawValue::Dict(entries) => {
            out.push('[');
            for (k, v) in entries {
                out.push(' ');
                scalar(k, out);
                out.push_str(" = ");
                raw(v, out);
            }
            out.push_str(" ]");
        }
    }
}

fn scalar(s: &str, out: &mut String) {
    if !s.is_empty() && s.bytes().all(is_word_byte) && !s.starts_with("/*") {
        out.push_str(s);
    } else {
        let _ = write_quoted(out, s);
    }
}
