//! The merged scope tree: every stanza of every file folded into one tree of scopes, each
//! holding the options set directly in it, all checked against the schema.
//!
//! Merging rules:
//! - A stanza opened twice (in one file or several) is one scope; its contents merge, and a
//!   later setting of the same option replaces the earlier one.
//! - A binding is one scope wherever its stanzas appear. A `binding` stanza inside
//!   `binding_group "g"` puts the binding in `g`; the binding may be reopened at top level
//!   later. Putting one binding in two different groups is an error. A binding never placed
//!   in a group belongs to the `default` group.
//! - Domain and host names are case-insensitive (they are DNS names); binding and group
//!   names are case-sensitive. A domain or host name written `/.../` is a regular expression.

use std::collections::{BTreeMap, HashMap};

use regex::Regex;

use crate::diag::{Diagnostic, MAX_SHOWN, did_you_mean, shown};
use crate::loader::Loaded;
use crate::schema::modules::{Instances, ModuleDef, ModuleKind, module_by_name};
use crate::schema::{
    Kind, OPTIONS, OptionId, SCOPES, ScopeDef, ScopeKind, kind_of, option_by_name, scope_by_keyword,
};
use crate::span::{SourceMap, Span};
use crate::syntax::{Item, RawValue, Spanned};
use crate::value::{self, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeId(pub u32);

/// The global scope.
pub const ROOT: ScopeId = ScopeId(0);

/// One option set in one scope.
#[derive(Clone, Debug)]
pub struct Setting {
    pub option: OptionId,
    /// The value as written, for `config show`.
    pub raw: RawValue,
    pub value: Value,
    /// Where the option's name was written.
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Scope {
    pub kind: ScopeKind,
    /// The instance name as written (domains and hosts lower-cased unless a regex).
    pub name: Option<String>,
    pub parent: Option<ScopeId>,
    pub children: Vec<ScopeId>,
    pub settings: Vec<Setting>,
    /// Where each stanza that opened this scope starts.
    pub opened: Vec<Span>,
    /// For a binding: the binding group that holds it, and where that was said.
    pub group: Option<(ScopeId, Span)>,
    /// For a regex domain or host (`domain "/^mx[0-9]+\.example$/"`): the compiled pattern.
    pub pattern: Option<Regex>,
}

impl Scope {
    pub fn setting(&self, opt: OptionId) -> Option<&Setting> {
        self.settings.iter().find(|s| s.option == opt)
    }
}

/// One option or module the files name, and what bindery does with it (for
/// `config check --migrate-report`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub span: Span,
    /// `option`, `module` or `stanza` (a stanza that is neither a scope nor a module).
    pub what: &'static str,
    pub name: std::borrow::Cow<'static, str>,
    /// `implemented`, `inert`, `inert (tuning)`, `refused` or `unknown`.
    pub outcome: &'static str,
    /// Why, for anything not implemented.
    pub why: Option<&'static str>,
}

/// The whole configuration as a tree of scopes. Cloned to make a run-time change: the
/// running snapshot keeps its tree, the copy takes the change and compiles to the next
/// generation.
#[derive(Clone, Debug)]
pub struct ConfigTree {
    pub sources: SourceMap,
    /// The search path's folders (see [`crate::loader::Loaded::search`]).
    pub search: Vec<std::path::PathBuf>,
    scopes: Vec<Scope>,
    index: HashMap<(ScopeId, ScopeKind, String), ScopeId>,
    /// Every option and module the files name, in reading order, with its outcome. Emptied
    /// when the tree is compiled into a snapshot: only `config check` reads it.
    pub found: Vec<Found>,
}

impl ConfigTree {
    /// An empty tree: only the global scope.
    pub fn empty(sources: SourceMap) -> ConfigTree {
        ConfigTree {
            sources,
            search: Vec::new(),
            scopes: vec![Scope {
                kind: ScopeKind::Global,
                name: None,
                parent: None,
                children: Vec::new(),
                settings: Vec::new(),
                opened: Vec::new(),
                group: None,
                pattern: None,
            }],
            index: HashMap::new(),
            found: Vec::new(),
        }
    }

    /// Builds the tree from loaded items, checking everything against the schema.
    pub fn build(loaded: Loaded) -> (ConfigTree, Vec<Diagnostic>) {
        let mut b = Builder {
            tree: ConfigTree {
                search: loaded.search,
                ..ConfigTree::empty(loaded.sources)
            },
            diags: loaded.diags,
            hidden: 0,
            hidden_at: None,
        };
        b.items(ROOT, loaded.items, &[]);
        // Report in reading order: by file, then position (a stable sort keeps a parse error
        // before the schema error it may have caused on the same token); at most
        // `MAX_SHOWN`, then how many more.
        let mut diags = b.diags;
        diags.sort_by_key(|d| (d.span.file, d.span.start));
        b.tree.found.sort_by_key(|f| (f.span.file, f.span.start));
        (b.tree, crate::diag::cap(diags, b.hidden, b.hidden_at))
    }

    pub fn scope(&self, id: ScopeId) -> &Scope {
        &self.scopes[id.0 as usize]
    }

    /// The scope with this id, if this tree has it (an id from another generation's tree
    /// may not).
    pub fn get(&self, id: ScopeId) -> Option<&Scope> {
        self.scopes.get(id.0 as usize)
    }

    pub fn scope_ids(&self) -> impl Iterator<Item = ScopeId> + '_ {
        (0..self.scopes.len() as u32).map(ScopeId)
    }

    /// Every setting of `opt` in the files, with the scope it is in, in scope order: what
    /// a check that refuses an option somewhere walks.
    pub fn settings_of(&self, opt: OptionId) -> impl Iterator<Item = (ScopeId, &Setting)> + '_ {
        self.scope_ids()
            .filter_map(move |id| self.scope(id).setting(opt).map(|s| (id, s)))
    }

    /// The children of `parent` of this kind, in the order the files opened them (the
    /// scriptlets and logger stanzas of the global scope, a scriptlet's scripts).
    pub fn children_of(
        &self,
        parent: ScopeId,
        kind: ScopeKind,
    ) -> impl Iterator<Item = ScopeId> + '_ {
        self.scope(parent)
            .children
            .iter()
            .copied()
            .filter(move |&c| self.scope(c).kind == kind)
    }

    /// The child of `parent` of this kind and name. Bindings are always children of the
    /// global scope, whatever group holds them.
    pub fn find(&self, parent: ScopeId, kind: ScopeKind, name: Option<&str>) -> Option<ScopeId> {
        let parent = if kind == ScopeKind::Binding {
            ROOT
        } else {
            parent
        };
        self.index
            .get(&(parent, kind, normalize_name(kind, name.unwrap_or(""))))
            .copied()
    }

    /// The binding group holding binding `id`, `None` for the default group.
    pub fn group_of(&self, id: ScopeId) -> Option<ScopeId> {
        self.scope(id).group.map(|(g, _)| g)
    }

    /// The scopes from the outermost down to `id`, global excluded. A binding in a group is
    /// placed inside its group, as the console names it.
    pub fn lineage(&self, id: ScopeId) -> Vec<ScopeId> {
        let mut out = Vec::new();
        let mut cur = Some(id);
        while let Some(c) = cur.filter(|&c| c != ROOT) {
            out.push(c);
            let s = self.scope(c);
            cur = if s.kind == ScopeKind::Binding {
                s.group.map(|g| g.0).or(s.parent)
            } else {
                s.parent
            };
        }
        out.reverse();
        out
    }

    /// The scope's place as the console writes it: `binding_group "g" binding "b" domain "d"`.
    pub fn label(&self, id: ScopeId) -> String {
        let parts: Vec<String> = self
            .lineage(id)
            .into_iter()
            .map(|c| {
                let s = self.scope(c);
                let keyword = s.kind.def().keyword.to_ascii_lowercase();
                match &s.name {
                    Some(n) => format!("{keyword} \"{n}\""),
                    None => keyword,
                }
            })
            .collect();
        if parts.is_empty() {
            "global".into()
        } else {
            parts.join(" ")
        }
    }

    /// Momentum's internal scope path (as `config locate` prints it): `Binding:b:Domain:d:`,
    /// with `:` in names escaped as `\:` and anonymous scopes written `Scope::`.
    pub fn path(&self, id: ScopeId) -> String {
        self.lineage(id)
            .into_iter()
            .map(|c| {
                let s = self.scope(c);
                path_segment(s.kind, s.name.as_deref())
            })
            .collect()
    }

    /// A comparable picture of the tree without spans: scope label → option name → value
    /// as written. Two trees with the same shape mean the same configuration.
    pub fn shape(&self) -> BTreeMap<String, BTreeMap<&'static str, RawValue>> {
        self.scope_ids()
            .map(|id| {
                let opts = self
                    .scope(id)
                    .settings
                    .iter()
                    .map(|s| (s.option.def().name, s.raw.clone()))
                    .collect();
                (self.label(id), opts)
            })
            .collect()
    }

    fn add_scope(
        &mut self,
        parent: ScopeId,
        kind: ScopeKind,
        name: Option<String>,
        pattern: Option<Regex>,
    ) -> ScopeId {
        let id = ScopeId(self.scopes.len() as u32);
        let key = (
            parent,
            kind,
            normalize_name(kind, name.as_deref().unwrap_or("")),
        );
        self.scopes.push(Scope {
            kind,
            name,
            parent: Some(parent),
            children: Vec::new(),
            settings: Vec::new(),
            opened: Vec::new(),
            group: None,
            pattern,
        });
        self.scopes[parent.0 as usize].children.push(id);
        self.index.insert(key, id);
        id
    }

    /// Merges configuration text typed at run time (`config set` builds it) into the tree,
    /// with every check a file gets. The text is kept in the source map under `name`, so
    /// diagnostics point into it. Includes are refused: a run-time change names no files.
    pub fn apply(&mut self, name: &str, text: &str) -> Vec<Diagnostic> {
        let file = self.sources.add(name.into(), text.to_string());
        let (items, mut diags) = crate::parser::parse(file, text);
        let mut includes = Vec::new();
        find_includes(&items, &mut includes);
        for span in includes {
            diags.push(Diagnostic::error(span, "`include` is not allowed here"));
        }
        if diags.iter().any(Diagnostic::is_error) {
            return diags;
        }
        let mut b = Builder {
            tree: std::mem::replace(self, ConfigTree::empty(SourceMap::new())),
            diags,
            hidden: 0,
            hidden_at: None,
        };
        b.items(ROOT, items, &[]);
        *self = b.tree;
        crate::diag::cap(b.diags, b.hidden, b.hidden_at)
    }

    /// Removes one option from a scope, or with `None` every option in the scope and in
    /// every scope under it (Momentum's `config unset SCOPE`). Returns whether anything was
    /// set. The scopes themselves stay, empty: an empty stanza means its parent's values.
    pub fn unset(&mut self, id: ScopeId, opt: Option<OptionId>) -> bool {
        match opt {
            Some(opt) => {
                let settings = &mut self.scopes[id.0 as usize].settings;
                let before = settings.len();
                settings.retain(|s| s.option != opt);
                settings.len() != before
            }
            None => {
                let mut any = false;
                let mut stack = vec![id];
                while let Some(cur) = stack.pop() {
                    let s = &mut self.scopes[cur.0 as usize];
                    any |= !s.settings.is_empty();
                    s.settings.clear();
                    stack.extend(s.children.iter().copied());
                }
                // Bindings are children of the global scope; a group's members go too.
                if self.scope(id).kind == ScopeKind::BindingGroup {
                    let members: Vec<ScopeId> = self
                        .scope_ids()
                        .filter(|&b| self.group_of(b) == Some(id))
                        .collect();
                    for b in members {
                        any |= self.unset(b, None);
                    }
                }
                any
            }
        }
    }

    /// Sets an option in a scope, replacing an earlier setting of the same option.
    pub fn set(&mut self, id: ScopeId, setting: Setting) {
        let settings = &mut self.scopes[id.0 as usize].settings;
        match settings.iter_mut().find(|s| s.option == setting.option) {
            Some(old) => *old = setting,
            None => settings.push(setting),
        }
    }
}

