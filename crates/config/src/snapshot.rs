//! The compiled configuration: an immutable snapshot that the delivery path reads without
//! walking the tree or taking a lock.
//!
//! # The fallback chain
//! For a message on binding B (in group G) to domain D, an option resolves to the first of
//!
//! ```text
//! B::D  >  G::D  >  B  >  G  >  D (global domain stanza)  >  global  >  the option's default
//! ```
//!
//! Momentum's documented chain distinguishes `G::B::D` and `B::D`; in bindery a binding is
//! one scope wherever its stanzas are written (see [`crate::tree`]), so they are one level.
//! At every `::D` level the stanzas that match the domain are looked at in order: the exact
//! one, then every matching regex stanza in declaration order. The exact stanza wins for the
//! options it sets; the regex stanzas supply the rest, before the walk moves to the next
//! level (Momentum's domain page: `domain "example.com" { max_outbound_connections = 20 }`
//! beside a regex stanza matching it with 15 connections and 5 deliveries per connection
//! gives 20 and 5). Host stanzas follow the same rule. Host scope has its own chain,
//! `B::H > G::H > H`, that never falls back to the binding, domain or global value: an unset
//! host option takes its host default (`max_outbound_connections` is -1 there).
//!
//! # Representation
//! Each compiled scope stores a bit mask of the options set in it and a dense array of value
//! indices, so "is option X set here, and to what" is a mask test and a popcount. Domain and
//! host names are interned once; a [`DomainKey`] carries the interned id and which regex
//! stanzas match, so per-container lookups are integer hash probes.
//!
//! Resolution returns the [`Origin`] of a value: the scope that defined it. Throttles use it
//! as the identity of their token bucket, which gives Momentum's "by reference" sharing.

use std::sync::Arc;

use regex::Regex;
use rustc_hash::FxHashMap;

use crate::schema::{OPTION_COUNT, OPTIONS, OptionId, ScopeKind};
use crate::syntax::RawValue;
use crate::tree::{ConfigTree, ROOT, ScopeId};
use crate::value::{self, Value};

const MASK_WORDS: usize = OPTION_COUNT.div_ceil(64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BindingId(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupId(pub u32);

impl BindingId {
    /// The `default` binding, which always exists.
    pub const DEFAULT: BindingId = BindingId(0);
}

impl GroupId {
    /// The `default` binding group, which always exists.
    pub const DEFAULT: GroupId = GroupId(0);
}

/// Options set in one scope.
#[derive(Debug)]
pub struct CScope {
    pub id: ScopeId,
    mask: [u64; MASK_WORDS],
    /// Values of the options set here, in option order.
    vals: Box<[Value]>,
}

impl CScope {
    #[inline]
    fn get(&self, opt: OptionId) -> Option<&Value> {
        let i = opt.index();
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        let m = self.mask[word];
        if m & bit == 0 {
            return None;
        }
        let before: u32 = self.mask[..word].iter().map(|w| w.count_ones()).sum();
        self.vals
            .get((before + (m & (bit - 1)).count_ones()) as usize)
    }
}

/// Domain (or host) stanzas of one container.
#[derive(Debug, Default)]
struct NameTable {
    exact: FxHashMap<u32, CScope>,
    regex: Vec<(usize, CScope)>,
}

impl NameTable {
    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.regex.is_empty()
    }

    /// The stanzas that match `key`, in the order a lookup consults them: the exact one,
    /// then the matching regex stanzas in declaration order.
    #[inline]
    fn matching<'s, 'k>(&'s self, key: &'k DomainKey) -> Matching<'s, 'k> {
        Matching {
            exact: key.id.and_then(|id| self.exact.get(&id)),
            regex: self.regex.iter(),
            key,
        }
    }
}

/// The stanzas of a [`NameTable`] that match a name (no allocation: this is on the lookup
/// path).
struct Matching<'s, 'k> {
    exact: Option<&'s CScope>,
    regex: std::slice::Iter<'s, (usize, CScope)>,
    key: &'k DomainKey,
}

impl<'s> Iterator for Matching<'s, '_> {
    type Item = &'s CScope;
    #[inline]
    fn next(&mut self) -> Option<&'s CScope> {
        if let Some(s) = self.exact.take() {
            return Some(s);
        }
        self.regex
            .by_ref()
            .find(|(r, _)| self.key.matches(*r))
            .map(|(_, s)| s)
    }
}

