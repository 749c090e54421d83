//! Console commands: one file per command family, each turning words into an [`Output`]
//! (Momentum's text, and the same data as JSON for `--json`).

mod adaptive;
mod adaptive_explain;
mod binding_fail;
mod binding_queues;
mod binding_summary;
mod bounce_classifier;
mod config;
mod domain;
pub(crate) mod figures;
mod injection_summary;
mod mailq;
mod message;
mod rebind;
mod reopen;
mod showqueue;
mod signing_stats;
mod summary;
mod writeback;

use serde_json::{Value, json};

use crate::daemon::Daemon;

/// A command's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    pub ok: bool,
    pub text: String,
    pub json: Value,
}

impl Output {
    pub fn ok(text: impl Into<String>, json: Value) -> Output {
        Output {
            ok: true,
            text: text.into(),
            json,
        }
    }

    pub fn error(text: impl Into<String>) -> Output {
        let text = text.into();
        Output {
            ok: false,
            json: json!({ "error": text.trim_end() }),
            text,
        }
    }

    /// The text, ending with exactly one newline (or empty).
    pub fn display(&self) -> String {
        let t = self.text.trim_end_matches('\n');
        if t.is_empty() {
            String::new()
        } else {
            format!("{t}\n")
        }
    }
}

/// Every command: its words, arguments and what it does, for `help` and completion.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    (
        "binding summary",
        "[NAME | group:NAME]",
        "per-binding statistics",
    ),
    (
        "binding active",
        "NAME [THRESHOLD]",
        "active queue per domain of a binding",
    ),
    (
        "binding delayed",
        "NAME [THRESHOLD]",
        "delayed queue per domain of a binding",
    ),
    (
        "binding fail domain",
        "[quiet] NAME DOMAIN|all",
        "fail queued mail (with bounces unless quiet)",
    ),
    (
        "binding flush domain",
        "NAME DOMAIN|all",
        "make delayed mail due now",
    ),
    (
        "summary",
        "[reset]",
        "global statistics; reset starts the figures again",
    ),
    (
        "mailq",
        "[-d DOMAIN]... [-b BINDING]... [-l LIMIT]",
        "queue sizes per binding and domain",
    ),
    (
        "showqueue",
        "[binding NAME|all] DOMAIN [LIMIT,OFFSET]",
        "queued messages of a domain",
    ),
    (
        "domain",
        "NAME",
        "a domain's configuration, routes and queues",
    ),
    (
        "rebind",
        "NAME|all [DOMAIN]",
        "assign queued mail to bindings again",
    ),
    ("message details", "ID", "one queued message"),
    ("message fail", "ID", "fail a message with a bounce"),
    (
        "message retry",
        "ID",
        "make a message's delayed parts due now",
    ),
    (
        "config get",
        "[SCOPE NAME]... OPTION",
        "the value set in exactly that scope",
    ),
    (
        "config eval",
        "[SCOPE NAME]... OPTION",
        "the effective value after fallback",
    ),
    (
        "config set",
        "[SCOPE NAME]... OPTION [=] VALUE",
        "change the running configuration",
    ),
    (
        "config unset",
        "[SCOPE NAME]... [OPTION]",
        "remove an option, or everything in a scope",
    ),
    (
        "config show",
        "[SCOPE NAME]...",
        "the running configuration, normalised",
    ),
    (
        "config locate",
        "SCOPE [REGEX]",
        "where scopes of a kind are",
    ),
    (
        "config reload",
        "[force]",
        "read the files again and swap atomically (drops unwritten changes); force: even an empty main file or one without listeners",
    ),
    (
        "config writeback",
        "[PATH]",
        "keep run-time changes: write them to Local_Changes_File",
    ),
    (
        "reopen logs",
        "",
        "close and reopen every log file (after rotation); also `ec_logger:NAME reopen logs`",
    ),
    (
        "signing_stats",
        "[reset]",
        "DKIM signing statistics: global, per domain, per binding, per binding per domain",
    ),
    (
        "injection summary",
        "",
        "logins, messages and recipients per SMTP AUTH user and per API key name",
    ),
    (
        "bounce_classifier_override reload",
        "",
        "read the bounce classification override files (or queries) again",
    ),
    (
        "bounce_classifier_override test",
        "TEXT",
        "the bounce class of a reply, and the rule that gave it",
    ),
    (
        "adaptive suspensions",
        "[--binding B] [--domain D] [--all]",
        "suspensions in force: TTL and whether enabled",
    ),
    (
        "adaptive override",
        "[--binding B] [--domain D] [--all] [ttl SECONDS | enable]",
        "turn suspensions off, set their time left, or turn them on again",
    ),
    (
        "adaptive list",
        "[--binding B] [--domain D]",
        "limits adaptive rules lowered, per binding and domain",
    ),
    (
        "adaptive reset",
        "[--binding B] [--domain D] [--all]",
        "forget suspensions and lowered limits",
    ),
    (
        "adaptive rules",
        "--binding B --domain D",
        "the adaptive response rules in force for a binding and domain",
    ),
    (
        "adaptive explain",
        "BINDING DOMAIN",
        "why adaptive delivery holds a binding and domain: rule, reply, limits, when it lifts",
    ),
    ("help", "", "this list"),
    ("quit", "", "leave the console"),
];