fn find_includes(items: &[Item], out: &mut Vec<Span>) {
    for item in items {
        match item {
            Item::Include { path, .. } => out.push(path.span),
            Item::Stanza { items, .. } => find_includes(items, out),
            Item::Option { .. } => {}
        }
    }
}

/// One segment of Momentum's internal scope path: `Binding:b:`, `ESMTP_Listener::`, with a
/// `:` inside the name escaped as `\:`.
pub fn path_segment(kind: ScopeKind, name: Option<&str>) -> String {
    format!(
        "{}:{}:",
        kind.def().keyword,
        name.unwrap_or("").replace(':', "\\:")
    )
}

/// Domain and host names compare without case; a regex keeps its case.
pub fn normalize_name(kind: ScopeKind, name: &str) -> String {
    match kind {
        ScopeKind::Domain | ScopeKind::Host if !is_regex_name(name) => name.to_ascii_lowercase(),
        _ => name.to_string(),
    }
}

/// `/.../` names a regular-expression domain or host.
pub fn is_regex_name(name: &str) -> bool {
    name.len() >= 2 && name.starts_with('/') && name.ends_with('/')
}

/// Checks a stanza's instance name; for a regex domain or host, returns its pattern.
/// The one place that decides what a valid binding, group, domain, host, peer or listen
/// name is, whichever syntax introduced it.
fn check_name(kind: ScopeKind, name: &str) -> Result<Option<Regex>, String> {
    let control = name.chars().any(char::is_control);
    match kind {
        ScopeKind::Binding | ScopeKind::BindingGroup if name.is_empty() => {
            Err("it is empty".into())
        }
        ScopeKind::Binding if name.contains(char::is_whitespace) => {
            Err("binding names may not contain spaces".into())
        }
        ScopeKind::Binding if name.contains(':') => {
            Err("binding names may not contain colons".into())
        }
        ScopeKind::BindingGroup if name.contains(char::is_whitespace) => {
            Err("binding group names may not contain spaces".into())
        }
        _ if control => Err("names may not contain control characters".into()),
        ScopeKind::Domain | ScopeKind::Host if is_regex_name(name) => {
            Regex::new(&name[1..name.len() - 1]).map(Some).map_err(|e| {
                format!(
                    "invalid regular expression: {}",
                    crate::value::regex_error(&e)
                )
            })
        }
        ScopeKind::Domain | ScopeKind::Host
            if name.trim().is_empty() || name.contains(char::is_whitespace) =>
        {
            Err("expected a domain name, an IP address, `[IPv6:...]` or `/regex/`".into())
        }
        ScopeKind::Peer if value::parse_cidr(name).is_none() => {
            Err("expected an IP address or CIDR block".into())
        }
        ScopeKind::Listen if value::parse_listen(name).is_none() => {
            Err("expected `IP:PORT`, `:PORT`, `[IPv6]:PORT` or a socket path".into())
        }
        _ => Ok(None),
    }
}

