//! `config get|eval|set|unset|show|locate|reload|writeback`.
//!
//! Set, unset and reload make a new configuration generation and hand it to the daemon,
//! which checks it as a start would (policy scripts compile, listener settings resolve) and
//! swaps it in whole, or refuses it and keeps the running one. Changes are serialised by
//! [`Daemon::with_changes`], which also keeps the text of every run-time set until the next
//! reload drops them.

use std::fmt::Write;

use bindery_config::change::Action;
use bindery_config::query;
use bindery_config::schema::{SCOPES, ScopeKind, scope_by_keyword};
use bindery_config::show::show_scope;
use bindery_config::{ConfigTree, Snapshot, diag::did_you_mean};
use serde_json::json;

use super::Output;
use crate::change;
use crate::daemon::{Daemon, Install};

pub fn run<D: Daemon>(d: &D, args: &[&str]) -> Output {
    let words: Vec<String> = args.iter().skip(1).map(|s| s.to_string()).collect();
    match args.first().copied() {
        Some("get") => get(d, &words),
        Some("eval") => eval(d, &words),
        Some("set") => apply(d, Action::Set, &words),
        Some("unset") => apply(d, Action::Unset, &words),
        Some("show") => show_cmd(d, &words),
        Some("locate") => locate(d, &words),
        Some("writeback") => super::writeback::run(d, &words),
        Some("reload") if words.is_empty() => reload(d, false),
        Some("reload") if words == ["force"] => reload(d, true),
        Some("reload") => Output::error(
            "usage: config reload [force]: it reads the files bindery was started with",
        ),
        Some(other) => {
            let subs = [
                "get",
                "eval",
                "set",
                "unset",
                "show",
                "locate",
                "reload",
                "writeback",
            ];
            let mut msg = format!("Unknown config subcommand `{other}`");
            if let Some(best) = did_you_mean(other, subs.iter().copied()) {
                msg.push_str(&format!("; did you mean `config {best}`?"));
            }
            Output::error(msg)
        }
        None => Output::error("usage: config get|eval|set|unset|show|locate|reload|writeback ..."),
    }
}

fn get<D: Daemon>(d: &D, words: &[String]) -> Output {
    let snap = d.snapshot();
    let q = match query::parse(words) {
        Ok(q) => q,
        Err(e) => return Output::error(e),
    };
    match query::get(&snap.tree, &q) {
        Some(s) => {
            let line = query::format_value(q.option, &s.value);
            Output::ok(
                format!("\t{line}\n"),
                json!({ "option": q.option.def().name, "value": s.value.to_string(), "scope": q.scope_path() }),
            )
        }
        None => Output::ok(
            format!("{}\n", query::not_set_message(&q)),
            json!({ "option": q.option.def().name, "value": null, "scope": q.scope_path() }),
        ),
    }
}

fn eval<D: Daemon>(d: &D, words: &[String]) -> Output {
    let snap = d.snapshot();
    let q = match query::parse(words) {
        Ok(q) => q,
        Err(e) => return Output::error(e),
    };
    match query::evaluate(&snap, &q) {
        Ok(ev) => {
            let level = ev
                .steps
                .iter()
                .find(|s| s.setting.is_some())
                .map(|s| s.level);
            Output::ok(
                format!("{}\n", query::eval_line(&q, &ev)),
                json!({
                    "option": q.option.def().name,
                    "value": ev.value.as_ref().map(ToString::to_string),
                    "from": level.unwrap_or("default"),
                }),
            )
        }
        Err(e) => Output::error(e),
    }
}

/// Runs a set or unset against the running snapshot and installs the result.
fn apply<D: Daemon>(d: &D, action: Action, words: &[String]) -> Output {
    match change::apply(d, action, words) {
        Ok(a) => {
            let mut text = format!("{}\n", a.message);
            for n in &a.notes {
                let _ = writeln!(text, "Note: {n}");
            }
            Output::ok(
                text,
                json!({ "message": a.message, "value": a.value, "generation": a.snapshot.generation, "notes": a.notes }),
            )
        }
        Err(e) => Output::error(e),
    }
}

