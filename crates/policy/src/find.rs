//! The scripts a configuration names, found on disk the way Momentum finds them.
//!
//! `source` is a path, absolute or relative, with or without `.lua`: a relative one is
//! looked for in the folder of the file that sets it and then along the config search path,
//! as includes are. Where no such file exists, the dotted module form is tried
//! (`policy.assign` is `policy/assign.lua`) in that folder and then along the search path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bindery_config::diag::{Diagnostic, did_you_mean};
use bindery_config::schema::{OptionId, ScopeKind, option_id};
use bindery_config::snapshot::default_value;
use bindery_config::tree::{ConfigTree, ROOT, ScopeId};
use bindery_config::value::Value;

use crate::{Limits, LoadError};

/// One script, read.
#[derive(Clone, Debug)]
pub struct Script {
    /// The scriptlet instance (`scriptlet "scriptlet"`).
    pub instance: String,
    /// The script's name (`script "name"`).
    pub name: String,
    pub path: PathBuf,
    pub text: String,
}

fn opt(name: &'static str) -> OptionId {
    option_id(name)
}

/// The first scriptlet setting of `name`, else the schema default.
fn limit_value(tree: &ConfigTree, scriptlets: &[ScopeId], name: &'static str) -> Option<Value> {
    let id = opt(name);
    scriptlets
        .iter()
        .find_map(|&s| tree.scope(s).setting(id).map(|s| s.value.clone()))
        .or_else(|| default_value(id))
}

/// The run limits: from the first scriptlet that sets each, else the schema's defaults.
pub fn limits(tree: &ConfigTree) -> Limits {
    let scriptlets: Vec<ScopeId> = tree.children_of(ROOT, ScopeKind::Scriptlet).collect();
    let instructions = match limit_value(tree, &scriptlets, "Instruction_Limit") {
        Some(Value::Int(n)) if n > 0 => n as u64,
        _ => u64::MAX,
    };
    let time = match limit_value(tree, &scriptlets, "Time_Limit") {
        Some(Value::Seconds(s)) if s > 0 => Duration::from_secs(s),
        _ => Duration::MAX,
    };
    let unsafe_libraries = matches!(
        limit_value(tree, &scriptlets, "Allow_Unsafe_Libraries"),
        Some(Value::Bool(true))
    );
    Limits {
        instructions,
        time,
        unsafe_libraries,
    }
}

/// Every script of every scriptlet, in configuration order, read from disk.
pub fn scripts(tree: &ConfigTree) -> Result<(Vec<Script>, Limits), LoadError> {
    let source = opt("Source");
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for instance in tree.children_of(ROOT, ScopeKind::Scriptlet) {
        let instance_name = tree.scope(instance).name.clone().unwrap_or_default();
        for script in tree.children_of(instance, ScopeKind::Script) {
            let scope = tree.scope(script);
            let name = scope.name.clone().unwrap_or_default();
            let Some(setting) = scope.setting(source) else {
                if let Some(&span) = scope.opened.first() {
                    diags.push(Diagnostic::error(
                        span,
                        format!("script `{name}` has no `source`"),
                    ));
                }
                continue;
            };
            let Value::Str(src) = &setting.value else {
                continue;
            };
            let file = tree.sources.get(setting.span.file);
            let base = file
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let tried = candidates(src, &base, &tree.search);
            match tried.iter().find(|p| p.is_file()) {
                Some(path) => match std::fs::read_to_string(path) {
                    Ok(text) => out.push(Script {
                        instance: instance_name.clone(),
                        name,
                        path: path.clone(),
                        text,
                    }),
                    Err(e) => diags.push(Diagnostic::error(
                        setting.span,
                        format!("cannot read script `{}`: {e}", path.display()),
                    )),
                },
                None => {
                    let mut d = Diagnostic::error(setting.span, format!("no script `{src}` found"))
                        .with_help(format!(
                            "looked for {}",
                            tried
                                .iter()
                                .map(|p| p.display().to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    if let Some(best) = nearby(src, &base) {
                        d = d.with_help(format!("did you mean `{best}`?"));
                    }
                    diags.push(d);
                }
            }
        }
    }
    if diags.is_empty() {
        Ok((out, limits(tree)))
    } else {
        Err(LoadError::Config(diags))
    }
}

/// Where `require` looks for a policy's own modules: each script's folder (in the order
/// the scripts come), then the configuration search path.
pub fn module_dirs(scripts: &[Script], search: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let folders = scripts
        .iter()
        .filter_map(|s| s.path.parent().map(Path::to_path_buf));
    for d in folders.chain(search.iter().cloned()) {
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

/// The files `source = src` may mean, in the order they are tried.
pub fn candidates(src: &str, base: &Path, search: &[PathBuf]) -> Vec<PathBuf> {
    let p = Path::new(src);
    let direct = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    let mut out = Vec::new();
    let mut push = |c: PathBuf| {
        if !out.contains(&c) {
            out.push(c);
        }
    };
    let with_lua = |d: &Path| PathBuf::from(format!("{}.lua", d.display()));
    push(direct.clone());
    if !src.ends_with(".lua") {
        push(with_lua(&direct));
    }
    if p.is_absolute() {
        return out;
    }
    // A relative path is looked up along the search path too, as includes are.
    for dir in search {
        let c = dir.join(p);
        push(c.clone());
        if !src.ends_with(".lua") {
            push(with_lua(&c));
        }
    }
    if !src.ends_with(".lua") && !src.contains('/') && src.contains('.') {
        let module = format!("{}.lua", src.replace('.', "/"));
        for dir in std::iter::once(base).chain(search.iter().map(PathBuf::as_path)) {
            push(dir.join(&module));
        }
    }
    out
}

/// A `.lua` file next to where `src` was looked for whose name is close to it.
fn nearby(src: &str, base: &Path) -> Option<String> {
    let want = Path::new(src);
    let dir = base.join(want.parent().unwrap_or(Path::new("")));
    let stem = want.file_name()?.to_str()?.trim_end_matches(".lua");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".lua"))
        .map(|n| n.trim_end_matches(".lua").to_string())
        .collect();
    let best = did_you_mean(stem, names.iter().map(String::as_str))?;
    let parent = want.parent().filter(|p| !p.as_os_str().is_empty());
    Some(match parent {
        Some(p) => format!("{}/{best}", p.display()),
        None => best.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_momentum() {
        let base = Path::new("/etc/b");
        let search = vec![PathBuf::from("/etc/b/conf/global")];
        let c = candidates("policy.assign", base, &search);
        assert_eq!(
            c,
            [
                "/etc/b/policy.assign",
                "/etc/b/policy.assign.lua",
                "/etc/b/conf/global/policy.assign",
                "/etc/b/conf/global/policy.assign.lua",
                "/etc/b/policy/assign.lua",
                "/etc/b/conf/global/policy/assign.lua"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(
            candidates("x/a.lua", base, &search),
            ["/etc/b/x/a.lua", "/etc/b/conf/global/x/a.lua"].map(PathBuf::from)
        );
        assert_eq!(
            candidates("/abs/a", base, &search),
            ["/abs/a", "/abs/a.lua"].map(PathBuf::from)
        );
    }
}