struct Builder {
    tree: ConfigTree,
    diags: Vec<Diagnostic>,
    /// Errors past `MAX_SHOWN`, counted and not built, and where the first one is.
    hidden: usize,
    hidden_at: Option<Span>,
}

impl Builder {
    /// `open` lists the stanzas enclosing `scope`, innermost last, for "missing `}`" hints.
    fn items(&mut self, scope: ScopeId, items: Vec<Item>, open: &[(String, Span)]) {
        for item in items {
            match item {
                Item::Option { key, value } => self.option(scope, key, value),
                Item::Stanza {
                    keyword,
                    name,
                    items,
                    ..
                } => self.stanza(scope, keyword, name, items, open),
                Item::Include { .. } => {} // spliced away by the loader
            }
        }
    }

    fn option(&mut self, scope: ScopeId, key: Spanned<String>, value: Spanned<RawValue>) {
        let kind = self.tree.scope(scope).kind;
        let Some(opt) = option_by_name(&key.node) else {
            if let Some(def) = scope_by_keyword(&key.node) {
                if def.kind == ScopeKind::BindingGroup && kind == ScopeKind::Binding {
                    return self.deprecated_group_option(scope, key.span, value);
                }
                self.diags.push(
                    Diagnostic::error(
                        key.span,
                        format!("`{}` is a stanza, not an option", key.node),
                    )
                    .with_help(format!(
                        "write `{} {}{{ ... }}`",
                        def.keyword,
                        if def.named { "\"name\" " } else { "" }
                    )),
                );
                return;
            }
            self.found(key.span, "option", key.node.clone().into(), "unknown", None);
            if self.diags.len() >= MAX_SHOWN {
                // Past what is reported, only counted: no message, no suggestion to compute.
                self.hidden += 1;
                self.hidden_at.get_or_insert(key.span);
                return;
            }
            let mut d =
                Diagnostic::error(key.span, format!("unknown option `{}`", shown(&key.node)));
            if let Some(best) = did_you_mean(&key.node, OPTIONS.iter().map(|o| o.name)) {
                d = d.with_help(format!("did you mean `{best}`?"));
            }
            self.diags.push(d);
            return;
        };
        let def = opt.def();
        if !def.scopes.contains(kind) {
            let why = Some("not valid in this scope (see the error)");
            self.found(key.span, "option", def.name.into(), "error", why);
            self.diags.push(
                Diagnostic::error(
                    key.span,
                    format!(
                        "`{}` is not valid in {} scope",
                        def.name,
                        kind.def().keyword.to_ascii_lowercase()
                    ),
                )
                .with_help(format!(
                    "`{}` is valid in: {}",
                    def.name,
                    def.scopes.describe().to_ascii_lowercase()
                )),
            );
            return;
        }
        match value::check(def.ty, &value.node) {
            Ok(v) => {
                let in_binding = || {
                    self.tree.lineage(scope).iter().any(|&s| {
                        matches!(
                            self.tree.scope(s).kind,
                            ScopeKind::Binding | ScopeKind::BindingGroup
                        )
                    })
                };
                let k = scoped_kind(opt, kind, in_binding);
                // Only a listener-only option needs to know the listener it sits under; the
                // walk up the scopes is not made for the others (every domain's options).
                let listener = match k {
                    Kind::ListenerOnly(..) => self.listener_of(scope),
                    _ => None,
                };
                let d = kind_diagnostic(opt, k, &value.node, &v, key.span, listener);
                let outcome = match (&d, k) {
                    (Some(d), _) if d.is_error() => "refused",
                    (_, Kind::Inert(_)) => "inert",
                    (_, Kind::Tuning(_)) => "inert (tuning)",
                    _ => "implemented",
                };
                let why = (outcome != "implemented").then(|| k.why()).flatten();
                self.found(key.span, "option", def.name.into(), outcome, why);
                if let Some(d) = d {
                    let refused = d.is_error();
                    self.diags.push(d);
                    if refused {
                        return;
                    }
                }
                self.tree.set(
                    scope,
                    Setting {
                        option: opt,
                        raw: value.node,
                        value: v,
                        span: key.span,
                    },
                )
            }
            Err(msg) => {
                let why = Some("invalid value (see the error)");
                self.found(key.span, "option", def.name.into(), "error", why);
                let mut d = Diagnostic::error(
                    value.span,
                    format!("invalid value for `{}`: {msg}", def.name),
                );
                // A misspelt word of an enumerated option: the word it most likely was.
                if let crate::schema::ValueType::Enum(words) = def.ty
                    && let crate::syntax::RawValue::Scalar(w) = &value.node
                    && let Some(near) = crate::diag::did_you_mean(w, words.iter().copied())
                {
                    d = d.with_help(format!("did you mean `{near}`?"));
                }
                self.diags.push(d)
            }
        }
    }

