//! Scope paths as the console writes them: `binding_group g binding b domain d OPTION`.
//!
//! Used by `bindery config get|eval|explain` now and by the console later. A query names a
//! place and an option; [`evaluate`] walks the fallback chain for it, [`get`] looks only in
//! the named scope.

use crate::diag::did_you_mean;
use crate::schema::{OPTIONS, OptionId, SCOPES, ScopeKind, option_by_name, scope_by_keyword};
use crate::snapshot::{BindingId, Chain, GroupId, Level, Origin, Snapshot};
use crate::tree::{ConfigTree, ROOT, ScopeId, Setting, path_segment};
use crate::value::Value;

/// A parsed query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub steps: Vec<(ScopeKind, Option<String>)>,
    pub option: OptionId,
}

impl Query {
    /// The scope part in Momentum's internal form, for "not set in scope '...'" messages.
    pub fn scope_path(&self) -> String {
        steps_path(&self.steps)
    }
}

/// Momentum's internal path of scope steps: `Binding:b:Domain:d:`.
fn steps_path(steps: &[(ScopeKind, Option<String>)]) -> String {
    steps
        .iter()
        .map(|(k, n)| path_segment(*k, n.as_deref()))
        .collect()
}

/// Parses `[SCOPE NAME]... OPTION`.
pub fn parse(words: &[String]) -> Result<Query, String> {
    let Some((last, scopes)) = words.split_last() else {
        return Err("expected [SCOPE NAME]... OPTION".into());
    };
    let steps = parse_steps(scopes)?;
    let option = option_by_name(last).ok_or_else(|| {
        let mut msg = format!("unknown option `{last}`");
        if let Some(best) = did_you_mean(last, OPTIONS.iter().map(|o| o.name)) {
            msg.push_str(&format!("; did you mean `{best}`?"));
        }
        msg
    })?;
    Ok(Query { steps, option })
}

/// Parses `[SCOPE NAME]...`: scope keywords, each named one followed by its name, each
/// valid inside the one before.
pub fn parse_steps(scopes: &[String]) -> Result<Vec<(ScopeKind, Option<String>)>, String> {
    let mut steps = Vec::new();
    let mut i = 0;
    while i < scopes.len() {
        let w = &scopes[i];
        let Some(def) = scope_by_keyword(w).filter(|d| d.kind != ScopeKind::Global) else {
            let mut msg = format!("unknown scope `{w}`");
            if let Some(best) = did_you_mean(w, SCOPES.iter().skip(1).map(|s| s.keyword)) {
                msg.push_str(&format!("; did you mean `{}`?", best.to_ascii_lowercase()));
            } else if option_by_name(w).is_some() {
                msg.push_str("; the option name comes last");
            }
            return Err(msg);
        };
        let name = if def.named {
            i += 1;
            match scopes.get(i) {
                Some(n) => Some(n.clone()),
                None => {
                    return Err(format!(
                        "`{}` needs a name before the option",
                        def.keyword.to_ascii_lowercase()
                    ));
                }
            }
        } else {
            None
        };
        let parent = steps.last().map_or(ScopeKind::Global, |(k, _)| *k);
        if !def.parents.contains(parent) {
            return Err(format!(
                "`{}` is not valid inside {}",
                def.keyword.to_ascii_lowercase(),
                parent.def().keyword.to_ascii_lowercase()
            ));
        }
        steps.push((def.kind, name));
        i += 1;
    }
    Ok(steps)
}

/// How many leading words are scope keywords and their names (`binding b domain d`). It may
/// exceed `words.len()` when a named scope's name is missing.
pub fn scope_words_len(words: &[String]) -> usize {
    let mut i = 0;
    while i < words.len() {
        match scope_by_keyword(&words[i]).filter(|d| d.kind != ScopeKind::Global) {
            Some(def) if def.named => i += 2,
            Some(_) => i += 1,
            None => break,
        }
    }
    i
}

/// One scope a lookup looked at.
#[derive(Clone, Debug)]
pub struct Step {
    /// What the level is, e.g. `binding::domain`.
    pub level: &'static str,
    /// The scope, when a stanza for it exists.
    pub scope: Option<ScopeId>,
    /// The setting found there, if any.
    pub setting: Option<Setting>,
}

/// The outcome of `config eval`.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub option: OptionId,
    pub steps: Vec<Step>,
    /// The effective value, `None` when the option is unset everywhere and has no default.
    pub value: Option<Value>,
    pub origin: Option<Origin>,
}

/// The binding, group and destination a delivery-style query names.
struct Target {
    binding: Option<BindingId>,
    group: Option<GroupId>,
    domain: Option<String>,
    host: Option<String>,
}

fn delivery_target(snap: &Snapshot, q: &Query) -> Result<Option<Target>, String> {
    let mut t = Target {
        binding: None,
        group: None,
        domain: None,
        host: None,
    };
    let mut order = 0;
    for (kind, name) in &q.steps {
        let name = name.clone().unwrap_or_default();
        let rank = match kind {
            ScopeKind::BindingGroup => 1,
            ScopeKind::Binding => 2,
            ScopeKind::Domain | ScopeKind::Host => 3,
            _ => return Ok(None),
        };
        if rank <= order {
            return Ok(None);
        }
        order = rank;
        match kind {
            ScopeKind::BindingGroup => {
                t.group = Some(
                    snap.group_id(&name)
                        .ok_or_else(|| format!("no binding group `{name}`"))?,
                );
            }
            ScopeKind::Binding => {
                let b = snap
                    .binding_id(&name)
                    .ok_or_else(|| format!("no binding `{name}`"))?;
                if let Some(g) = t.group
                    && snap.group_of(b) != g
                {
                    return Err(format!(
                        "binding `{name}` is in binding group `{}`, not `{}`",
                        snap.group_name(snap.group_of(b)),
                        snap.group_name(g)
                    ));
                }
                t.binding = Some(b);
            }
            ScopeKind::Domain => t.domain = Some(name),
            _ => t.host = Some(name),
        }
    }
    Ok(Some(t))
}

