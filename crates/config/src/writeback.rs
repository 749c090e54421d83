//! `config writeback`: what the running configuration adds to the files, as the text of
//! `Local_Changes_File`.
//!
//! Momentum loads `Local_Changes_File` after every other file, so a setting there overrides
//! the same setting anywhere else. We write the *difference* between the files as they are
//! now (read again without the local changes file) and the running tree, not a log of the
//! commands typed: a set followed by an unset writes nothing, a change made twice is written
//! once, and changes written back earlier are written again (the file is replaced whole).
//!
//! A file loaded last can add and override but never remove. An option the files set and
//! the running configuration no longer has (a run-time `unset`) cannot be written; it is
//! reported with the file and line to edit instead. We never edit the operator's own files
//! (Momentum does, with `Local_Changes_Only = false`); see ARCHITECTURE.md.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::show::{Keep, show_kept};
use crate::tree::{ConfigTree, ROOT, ScopeId, Setting};

/// The text to write and what could not be said in it.
#[derive(Debug, Default)]
pub struct LocalChanges {
    /// Configuration text; empty when the running configuration equals the files.
    pub text: String,
    /// Settings (and new empty scopes) written.
    pub written: usize,
    /// One line per option the files set and the running configuration does not.
    pub not_written: Vec<String>,
}

/// The scope of `to` that is scope `id` of `from`: same kinds and names on the way down.
/// Bindings are found by name wherever their group is.
fn counterpart(from: &ConfigTree, to: &ConfigTree, id: ScopeId) -> Option<ScopeId> {
    if id == ROOT {
        return Some(ROOT);
    }
    let s = from.scope(id);
    let parent = counterpart(from, to, s.parent.unwrap_or(ROOT))?;
    to.find(parent, s.kind, s.name.as_deref())
}

struct Diff<'a> {
    base: &'a ConfigTree,
    live: &'a ConfigTree,
    printed: HashSet<ScopeId>,
}

impl Diff<'_> {
    fn differs(&self, id: ScopeId, s: &Setting) -> bool {
        match counterpart(self.live, self.base, id) {
            None => true,
            Some(b) => self
                .base
                .scope(b)
                .setting(s.option)
                .is_none_or(|old| old.raw != s.raw),
        }
    }
}

impl Keep for Diff<'_> {
    fn scope(&self, id: ScopeId) -> bool {
        self.printed.contains(&id)
    }
    fn setting(&self, id: ScopeId, s: &Setting) -> bool {
        self.differs(id, s)
    }
}

/// The local changes that make `base` (the files) into `live` (the running tree).
pub fn local_changes(base: &ConfigTree, live: &ConfigTree) -> LocalChanges {
    let mut diff = Diff {
        base,
        live,
        printed: HashSet::new(),
    };
    let mut written = 0;
    for id in live.scope_ids().filter(|&id| id != ROOT) {
        let new_scope = counterpart(live, base, id).is_none();
        let kept = live
            .scope(id)
            .settings
            .iter()
            .filter(|s| diff.differs(id, s))
            .count();
        written += kept;
        if new_scope || kept > 0 {
            if new_scope && live.scope(id).settings.is_empty() {
                written += 1;
            }
            // The stanzas around it (a binding's group included) must be printed too.
            diff.printed.extend(live.lineage(id));
        }
    }
    written += live
        .scope(ROOT)
        .settings
        .iter()
        .filter(|s| diff.differs(ROOT, s))
        .count();
    let mut not_written = Vec::new();
    for id in base.scope_ids() {
        let there = counterpart(base, live, id);
        for s in &base.scope(id).settings {
            if there.is_none_or(|l| live.scope(l).setting(s.option).is_none()) {
                not_written.push(format!(
                    "{} {} is set in {} but not in the running configuration; a local changes file cannot unset it, edit that file",
                    base.label(id),
                    s.option.def().name,
                    base.sources.file_line(s.span),
                ));
            }
        }
    }
    let text = if written == 0 {
        String::new()
    } else {
        show_kept(live, &diff)
    };
    LocalChanges {
        text,
        written,
        not_written,
    }
}

