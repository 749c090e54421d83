//! Run-time changes: `config set` and `config unset` as the console and Lua say them.
//!
//! A change never edits the running tree. It is applied to a copy, with the same checks a
//! file gets (the change is turned into stanza text and merged by the tree builder), and the
//! copy compiles to the next generation. The console and Lua's `msys.config("set"|"unset")`
//! both come here, through [`apply`]; `config writeback` later writes the difference between
//! the files and the running tree (see [`crate::writeback`]), not the commands typed.

use std::fmt::Write;

use crate::diag::{Diagnostic, render_all};
use crate::query::{self, Query};
use crate::schema::{OptionId, option_by_name};
use crate::snapshot::Snapshot;
use crate::tree::ConfigTree;
use crate::value::write_quoted;

/// The file name run-time changes carry in diagnostics and in `config show`.
pub const CONSOLE_FILE: &str = "<console>";

/// `config set` or `config unset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Set,
    Unset,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Set => "set",
            Action::Unset => "unset",
        }
    }
}

/// A change that passed every check: the new tree and what to tell the operator.
pub struct Changed {
    pub tree: ConfigTree,
    /// Momentum's answer, e.g. `EHLO_Hostname = "mx.example"`.
    pub message: String,
    /// The option's value now: for a set, the value set; for an unset, the value that
    /// applies instead (`None` when nothing does, or when a whole scope was unset).
    pub value: Option<String>,
}

impl Changed {
    /// Whether the change leaves the configuration as it was (a set to the value already
    /// there): the caller need not make a new generation.
    pub fn is_noop(&self, before: &ConfigTree) -> bool {
        self.tree.shape() == before.shape()
    }
}

/// `config set` or `config unset` with the words after the subcommand.
pub fn apply(snap: &Snapshot, action: Action, words: &[String]) -> Result<Changed, String> {
    match action {
        Action::Set => set(snap, words),
        Action::Unset => unset(snap, words),
    }
}

/// Splits `[SCOPE NAME]... OPTION [=] VALUE...` at the option. Scope words are those the
/// schema knows as stanza keywords; the first other word is the option.
fn split_set(words: &[String]) -> Result<(Vec<String>, &[String]), String> {
    let i = query::scope_words_len(words);
    if i >= words.len() {
        return Err("expected [SCOPE NAME]... OPTION VALUE".into());
    }
    let mut value = &words[i + 1..];
    if value.first().is_some_and(|w| w == "=") {
        value = &value[1..];
    }
    if value.is_empty() {
        return Err(format!("`config set` needs a value after `{}`", words[i]));
    }
    Ok((words[..=i].to_vec(), value))
}

/// The value words as configuration text: one word is one quoted scalar; a list `( ... )`
/// or a dictionary `[ ... ]` keeps its punctuation and quotes each item; several plain
/// words are one scalar with spaces.
fn value_text(words: &[String]) -> String {
    let mut out = String::new();
    let structured = matches!(words.first().map(String::as_str), Some("(" | "["));
    if structured {
        for w in words {
            if matches!(w.as_str(), "(" | ")" | "[" | "]" | "=" | ",") {
                out.push_str(w);
            } else {
                let _ = write_quoted(&mut out, w);
            }
            out.push(' ');
        }
        out.pop();
    } else {
        let _ = write_quoted(&mut out, &words.join(" "));
    }
    out
}

/// The stanzas that lead to the query's scope, opened, and the matching closing braces.
fn wrap(q: &Query, inner: &str) -> String {
    let mut text = String::new();
    for (kind, name) in &q.steps {
        text.push_str(&kind.def().keyword.to_ascii_lowercase());
        if let Some(n) = name {
            text.push(' ');
            let _ = write_quoted(&mut text, n);
        }
        text.push_str(" {\n");
    }
    text.push_str(inner);
    text.push('\n');
    for _ in &q.steps {
        text.push_str("}\n");
    }
    text
}

/// `config set [SCOPE NAME]... OPTION [=] VALUE...` on a copy of the snapshot's tree.
pub fn set(snap: &Snapshot, words: &[String]) -> Result<Changed, String> {
    let (path, value) = split_set(words)?;
    let q = query::parse(&path)?;
    let opt = q.option;
    let text = wrap(&q, &format!("{} = {}", opt.def().name, value_text(value)));
    let mut tree = (*snap.tree).clone();
    let diags = tree.apply(CONSOLE_FILE, &text);
    check(&diags, &tree)?;
    let set = query::find_scope(&tree, &q)
        .ok()
        .and_then(|id| tree.scope(id).setting(opt).cloned());
    let (message, value) = match set {
        Some(s) => (query::format_value(opt, &s.value), Some(s.value.plain())),
        None => (format!("{} was not set", opt.def().name), None),
    };
    Ok(Changed {
        tree,
        message,
        value,
    })
}