/// Why a reload that parses is still refused without `force`: the files read look like an
/// accident (a truncated write, a listener stanza lost in an edit), and loading them would
/// close the door on every client and forget the relay and routing settings.
fn suspicious(running: &ConfigTree, read: &ConfigTree) -> Option<String> {
    if let Some((_, main)) = read.sources.files().next()
        && main.text.trim().is_empty()
    {
        return Some(format!(
            "the main file {} is empty (a truncated write?)",
            main.path.display()
        ));
    }
    let listens = |t: &ConfigTree| bindery_config::inbound::listens(t, ScopeKind::EsmtpListener);
    let before = listens(running).len();
    if before > 0 && listens(read).is_empty() {
        return Some(format!(
            "it would remove every ESMTP listener ({before} now), refusing every client"
        ));
    }
    None
}

fn reload<D: Daemon>(d: &D, force: bool) -> Output {
    d.with_changes(|changes| {
        let tree = match d.reread() {
            Ok(t) => t,
            Err(e) => return Output::error(format!("Reconfigure failed\n{}", e.trim_end())),
        };
        if !force && let Some(why) = suspicious(&d.snapshot().tree, &tree) {
            return Output::error(format!(
                "Reconfigure refused: {why}.\nNothing changed; `config reload force` loads \
                 these files anyway."
            ));
        }
        let generation = d.snapshot().generation + 1;
        match d.install(Snapshot::compile(tree, generation), Install::Reload) {
            Ok(notes) => {
                let dropped = changes.len();
                changes.clear();
                let mut text = format!("Reconfigured: generation {generation}.\n");
                if dropped > 0 {
                    let _ = writeln!(
                        text,
                        "Dropped {dropped} run-time change(s) that were not written back."
                    );
                }
                for n in &notes {
                    let _ = writeln!(text, "Note: {n}");
                }
                Output::ok(
                    text,
                    json!({ "generation": generation, "dropped_changes": dropped, "notes": notes }),
                )
            }
            Err(e) => Output::error(format!("Reconfigure failed\n{}", e.trim_end())),
        }
    })
}

fn show_cmd<D: Daemon>(d: &D, words: &[String]) -> Output {
    let snap = d.snapshot();
    // No words name the global scope: the whole configuration.
    let text = match query::find_scope_words(&snap.tree, words) {
        Ok((id, _)) => show_scope(&snap.tree, id),
        Err(e) => return Output::error(e),
    };
    Output::ok(
        text.clone(),
        json!({ "generation": snap.generation, "text": text }),
    )
}

fn locate<D: Daemon>(d: &D, words: &[String]) -> Output {
    let (kind, pattern) = match words {
        [k] => (k, None),
        [k, p] => (k, Some(p)),
        _ => return Output::error("usage: config locate SCOPE [REGEX]"),
    };
    let Some(def) = scope_by_keyword(kind).filter(|d| d.kind != ScopeKind::Global) else {
        let mut msg = format!("unknown scope `{kind}`");
        if let Some(best) = did_you_mean(kind, SCOPES.iter().skip(1).map(|s| s.keyword)) {
            msg.push_str(&format!("; did you mean `{}`?", best.to_ascii_lowercase()));
        }
        return Output::error(msg);
    };
    let re = match pattern.map(|p| regex::Regex::new(p)).transpose() {
        Ok(r) => r,
        Err(e) => return Output::error(format!("invalid regular expression: {e}")),
    };
    let snap = d.snapshot();
    let tree = &snap.tree;
    let mut text = String::new();
    let mut found = Vec::new();
    for id in tree.scope_ids() {
        let s = tree.scope(id);
        if s.kind != def.kind {
            continue;
        }
        let name = s.name.clone().unwrap_or_default();
        if re.as_ref().is_some_and(|r| !r.is_match(&name)) {
            continue;
        }
        let label = if def.named {
            format!("{} \"{name}\"", def.keyword)
        } else {
            def.keyword.to_string()
        };
        let path = tree.path(id);
        let _ = writeln!(text, "{label:<21} is at {path}");
        found.push(json!({ "scope": label, "path": path }));
    }
    Output::ok(text, serde_json::Value::Array(found))
}