/// Configuration files whose text on disk (`base`, read now) is not the text the running
/// configuration (`live`) was read from: added, edited or removed since the last start or
/// reload. Writing back then would write the old text's values over the new, so the console
/// refuses. Run-time changes (`<console>`) and the local changes file itself do not count.
pub fn files_changed(base: &ConfigTree, live: &ConfigTree, local: &Path) -> Vec<PathBuf> {
    let ours = |p: &Path| p == local || p == Path::new(crate::change::CONSOLE_FILE);
    let text_in = |tree: &ConfigTree, path: &Path| {
        tree.sources
            .files()
            .find(|(_, f)| f.path == path)
            .map(|(_, f)| f.text.clone())
    };
    let mut out: Vec<PathBuf> = Vec::new();
    for (_, f) in base.sources.files().filter(|(_, f)| !ours(&f.path)) {
        if text_in(live, &f.path).as_deref() != Some(f.text.as_str()) {
            out.push(f.path.clone());
        }
    }
    for (_, f) in live.sources.files().filter(|(_, f)| !ours(&f.path)) {
        if text_in(base, &f.path).is_none() && !out.contains(&f.path) {
            out.push(f.path.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::{Action, apply};
    use crate::snapshot::Snapshot;

    fn snap(text: &str) -> Snapshot {
        crate::snapshot_from_str("main.conf", text).expect("valid config")
    }

    fn change(s: &Snapshot, action: Action, words: &str) -> Snapshot {
        let w: Vec<String> = words.split_whitespace().map(String::from).collect();
        let c = apply(s, action, &w).expect("valid change");
        Snapshot::compile(c.tree, s.generation + 1)
    }

    const BASE: &str = r#"
        binding_group "g" {
          binding "b1" { bind_address = "127.0.0.2" suspend_delivery = false }
        }
        domain "d.example" { max_outbound_connections = 5 }
    "#;

    #[test]
    fn writes_only_the_difference_and_it_parses_back() {
        let base = snap(BASE);
        let mut live = change(
            &base,
            Action::Set,
            "binding_group g binding b1 suspend_delivery true",
        );
        live = change(&live, Action::Set, "binding new1 bind_address 127.0.0.9");
        live = change(
            &live,
            Action::Set,
            "binding_group g binding b2 ehlo_hostname two.example",
        );
        live = change(
            &live,
            Action::Set,
            "domain d.example max_outbound_connections 5",
        );
        live = change(&live, Action::Set, "retry_interval 60");
        let out = local_changes(&base.tree, &live.tree);
        assert_eq!(out.written, 4, "{}", out.text);
        assert!(out.not_written.is_empty());
        assert_eq!(
            out.text,
            "Retry_Interval = 60\n\
             Binding_Group \"g\" {\n    Binding \"b1\" {\n        Suspend_Delivery = true\n    }\n    Binding \"b2\" {\n        EHLO_Hostname = two.example\n    }\n}\n\
             Binding \"new1\" {\n    Bind_Address = 127.0.0.9\n}\n"
        );
        // Files then the local changes give the running configuration.
        let mut restarted = (*base.tree).clone();
        let diags = restarted.apply("local_changes.conf", &out.text);
        assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
        assert_eq!(restarted.shape(), live.tree.shape());
    }

    #[test]
    fn edited_files_are_found() {
        let base = snap(BASE);
        let live = change(&base, Action::Set, "binding b1 ehlo_hostname x.example");
        let local = Path::new("local.conf");
        assert!(files_changed(&base.tree, &live.tree, local).is_empty());
        let edited = snap(&BASE.replace("= 5", "= 6"));
        assert_eq!(
            files_changed(&edited.tree, &live.tree, local),
            [PathBuf::from("main.conf")]
        );
    }

    #[test]
    fn a_set_undone_writes_nothing_and_an_unset_of_a_file_setting_is_reported() {
        let base = snap(BASE);
        let live = change(&base, Action::Set, "binding b1 ehlo_hostname x.example");
        let live = change(&live, Action::Unset, "binding b1 ehlo_hostname");
        let out = local_changes(&base.tree, &live.tree);
        assert_eq!((out.written, out.text.as_str()), (0, ""));
        let live = change(
            &base,
            Action::Unset,
            "domain d.example max_outbound_connections",
        );
        let out = local_changes(&base.tree, &live.tree);
        assert_eq!(out.written, 0);
        assert_eq!(out.not_written.len(), 1);
        assert!(
            out.not_written[0].starts_with(
                "domain \"d.example\" Max_Outbound_Connections is set in main.conf:5 but not"
            ),
            "{:?}",
            out.not_written
        );
    }
}