#[derive(Debug)]
struct CBinding {
    name: String,
    group: GroupId,
    scope: Option<CScope>,
    domains: NameTable,
    hosts: NameTable,
}

#[derive(Debug)]
struct CGroup {
    name: String,
    scope: Option<CScope>,
    domains: NameTable,
    hosts: NameTable,
}

/// A destination domain (or MX host) name prepared for lookups in one snapshot.
#[derive(Clone, Debug)]
pub struct DomainKey {
    id: Option<u32>,
    /// Bit set over the snapshot's regex stanzas: which ones match this name.
    regex_matches: Vec<u64>,
}

impl DomainKey {
    #[inline]
    fn matches(&self, regex: usize) -> bool {
        self.regex_matches
            .get(regex / 64)
            .is_some_and(|w| w & (1 << (regex % 64)) != 0)
    }
}

/// Which level of a chain supplied a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    BindingDomain,
    GroupDomain,
    Binding,
    Group,
    GlobalDomain,
    Global,
    BindingHost,
    GroupHost,
    GlobalHost,
}

impl Level {
    pub fn describe(self) -> &'static str {
        match self {
            Level::BindingDomain => "binding::domain",
            Level::GroupDomain => "binding_group::domain",
            Level::Binding => "binding",
            Level::Group => "binding_group",
            Level::GlobalDomain => "domain",
            Level::Global => "global",
            Level::BindingHost => "binding::host",
            Level::GroupHost => "binding_group::host",
            Level::GlobalHost => "host",
        }
    }
}

/// Where a resolved value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Set in this scope. Every lookup that resolves to the same scope shares its throttle.
    Scope(ScopeId),
    /// The option's built-in default (or host default).
    Default,
}

#[derive(Clone, Copy, Debug)]
pub struct Resolved<'s> {
    pub value: &'s Value,
    pub origin: Origin,
    pub level: Option<Level>,
}

/// The delivery chain's levels, narrowest first.
const DOMAIN_LEVELS: [Level; 6] = [
    Level::BindingDomain,
    Level::GroupDomain,
    Level::Binding,
    Level::Group,
    Level::GlobalDomain,
    Level::Global,
];

/// The host chain's levels, narrowest first.
const HOST_LEVELS: [Level; 3] = [Level::BindingHost, Level::GroupHost, Level::GlobalHost];

/// The scopes a lookup walks, narrowest first. This is the one implementation of the
/// fallback order; it finds each level's scope only when the walk reaches it, so a value set
/// on the binding costs no probe of the group or global domain tables.
pub struct Chain<'s, 'k> {
    snap: &'s Snapshot,
    binding: Option<&'s CBinding>,
    group: Option<&'s CGroup>,
    /// The destination: a domain for the delivery chain, an MX host for the host chain.
    dest: Option<&'k DomainKey>,
    host: bool,
}