    /// `Binding_Group = "g"` inside a binding: Momentum's deprecated way to put a binding in
    /// a group. Honoured, with a warning.
    fn deprecated_group_option(&mut self, binding: ScopeId, span: Span, value: Spanned<RawValue>) {
        let RawValue::Scalar(name) = value.node else {
            self.diags.push(Diagnostic::error(
                value.span,
                "invalid value for `Binding_Group`: expected a binding group name",
            ));
            return;
        };
        if let Err(why) = check_name(ScopeKind::BindingGroup, &name) {
            let msg = format!(
                "invalid binding group name `{}`: {why}",
                name.escape_debug()
            );
            self.diags.push(Diagnostic::error(value.span, msg));
            return;
        }
        let group = match self.tree.find(ROOT, ScopeKind::BindingGroup, Some(&name)) {
            Some(g) => g,
            None => self
                .tree
                .add_scope(ROOT, ScopeKind::BindingGroup, Some(name), None),
        };
        self.diags.push(
            Diagnostic::warning(span, "`Binding_Group` inside a binding is deprecated").with_help(
                "place the binding inside a `binding_group \"name\" { }` stanza instead",
            ),
        );
        self.join_group(binding, group, span);
    }

    fn join_group(&mut self, binding: ScopeId, group: ScopeId, span: Span) {
        match self.tree.scope(binding).group {
            Some((g, _)) if g == group => {}
            Some((g, prev)) => {
                let b = self.tree.scope(binding).name.clone().unwrap_or_default();
                let old = self.tree.scope(g).name.clone().unwrap_or_default();
                let new = self.tree.scope(group).name.clone().unwrap_or_default();
                self.diags.push(
                    Diagnostic::error(span, format!("binding `{b}` is already in binding group `{old}`; it cannot also be in `{new}`"))
                        .with_note(prev, format!("`{b}` was put in `{old}` here")),
                );
            }
            None => self.tree.scopes[binding.0 as usize].group = Some((group, span)),
        }
    }