fn steps_of(snap: &Snapshot, chain: &Chain<'_, '_>, opt: OptionId) -> Vec<Step> {
    chain
        .links()
        .map(|(level, scope)| Step {
            level: level.describe(),
            scope,
            setting: scope.and_then(|s| snap.tree.scope(s).setting(opt).cloned()),
        })
        .collect()
}

/// `config eval`: the effective value after fallback, with every scope looked at.
pub fn evaluate(snap: &Snapshot, q: &Query) -> Result<Evaluation, String> {
    let opt = q.option;
    if let Some(t) = delivery_target(snap, q)? {
        let key = t
            .host
            .as_deref()
            .or(t.domain.as_deref())
            .map(|d| snap.domain_key(d));
        let chain = match (&t.host, &key) {
            (Some(_), Some(key)) => {
                if !opt.def().scopes.contains(ScopeKind::Host) {
                    return Err(format!("`{}` is not valid in host scope", opt.def().name));
                }
                snap.host_chain(t.binding, t.group, key)
            }
            _ => {
                let group = if t.binding.is_some() { None } else { t.group };
                snap.chain(t.binding, group, key.as_ref())
            }
        };
        let found = chain.get(opt);
        return Ok(Evaluation {
            option: opt,
            steps: steps_of(snap, &chain, opt),
            value: found.map(|r| r.value.clone()),
            origin: found.map(|r| r.origin),
        });
    }
    // Listener and other scopes: fall back from the named scope through its parents
    // (Listen::Peer > Listen > listener > global), as Momentum's listener options do.
    let tree = &snap.tree;
    let mut cur = Some(find_scope(tree, q)?);
    let mut steps = Vec::new();
    while let Some(id) = cur {
        let s = tree.scope(id);
        steps.push(Step {
            level: level_name(s.kind),
            scope: Some(id),
            setting: s.setting(opt).cloned(),
        });
        cur = s.parent;
    }
    let hit = steps
        .iter()
        .find_map(|s| Some((s.setting.as_ref()?, s.scope?)));
    let (value, origin) = match hit {
        Some((setting, scope)) => (Some(setting.value.clone()), Some(Origin::Scope(scope))),
        None => (crate::snapshot::default_value(opt), Some(Origin::Default)),
    };
    Ok(Evaluation {
        option: opt,
        steps,
        value,
        origin,
    })
}

fn level_name(kind: ScopeKind) -> &'static str {
    match kind {
        ScopeKind::Global => Level::Global.describe(),
        other => other.def().keyword,
    }
}

/// The scope a query names exactly, if it is defined.
pub fn find_scope(tree: &ConfigTree, q: &Query) -> Result<ScopeId, String> {
    find_steps(tree, &q.steps)
}

/// The scope `[SCOPE NAME]...` names exactly (no option), with its path for messages.
pub fn find_scope_words(tree: &ConfigTree, words: &[String]) -> Result<(ScopeId, String), String> {
    let steps = parse_steps(words)?;
    Ok((find_steps(tree, &steps)?, steps_path(&steps)))
}

fn find_steps(tree: &ConfigTree, steps: &[(ScopeKind, Option<String>)]) -> Result<ScopeId, String> {
    let undefined = || format!("scope '{}' is not defined", steps_path(steps));
    let mut cur = ROOT;
    for (kind, name) in steps {
        let next = tree
            .find(cur, *kind, name.as_deref())
            .ok_or_else(undefined)?;
        if *kind == ScopeKind::Binding
            && tree.scope(cur).kind == ScopeKind::BindingGroup
            && tree.group_of(next) != Some(cur)
        {
            return Err(undefined());
        }
        cur = next;
    }
    Ok(cur)
}

/// `config get`: the setting made in exactly the named scope.
pub fn get(tree: &ConfigTree, q: &Query) -> Option<Setting> {
    find_scope(tree, q)
        .ok()
        .and_then(|id| tree.scope(id).setting(q.option).cloned())
}

/// Momentum's line for an effective value: `Max_Outbound_Connections = 15`.
pub fn format_value(opt: OptionId, value: &Value) -> String {
    format!("{} = {}", opt.def().name, value)
}

/// Momentum's line for an option that is not set in a scope.
pub fn not_set_message(q: &Query) -> String {
    format!(
        "Option '{}' is not set in scope '{}'.",
        q.option.def().name,
        q.scope_path()
    )
}

/// `config eval`'s answer: the effective value, or Momentum's line for none.
pub fn eval_line(q: &Query, ev: &Evaluation) -> String {
    match &ev.value {
        Some(v) => format_value(ev.option, v),
        None => format!(
            "Option '{}' has no value in scope '{}'.",
            ev.option.def().name,
            q.scope_path()
        ),
    }
}