impl<'s, 'k> Chain<'s, 'k> {
    fn levels(&self) -> &'static [Level] {
        if self.host {
            &HOST_LEVELS
        } else {
            &DOMAIN_LEVELS
        }
    }

    /// Whether the chain has this level at all (a query without a binding has no binding
    /// levels; one without a domain has no domain levels).
    fn has(&self, level: Level) -> bool {
        match level {
            Level::BindingDomain => self.binding.is_some() && self.dest.is_some(),
            Level::GroupDomain => self.group.is_some() && self.dest.is_some(),
            Level::Binding | Level::BindingHost => self.binding.is_some(),
            Level::Group | Level::GroupHost => self.group.is_some(),
            Level::GlobalDomain => self.dest.is_some(),
            Level::Global | Level::GlobalHost => true,
        }
    }

    /// The stanzas of a level, in the order they are consulted: the global scope, a binding
    /// or group, or every domain (host) stanza that matches the destination.
    #[inline]
    fn scopes(&self, level: Level) -> Stanzas<'s, 'k> {
        let (b, g, d) = (self.binding, self.group, self.dest);
        let single = |s: Option<&'s CScope>| Stanzas::One(s);
        let table = |t: Option<&'s NameTable>| match (t, d) {
            (Some(t), Some(d)) => Stanzas::Table(t.matching(d)),
            _ => Stanzas::One(None),
        };
        match level {
            Level::BindingDomain => table(b.map(|b| &b.domains)),
            Level::GroupDomain => table(g.map(|g| &g.domains)),
            Level::Binding => single(b.and_then(|b| b.scope.as_ref())),
            Level::Group => single(g.and_then(|g| g.scope.as_ref())),
            Level::GlobalDomain => table(Some(&self.snap.global_domains)),
            Level::Global => single(Some(&self.snap.global)),
            Level::BindingHost => table(b.map(|b| &b.hosts)),
            Level::GroupHost => table(g.map(|g| &g.hosts)),
            Level::GlobalHost => table(Some(&self.snap.global_hosts)),
        }
    }

    /// The first value set along the chain, else the default.
    #[inline]
    pub fn get(&self, opt: OptionId) -> Option<Resolved<'s>> {
        // The hot path: plain loops, not `each(opt).next()` (its `flat_map` cost a fifth
        // more per lookup in `bench/config.sh`).
        for &level in self.levels() {
            for s in self.scopes(level) {
                if let Some(v) = s.get(opt) {
                    return Some(Resolved {
                        value: v,
                        origin: Origin::Scope(s.id),
                        level: Some(level),
                    });
                }
            }
        }
        let defaults = if self.host {
            &self.snap.host_defaults
        } else {
            &self.snap.defaults
        };
        defaults[opt.index()].as_ref().map(|value| Resolved {
            value,
            origin: Origin::Default,
            level: None,
        })
    }

    /// Every value set along the chain, narrowest first, without the default: for an
    /// option whose settings at several levels all apply at once
    /// (`scope_max_outbound_connections`, a cap per scope).
    pub fn each(&self, opt: OptionId) -> impl Iterator<Item = Resolved<'s>> + '_ {
        self.levels().iter().flat_map(move |&level| {
            self.scopes(level).filter_map(move |s| {
                s.get(opt).map(|v| Resolved {
                    value: v,
                    origin: Origin::Scope(s.id),
                    level: Some(level),
                })
            })
        })
    }

    /// Every level of the chain and its stanzas (`None` for a level with none), for
    /// `config explain`.
    pub fn links(&self) -> impl Iterator<Item = (Level, Option<ScopeId>)> + '_ {
        self.levels()
            .iter()
            .filter(|&&l| self.has(l))
            .flat_map(|&l| {
                let ids: Vec<ScopeId> = self.scopes(l).map(|s| s.id).collect();
                if ids.is_empty() {
                    vec![(l, None)]
                } else {
                    ids.into_iter().map(|id| (l, Some(id))).collect()
                }
            })
    }
}

/// The stanzas of one level: at most one, or those of a name table that match.
enum Stanzas<'s, 'k> {
    One(Option<&'s CScope>),
    Table(Matching<'s, 'k>),
}

impl<'s> Iterator for Stanzas<'s, '_> {
    type Item = &'s CScope;
    #[inline]
    fn next(&mut self) -> Option<&'s CScope> {
        match self {
            Stanzas::One(s) => s.take(),
            Stanzas::Table(m) => m.next(),
        }
    }
}

/// One compiled configuration generation.
pub struct Snapshot {
    pub generation: u64,
    pub tree: Arc<ConfigTree>,
    defaults: Vec<Option<Value>>,
    host_defaults: Vec<Option<Value>>,
    global: CScope,
    global_domains: NameTable,
    global_hosts: NameTable,
    bindings: Vec<CBinding>,
    binding_ids: FxHashMap<String, BindingId>,
    groups: Vec<CGroup>,
    group_ids: FxHashMap<String, GroupId>,
    names: FxHashMap<String, u32>,
    regexes: Vec<Regex>,
    /// Some `host` stanza exists (see [`Snapshot::has_hosts`]).
    any_hosts: bool,
}

/// Top-level bindings or binding groups with `default` first: the defined one, or `None`
/// standing for the implicit one that always exists.
fn default_first(tree: &ConfigTree, kind: ScopeKind) -> Vec<Option<ScopeId>> {
    let all: Vec<ScopeId> = tree
        .scope(ROOT)
        .children
        .iter()
        .copied()
        .filter(|&c| tree.scope(c).kind == kind)
        .collect();
    let default = all
        .iter()
        .copied()
        .find(|&c| tree.scope(c).name.as_deref() == Some("default"));
    std::iter::once(default)
        .chain(all.into_iter().filter(|&c| Some(c) != default).map(Some))
        .collect()
}

/// The built-in default of an option as a checked value.
pub fn default_value(opt: OptionId) -> Option<Value> {
    let def = opt.def();
    def.default
        .and_then(|d| value::check(def.ty, &RawValue::Scalar(d.into())).ok())
}