    /// The kind of listener (`ESMTP_Listener`, `Control_Listener`, `HTTP_Listener`) that
    /// `scope` is in, if any.
    fn listener_of(&self, scope: ScopeId) -> Option<ScopeKind> {
        self.tree.lineage(scope).iter().find_map(|&s| {
            let kind = self.tree.scope(s).kind;
            matches!(
                kind,
                ScopeKind::EsmtpListener | ScopeKind::ControlListener | ScopeKind::HttpListener
            )
            .then_some(kind)
        })
    }

    fn found(
        &mut self,
        span: Span,
        what: &'static str,
        name: std::borrow::Cow<'static, str>,
        outcome: &'static str,
        why: Option<&'static str>,
    ) {
        self.tree.found.push(Found {
            span,
            what,
            name,
            outcome,
            why,
        });
    }

    /// A Momentum module's stanza (`schema::modules`): a refused module is an error on its
    /// line; an inert one loads with a warning, its options checked against its table and
    /// then dropped (nothing reads them).
    fn module(
        &mut self,
        parent: ScopeKind,
        module: &'static ModuleDef,
        keyword: &Spanned<String>,
        name: Option<&Spanned<String>>,
        items: Vec<Item>,
    ) {
        let why = match module.kind {
            ModuleKind::Inert(why) | ModuleKind::Refused(why) => Some(why),
            ModuleKind::Implemented => None,
        };
        self.found(
            keyword.span,
            "module",
            module.name.into(),
            module.kind.word(),
            why,
        );
        let why = match module.kind {
            ModuleKind::Refused(why) => {
                self.diags.push(
                    Diagnostic::error(
                        keyword.span,
                        format!("module `{}` is not implemented by bindery", module.name),
                    )
                    .with_help(why),
                );
                return;
            }
            ModuleKind::Inert(why) => why,
            // Implemented modules are scopes (`scriptlet`), found before this is asked.
            ModuleKind::Implemented => return,
        };
        if parent != ScopeKind::Global {
            self.diags.push(Diagnostic::error(
                keyword.span,
                format!("module `{}` is only valid at the top level", module.name),
            ));
            return;
        }
        if let (Instances::Singleton, Some(n)) = (module.instances, name) {
            self.diags.push(
                Diagnostic::error(n.span, format!("module `{}` takes no name", module.name))
                    .with_help(format!("write `{} {{ ... }}`", module.name)),
            );
            return;
        }
        self.diags.push(
            Diagnostic::warning(
                keyword.span,
                format!("module `{}` has no effect in bindery", module.name),
            )
            .with_help(format!("{why}; it is accepted so Momentum files load")),
        );
        for item in items {
            match item {
                Item::Option { key, value } => {
                    let Some((opt, ty)) = module
                        .options
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(&key.node))
                    else {
                        let mut d = Diagnostic::error(
                            key.span,
                            format!(
                                "unknown option `{}` in module `{}`",
                                shown(&key.node),
                                module.name
                            ),
                        );
                        let names = module.options.iter().map(|(n, _)| *n);
                        if let Some(best) = did_you_mean(&key.node, names) {
                            d = d.with_help(format!("did you mean `{best}`?"));
                        }
                        self.diags.push(d);
                        continue;
                    };
                    if let Err(msg) = value::check(*ty, &value.node) {
                        self.diags.push(Diagnostic::error(
                            value.span,
                            format!(
                                "invalid value for `{opt}` in module `{}`: {msg}",
                                module.name
                            ),
                        ));
                    }
                }
                Item::Stanza { keyword: k, .. } => {
                    if !module
                        .stanzas
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(&k.node))
                    {
                        self.diags.push(Diagnostic::error(
                            k.span,
                            format!(
                                "unknown stanza `{}` in module `{}`",
                                shown(&k.node),
                                module.name
                            ),
                        ));
                    }
                }
                Item::Include { .. } => {}
            }
        }
    }

    fn stanza(
        &mut self,
        scope: ScopeId,
        keyword: Spanned<String>,
        name: Option<Spanned<String>>,
        items: Vec<Item>,
        open: &[(String, Span)],
    ) {
        let parent_kind = self.tree.scope(scope).kind;
        let Some(def) = scope_by_keyword(&keyword.node) else {
            if let Some(module) = module_by_name(&keyword.node) {
                return self.module(parent_kind, module, &keyword, name.as_ref(), items);
            }
            self.found(
                keyword.span,
                "stanza",
                keyword.node.clone().into(),
                "unknown",
                None,
            );
            let mut d = Diagnostic::error(
                keyword.span,
                format!("unknown stanza `{}`", shown(&keyword.node)),
            );
            if let Some(best) =
                did_you_mean(&keyword.node, SCOPES.iter().skip(1).map(|s| s.keyword))
            {
                d = d.with_help(format!("did you mean `{best}`?"));
            } else if option_by_name(&keyword.node).is_some() {
                d = d.with_help(format!(
                    "`{}` is an option: write `{} = value`",
                    keyword.node, keyword.node
                ));
            }
            self.diags.push(d);
            return;
        };
        // A module bindery implements is a scope (scriptlet, the loggers): the report
        // lists it with the other modules. Asked only of those kinds: a file has 100,000
        // domain stanzas, and the registry is a list.
        if matches!(
            def.kind,
            ScopeKind::Scriptlet
                | ScopeKind::EcLogger
                | ScopeKind::BounceLogger
                | ScopeKind::DelayDsn
                | ScopeKind::Datasource
                | ScopeKind::InboundAudit
                | ScopeKind::OpenDkim
                | ScopeKind::OutboundSmtpAuth
                | ScopeKind::BounceClassifierOverride
                | ScopeKind::Fbl
                | ScopeKind::Adaptive
        ) && let Some(m) = module_by_name(&keyword.node)
        {
            self.found(keyword.span, "module", m.name.into(), m.kind.word(), None);
        }
        // Momentum's listeners take a pathway's options through their `Pathway` option, which
        // bindery refuses: a pathway stanza's options would be read by nothing.
        if matches!(def.kind, ScopeKind::Pathway | ScopeKind::PathwayGroup) {
            self.diags.push(
                Diagnostic::error(
                    keyword.span,
                    format!(
                        "`{}` stanzas are not implemented by bindery: its listeners take no pathway (the `Pathway` option is refused), so these options would be read by nothing",
                        def.keyword.to_ascii_lowercase()
                    ),
                )
                .with_help("put the options in the ESMTP_Listener, its Listen or Peer stanzas, or the global scope"),
            );
            return;
        }
        if !def.parents.contains(parent_kind) {
            let mut d = Diagnostic::error(
                keyword.span,
                format!(
                    "`{}` stanza is not valid inside {}",
                    def.keyword,
                    parent_kind.def().keyword.to_ascii_lowercase()
                ),
            )
            .with_help(format!(
                "`{}` is valid in: {}",
                def.keyword,
                def.parents.describe().to_ascii_lowercase()
            ));
            if let Some((what, at)) = open
                .last()
                .filter(|_| def.parents.contains(ScopeKind::Global))
            {
                d = d.with_note(
                    *at,
                    format!("is a `}}` missing? `{what}` opened here is still open"),
                );
            }
            self.diags.push(d);
            return;
        }
        let name = match (def.named, name) {
            (true, None) => {
                self.diags.push(
                    Diagnostic::error(keyword.span, format!("`{}` needs a name", def.keyword))
                        .with_help(format!("write `{} \"name\" {{ ... }}`", def.keyword)),
                );
                return;
            }
            (false, Some(n)) => {
                self.diags.push(
                    Diagnostic::error(n.span, format!("`{}` takes no name", def.keyword))
                        .with_help(format!("write `{} {{ ... }}`", def.keyword)),
                );
                return;
            }
            (_, n) => n,
        };
        let Some(id) = self.open_scope(scope, def, name.as_ref(), keyword.span) else {
            return;
        };
        self.tree.scopes[id.0 as usize].opened.push(keyword.span);
        let what = match &name {
            Some(n) => format!("{} \"{}\"", keyword.node, n.node),
            None => keyword.node.clone(),
        };
        let mut open = open.to_vec();
        open.push((what, keyword.span));
        self.items(id, items, &open);
    }

    /// Finds or creates the scope a stanza opens, after checking its name.
    fn open_scope(
        &mut self,
        scope: ScopeId,
        def: &ScopeDef,
        name: Option<&Spanned<String>>,
        at: Span,
    ) -> Option<ScopeId> {
        let kind = def.kind;
        let mut pattern = None;
        if let Some(n) = name {
            match check_name(kind, &n.node) {
                Ok(p) => pattern = p,
                Err(why) => {
                    let mut d = Diagnostic::error(
                        n.span,
                        format!(
                            "invalid {} name `{}`: {why}",
                            def.keyword.to_ascii_lowercase(),
                            n.node.escape_debug()
                        ),
                    );
                    if kind == ScopeKind::Listen {
                        d = d.with_help("for example `Listen \"127.0.0.1:2525\" { }`");
                    }
                    self.diags.push(d);
                    return None;
                }
            }
        }
        let name_str = name.map(|n| n.node.as_str());
        let id = match self.tree.find(scope, kind, name_str) {
            Some(id) => id,
            None => {
                let stored = name.map(|n| normalize_name(kind, &n.node));
                let parent = if kind == ScopeKind::Binding {
                    ROOT
                } else {
                    scope
                };
                self.tree.add_scope(parent, kind, stored, pattern)
            }
        };
        if kind == ScopeKind::Binding && self.tree.scope(scope).kind == ScopeKind::BindingGroup {
            self.join_group(id, scope, at);
        }
        Some(id)
    }
}