/// Runs one command line's words.
pub async fn run<D: Daemon>(d: &D, words: &[String]) -> Output {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    match w.as_slice() {
        [] => Output::ok("", Value::Null),
        ["help"] | ["?"] => help(),
        ["summary"] => summary::summary(d),
        ["summary", "reset"] => summary::reset(d),
        ["binding", "summary", rest @ ..] => binding_summary::run(d, rest),
        ["binding", which @ ("active" | "delayed"), rest @ ..] => {
            binding_queues::run(d, which, rest)
        }
        ["binding", "fail", "domain", rest @ ..] => binding_fail::fail(d, rest).await,
        ["binding", "flush", "domain", rest @ ..] => binding_fail::flush(d, rest),
        ["mailq", rest @ ..] => mailq::run(d, rest),
        ["showqueue", rest @ ..] => showqueue::run(d, rest),
        ["domain", name] => domain::run(d, name),
        ["rebind", rest @ ..] => rebind::run(d, rest).await,
        ["message", which, id] => message::run(d, which, id).await,
        ["config", rest @ ..] => config::run(d, rest),
        ["reopen", "logs"] => reopen::run(d),
        ["signing_stats"] => signing_stats::show(d),
        ["signing_stats", "reset"] => signing_stats::reset(d),
        ["injection", "summary"] => injection_summary::run(d),
        ["bounce_classifier_override", "reload"] => bounce_classifier::reload(d),
        ["bounce_classifier_override", "test", rest @ ..] => bounce_classifier::test(d, rest),
        // Momentum's module-addressed form; bindery reopens every log, which includes that
        // module's.
        [m, "reopen", "logs"] if m.starts_with("ec_logger:") || m.starts_with("bounce_logger:") => {
            reopen::run(d)
        }
        ["adaptive", rest @ ..] => adaptive::run(d, rest),
        ["names"] => names(d),
        _ => unknown(&w),
    }
}

/// Width of the usage column in `help`.
const USAGE_WIDTH: usize = 52;

fn help() -> Output {
    let mut text = String::from("Commands:\n");
    for (words, args, what) in COMMANDS {
        let usage = format!("{words} {args}");
        let usage = usage.trim_end();
        // A usage too wide for the column gets a line of its own, so the descriptions
        // stay aligned.
        if usage.len() > USAGE_WIDTH {
            text.push_str(&format!("  {usage}\n  {:<USAGE_WIDTH$} {what}\n", ""));
        } else {
            text.push_str(&format!("  {usage:<USAGE_WIDTH$} {what}\n"));
        }
    }
    let list: Vec<Value> = COMMANDS
        .iter()
        .map(|(w, a, d)| json!({"command": w, "arguments": a, "description": d}))
        .collect();
    Output::ok(text, Value::Array(list))
}

/// Names the interactive client completes: bindings, groups, domains with queues, and the
/// command words.
fn names<D: Daemon>(d: &D) -> Output {
    let snap = d.snapshot();
    let bindings: Vec<&str> = snap.bindings().map(|b| snap.binding_name(b)).collect();
    let groups: Vec<&str> = snap.groups().map(|g| snap.group_name(g)).collect();
    let mut domains: Vec<String> = d.queues().into_iter().map(|q| q.domain).collect();
    domains.sort();
    domains.dedup();
    let commands: Vec<&str> = COMMANDS.iter().map(|c| c.0).collect();
    let json = json!({
        "bindings": bindings,
        "groups": groups,
        "domains": domains,
        "commands": commands,
    });
    Output::ok(json.to_string(), json)
}

fn unknown(w: &[&str]) -> Output {
    let typed = w.iter().take(3).copied().collect::<Vec<_>>().join(" ");
    let mut msg = format!("Unknown command: {typed}");
    let best = COMMANDS
        .iter()
        .map(|(c, _, _)| {
            let n = c.split(' ').count();
            let t = w.iter().take(n).copied().collect::<Vec<_>>().join(" ");
            (strsim::levenshtein(c, &t), *c)
        })
        .filter(|(distance, _)| *distance <= 3)
        .min_by_key(|(distance, _)| *distance);
    if let Some((_, c)) = best {
        msg.push_str(&format!("; did you mean `{c}`?"));
    }
    msg.push_str(" (try `help`)");
    Output::error(msg)
}

/// Parses a count argument, or says what was wrong with it.
fn number(word: &str, what: &str) -> Result<usize, Output> {
    word.parse()
        .map_err(|_| Output::error(format!("{what} must be a number, not `{word}`")))
}