fn host_default_value(opt: OptionId) -> Option<Value> {
    let def = opt.def();
    def.host_default
        .and_then(|d| value::check(def.ty, &RawValue::Scalar(d.into())).ok())
}

impl Snapshot {
    /// Compiles a tree. `generation` numbers successive configurations of one process.
    pub fn compile(mut tree: ConfigTree, generation: u64) -> Snapshot {
        // What the files named is for `config check --migrate-report`, read before this;
        // a running configuration has no use for it, and a console change would add to it.
        tree.found = Vec::new();
        let tree = Arc::new(tree);
        let ids = (0..OPTIONS.len() as u16).map(OptionId);
        let mut snap = Snapshot {
            generation,
            tree: tree.clone(),
            defaults: ids.clone().map(default_value).collect(),
            host_defaults: ids.map(host_default_value).collect(),
            global: CScope {
                id: ROOT,
                mask: [0; MASK_WORDS],
                vals: Box::new([]),
            },
            global_domains: NameTable::default(),
            global_hosts: NameTable::default(),
            bindings: Vec::new(),
            binding_ids: FxHashMap::default(),
            groups: Vec::new(),
            group_ids: FxHashMap::default(),
            names: FxHashMap::default(),
            regexes: Vec::new(),
            any_hosts: false,
        };
        snap.global = snap.compile_scope(&tree, ROOT);
        snap.global_domains = snap.name_table(&tree, ROOT, ScopeKind::Domain);
        snap.global_hosts = snap.name_table(&tree, ROOT, ScopeKind::Host);

        let mut group_of_scope = FxHashMap::default();
        for g in default_first(&tree, ScopeKind::BindingGroup) {
            let id = GroupId(snap.groups.len() as u32);
            let group = match g {
                Some(g) => {
                    group_of_scope.insert(g, id);
                    CGroup {
                        name: tree.scope(g).name.clone().unwrap_or_default(),
                        scope: Some(snap.compile_scope(&tree, g)),
                        domains: snap.name_table(&tree, g, ScopeKind::Domain),
                        hosts: snap.name_table(&tree, g, ScopeKind::Host),
                    }
                }
                None => CGroup {
                    name: "default".into(),
                    scope: None,
                    domains: NameTable::default(),
                    hosts: NameTable::default(),
                },
            };
            snap.group_ids.insert(group.name.clone(), id);
            snap.groups.push(group);
        }
        // Bindings: `default` first, defined or not.
        for b in default_first(&tree, ScopeKind::Binding) {
            let id = BindingId(snap.bindings.len() as u32);
            let binding = match b {
                Some(b) => CBinding {
                    name: tree.scope(b).name.clone().unwrap_or_default(),
                    group: tree
                        .group_of(b)
                        .and_then(|g| group_of_scope.get(&g).copied())
                        .unwrap_or(GroupId::DEFAULT),
                    scope: Some(snap.compile_scope(&tree, b)),
                    domains: snap.name_table(&tree, b, ScopeKind::Domain),
                    hosts: snap.name_table(&tree, b, ScopeKind::Host),
                },
                None => CBinding {
                    name: "default".into(),
                    group: GroupId::DEFAULT,
                    scope: None,
                    domains: NameTable::default(),
                    hosts: NameTable::default(),
                },
            };
            snap.binding_ids.insert(binding.name.clone(), id);
            snap.bindings.push(binding);
        }
        snap.any_hosts = !snap.global_hosts.is_empty()
            || snap.groups.iter().any(|g| !g.hosts.is_empty())
            || snap.bindings.iter().any(|b| !b.hosts.is_empty());
        snap
    }

    /// Whether any `host` stanza exists, at any level: delivery skips host-scope lookups
    /// for every connection when none does.
    pub fn has_hosts(&self) -> bool {
        self.any_hosts
    }

    /// Whether a host stanza at some level of the host chain matches `host`.
    pub fn host_matches(&self, binding: BindingId, host: &DomainKey) -> bool {
        self.host_chain(Some(binding), None, host)
            .links()
            .any(|(_, scope)| scope.is_some())
    }

    fn compile_scope(&self, tree: &ConfigTree, id: ScopeId) -> CScope {
        let mut set: Vec<_> = tree.scope(id).settings.iter().collect();
        set.sort_by_key(|s| s.option);
        let mut mask = [0u64; MASK_WORDS];
        let mut vals = Vec::with_capacity(set.len());
        for s in set {
            let i = s.option.index();
            mask[i / 64] |= 1 << (i % 64);
            vals.push(s.value.clone());
        }
        CScope {
            id,
            mask,
            vals: vals.into_boxed_slice(),
        }
    }