/// `config unset [SCOPE NAME]... [OPTION]`: one option, or with no option the whole scope.
/// The message gives the value that now applies, as Momentum's console does.
pub fn unset(snap: &Snapshot, words: &[String]) -> Result<Changed, String> {
    let Some(last) = words.last() else {
        return Err("unsetting the global scope is refused".into());
    };
    // Only scope words (`binding b`), or a last word that is no option: the whole scope.
    let whole_scope =
        option_by_name(last).is_none() || query::scope_words_len(words) == words.len();
    let mut tree = (*snap.tree).clone();
    if whole_scope {
        let (id, path) = query::find_scope_words(&tree, words)?;
        tree.unset(id, None);
        return Ok(Changed {
            tree,
            message: format!("Scope '{path}' has been unset."),
            value: None,
        });
    }
    let q = query::parse(words)?;
    let id = query::find_scope(&tree, &q)?;
    if !tree.unset(id, Some(q.option)) {
        return Err(query::not_set_message(&q));
    }
    let next = Snapshot::compile(tree.clone(), snap.generation + 1);
    let mut message = format!(
        "\"{}\" has been unset. Effective value is now:\n",
        q.option.def().name
    );
    let value = query::evaluate(&next, &q).ok().and_then(|e| e.value);
    match &value {
        Some(v) => {
            let _ = write!(message, "\t{}", query::format_value(q.option, v));
        }
        None => {
            let _ = write!(message, "\t{} is not set", q.option.def().name);
        }
    }
    Ok(Changed {
        tree,
        message,
        value: value.map(|v| v.plain()),
    })
}

fn check(diags: &[Diagnostic], tree: &ConfigTree) -> Result<(), String> {
    let errors: Vec<Diagnostic> = diags.iter().filter(|d| d.is_error()).cloned().collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(render_all(&errors, &tree.sources).trim_end().to_string())
    }
}

/// Options in the change that need a restart to take effect (Momentum's "non-dynamic").
pub fn restart_only(before: &ConfigTree, after: &ConfigTree) -> Vec<OptionId> {
    let (a, b) = (before.shape(), after.shape());
    let places: std::collections::BTreeSet<(&String, &&str)> = a
        .iter()
        .chain(b.iter())
        .flat_map(|(scope, opts)| opts.keys().map(move |name| (scope, name)))
        .collect();
    let mut out: Vec<OptionId> = Vec::new();
    for (scope, name) in places {
        let old = a.get(scope).and_then(|o| o.get(name));
        let new = b.get(scope).and_then(|o| o.get(name));
        if old != new
            && let Some(opt) = option_by_name(name)
            && !opt.def().dynamic
            && !out.contains(&opt)
        {
            out.push(opt);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(text: &str) -> Snapshot {
        crate::snapshot_from_str("t.conf", text).expect("valid config")
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn eval(tree: ConfigTree, q: &str) -> String {
        let s = Snapshot::compile(tree, 2);
        let q = query::parse(&words(q)).expect("query");
        query::format_value(
            q.option,
            &query::evaluate(&s, &q).expect("eval").value.expect("set"),
        )
    }

    #[test]
    fn set_goes_through_the_schema_and_creates_scopes() {
        let s = snap("binding \"b\" { bind_address = \"127.0.0.2\" }\n");
        let c = set(
            &s,
            &words("binding b domain d.example max_outbound_connections 7"),
        )
        .expect("valid set");
        assert_eq!(c.message, "Max_Outbound_Connections = 7");
        assert_eq!(
            eval(
                c.tree,
                "binding b domain d.example max_outbound_connections"
            ),
            "Max_Outbound_Connections = 7"
        );
        let c = set(&s, &words("binding new1 = bind_address 127.0.0.7"));
        assert!(c.is_err(), "`=` before the option is not a scope word");
        let c = set(&s, &words("binding new1 bind_address = 127.0.0.7")).expect("new binding");
        let next = Snapshot::compile(c.tree, 2);
        assert!(next.binding_id("new1").is_some());
        let c = set(&s, &words("Relay_Hosts ( 10.0.0.1 10.0.0.2 )")).expect("list");
        assert_eq!(c.message, "Relay_Hosts = (\n  10.0.0.1\n  10.0.0.2\n  )");
        let c = set(&s, &words("esmtp_listener Banner_Hostname mx Busy now")).expect("words");
        assert_eq!(c.message, "Banner_Hostname = \"mx Busy now\"");
    }

    #[test]
    fn bad_sets_are_refused_with_the_engine_s_diagnostics() {
        let s = snap("binding \"b\" { }\n");
        let e = set(&s, &words("binding b max_outbound_conections 7")).err();
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("did you mean `Max_Outbound_Connections`")),
            "{e:?}"
        );
        let e = set(&s, &words("binding b max_outbound_connections many")).err();
        assert!(
            e.as_deref()
                .is_some_and(|e| e.starts_with("<console>:2:28: error: invalid value")),
            "{e:?}"
        );
        let e = set(&s, &words("binding b relay_hosts 10.0.0.1")).err();
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("not valid in binding scope")),
            "{e:?}"
        );
        let e = set(&s, &words("binding b")).err();
        assert!(e.is_some());
    }

    #[test]
    fn unset_reports_the_value_that_now_applies() {
        let s = snap("message_expiration = 100\ndomain \"e.net\" { message_expiration = 5 }\n");
        let c = unset(&s, &words("domain e.net message_expiration")).expect("unset");
        assert_eq!(
            c.message,
            "\"Message_Expiration\" has been unset. Effective value is now:\n\tMessage_Expiration = 100"
        );
        let e = unset(&s, &words("domain e.net message_expiration")).map(|_| ());
        assert!(e.is_ok());
        let e = unset(&s, &words("domain other.net message_expiration")).err();
        assert_eq!(
            e.as_deref(),
            Some("scope 'Domain:other.net:' is not defined")
        );
        let c = unset(&s, &words("domain e.net")).expect("scope");
        assert_eq!(
            eval(c.tree, "domain e.net message_expiration"),
            "Message_Expiration = 100"
        );
        assert!(unset(&s, &[]).is_err());
    }
}