/// The option's kind where it is set: in a `ThreadPool` every option tunes Momentum's
/// threads (`Concurrency` there is a thread count, not a listener's session cap); in a
/// binding or its group (`in_binding`, asked only for `Blackhole`), `Blackhole = inline`
/// cannot act, since it refuses a recipient at RCPT, before the message has a binding.
fn scoped_kind(opt: OptionId, scope: ScopeKind, in_binding: impl FnOnce() -> bool) -> Kind {
    static BLACKHOLE: std::sync::LazyLock<OptionId> =
        std::sync::LazyLock::new(|| crate::schema::option_id("Blackhole"));
    if opt == *BLACKHOLE && in_binding() {
        return Kind::Values(
            &["false", "internal"],
            "`true` and `inline` refuse a recipient at RCPT time, before the message has a binding: set them in global or domain scope, or use `internal` here",
        );
    }
    if scope == ScopeKind::ThreadPool {
        return Kind::Tuning("a Momentum thread pool's setting; bindery has one task scheduler");
    }
    kind_of(opt)
}

/// What setting `opt` to `v` says, by the option's kind (`schema::kinds`): nothing for an
/// implemented option, a warning for an inert one, an error for a refused one or a value
/// bindery does not honour. `listener`: the kind of listener the option is set under.
fn kind_diagnostic(
    opt: OptionId,
    kind: Kind,
    raw: &RawValue,
    v: &Value,
    span: Span,
    listener: Option<ScopeKind>,
) -> Option<Diagnostic> {
    let def = opt.def();
    let honoured = |word: &str| value::check(def.ty, &RawValue::Scalar(word.to_string())).ok();
    let refuse = |why: &str, only: Option<&str>| {
        let d = match only {
            Some(only) => Diagnostic::error(
                span,
                format!(
                    "`{} = {}` is not implemented by bindery (only `{only}` is)",
                    def.name,
                    {
                        let mut text = String::new();
                        crate::show::raw(raw, &mut text);
                        text
                    }
                ),
            ),
            None => Diagnostic::error(
                span,
                format!("`{}` is not implemented by bindery", def.name),
            ),
        };
        Some(d.with_help(why.to_string()))
    };
    match kind {
        Kind::Implemented | Kind::Tuning(_) => None,
        Kind::Inert(why) => Some(
            Diagnostic::warning(span, format!("`{}` has no effect in bindery", def.name))
                .with_help(format!("{why}; it is accepted so Momentum files load")),
        ),
        Kind::DefaultOnly(why) => {
            let default = def.default?;
            if honoured(default).as_ref() == Some(v) {
                return None;
            }
            refuse(why, Some(default))
        }
        Kind::Values(honour, why) => {
            if honour.iter().any(|w| honoured(w).as_ref() == Some(v)) {
                return None;
            }
            // "`a` or `b`", "`a`, `b` or `c`".
            let listed = match honour.split_last() {
                Some((last, rest)) if !rest.is_empty() => {
                    format!("{}` or `{last}", rest.join("`, `"))
                }
                _ => honour.join(""),
            };
            refuse(why, Some(&listed))
        }
        Kind::Fixed(only, why) => {
            if honoured(only).as_ref() == Some(v) {
                return None;
            }
            refuse(why, Some(only))
        }
        Kind::Subset(words, why) => {
            let entries: Vec<&str> = match raw {
                RawValue::Scalar(s) => vec![s.as_str()],
                RawValue::List(items) => items
                    .iter()
                    .map(|i| match i {
                        RawValue::Scalar(s) => s.as_str(),
                        _ => "(a list or dictionary)",
                    })
                    .collect(),
                RawValue::Dict(_) => vec!["(a dictionary)"],
            };
            let other = entries
                .iter()
                .find(|e| !words.iter().any(|w| w.eq_ignore_ascii_case(e.trim())))?;
            Some(
                Diagnostic::error(
                    span,
                    format!(
                        "`{}` entry \"{other}\" is not implemented by bindery (only {} are)",
                        def.name,
                        words.join(", ")
                    ),
                )
                .with_help(why.to_string()),
            )
        }
        Kind::ListenerOnly(kinds, _) if listener.is_some_and(|l| kinds.contains(&l)) => None,
        Kind::ListenerOnly(_, why) | Kind::Refused(why) => refuse(why, None),
    }
}