    fn name_table(&mut self, tree: &ConfigTree, container: ScopeId, kind: ScopeKind) -> NameTable {
        let mut table = NameTable::default();
        for &c in &tree.scope(container).children {
            let s = tree.scope(c);
            if s.kind != kind {
                continue;
            }
            let scope = self.compile_scope(tree, c);
            if let Some(re) = &s.pattern {
                table.regex.push((self.regexes.len(), scope));
                self.regexes.push(re.clone());
            } else {
                let next = self.names.len() as u32;
                let id = *self
                    .names
                    .entry(s.name.clone().unwrap_or_default())
                    .or_insert(next);
                table.exact.insert(id, scope);
            }
        }
        table
    }

    pub fn binding_id(&self, name: &str) -> Option<BindingId> {
        self.binding_ids.get(name).copied()
    }

    pub fn group_id(&self, name: &str) -> Option<GroupId> {
        self.group_ids.get(name).copied()
    }

    pub fn binding_name(&self, b: BindingId) -> &str {
        &self.bindings[b.0 as usize].name
    }

    pub fn group_name(&self, g: GroupId) -> &str {
        &self.groups[g.0 as usize].name
    }

    /// The group a binding belongs to.
    pub fn group_of(&self, b: BindingId) -> GroupId {
        self.bindings[b.0 as usize].group
    }

    /// Every binding, `default` first.
    pub fn bindings(&self) -> impl Iterator<Item = BindingId> + '_ {
        (0..self.bindings.len() as u32).map(BindingId)
    }

    /// Every binding group, `default` first.
    pub fn groups(&self) -> impl Iterator<Item = GroupId> + '_ {
        (0..self.groups.len() as u32).map(GroupId)
    }

    /// Prepares a domain or host name for lookups: interned id and regex matches.
    pub fn domain_key(&self, name: &str) -> DomainKey {
        let lower;
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = name.to_ascii_lowercase();
            &lower
        } else {
            name
        };
        let mut regex_matches = Vec::new();
        if !self.regexes.is_empty() {
            regex_matches = vec![0u64; self.regexes.len().div_ceil(64)];
            for (i, re) in self.regexes.iter().enumerate() {
                if re.is_match(name) {
                    regex_matches[i / 64] |= 1 << (i % 64);
                }
            }
        }
        DomainKey {
            id: self.names.get(name).copied(),
            regex_matches,
        }
    }

    /// The compiled binding and the group whose levels its chains walk: the given group, or
    /// else the binding's own.
    fn members(
        &self,
        binding: Option<BindingId>,
        group: Option<GroupId>,
    ) -> (Option<&CBinding>, Option<&CGroup>) {
        let binding = binding.map(|b| &self.bindings[b.0 as usize]);
        let group = group
            .or(binding.map(|b| b.group))
            .map(|g| &self.groups[g.0 as usize]);
        (binding, group)
    }

    /// The delivery chain for a binding (or just a group, or neither) and maybe a domain.
    /// A binding brings its own group; `group` is for group-only queries.
    pub fn chain<'k>(
        &self,
        binding: Option<BindingId>,
        group: Option<GroupId>,
        domain: Option<&'k DomainKey>,
    ) -> Chain<'_, 'k> {
        let (binding, group) = self.members(binding, group);
        Chain {
            snap: self,
            binding,
            group,
            dest: domain,
            host: false,
        }
    }

    /// The host chain: `B::H > G::H > H`, then the option's host default.
    pub fn host_chain<'k>(
        &self,
        binding: Option<BindingId>,
        group: Option<GroupId>,
        host: &'k DomainKey,
    ) -> Chain<'_, 'k> {
        let (binding, group) = self.members(binding, group);
        Chain {
            snap: self,
            binding,
            group,
            dest: Some(host),
            host: true,
        }
    }

    /// The value of `opt` for mail on `binding` to `domain`: the hot-path lookup.
    #[inline]
    pub fn lookup(
        &self,
        binding: BindingId,
        domain: &DomainKey,
        opt: OptionId,
    ) -> Option<Resolved<'_>> {
        self.chain(Some(binding), None, Some(domain)).get(opt)
    }

    /// A global option's value (or its default).
    pub fn global(&self, opt: OptionId) -> Option<&Value> {
        self.global.get(opt).or(self.defaults[opt.index()].as_ref())
    }
}
