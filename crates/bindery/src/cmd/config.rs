//! `bindery config check|eval|get|show|explain`.

use std::fmt::Write;
use std::process::ExitCode;

use bindery_config::diag::render_all;
use bindery_config::query::{self, Evaluation};
use bindery_config::show::show;
use bindery_config::snapshot::{Origin, Snapshot};

use super::{ConfigArgs, compiled, load};

#[derive(clap::Subcommand)]
pub enum ConfigCommand {
    /// Exit 0 when the configuration is valid; otherwise print every diagnostic and exit 1.
    Check(CheckArgs),
    /// Print an option's effective value after fallback: [SCOPE NAME]... OPTION.
    Eval(QueryArgs),
    /// Print the value set in exactly that scope: [SCOPE NAME]... OPTION.
    Get(QueryArgs),
    /// Print the whole configuration, normalised.
    Show(ConfigArgs),
    /// Show the fallback chain walked for an option and which scope supplied the value.
    Explain(QueryArgs),
}

#[derive(clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Print one table of every option and module the files name, with what bindery does
    /// with each (implemented, inert, refused, unknown) and where it is, instead of the
    /// diagnostics: the whole distance of a Momentum configuration in one run.
    #[arg(long)]
    pub migrate_report: bool,
    /// Also list the options that are accepted as tuning of Momentum's internals and have
    /// no meaning here (they load without a warning).
    #[arg(long, short)]
    pub verbose: bool,
}

#[derive(clap::Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Scope words and the option, as on Momentum's console:
    /// `binding_group g binding b domain example.com max_outbound_connections`.
    #[arg(required = true, value_name = "WORDS")]
    pub words: Vec<String>,
}

pub fn run(cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCommand::Check(args) => check(&args),
        ConfigCommand::Show(args) => with_snapshot(&args, |snap| {
            print!("{}", show(&snap.tree));
            Ok(ExitCode::SUCCESS)
        }),
        ConfigCommand::Eval(q) => with_snapshot(&q.config, |snap| {
            let query = match query::parse(&q.words) {
                Ok(query) => query,
                Err(e) => return usage(&e),
            };
            match query::evaluate(snap, &query) {
                Ok(ev) => {
                    println!("{}", query::eval_line(&query, &ev));
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => usage(&e),
            }
        }),
        ConfigCommand::Get(q) => with_snapshot(&q.config, |snap| {
            let query = match query::parse(&q.words) {
                Ok(query) => query,
                Err(e) => return usage(&e),
            };
            match query::get(&snap.tree, &query) {
                Some(s) => println!("\t{}", query::format_value(query.option, &s.value)),
                None => println!("{}", query::not_set_message(&query)),
            }
            Ok(ExitCode::SUCCESS)
        }),
        ConfigCommand::Explain(q) => with_snapshot(&q.config, |snap| {
            let query = match query::parse(&q.words) {
                Ok(query) => query,
                Err(e) => return usage(&e),
            };
            match query::evaluate(snap, &query) {
                Ok(ev) => {
                    print!("{}", explain(snap, &query, &ev));
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => usage(&e),
            }
        }),
    }
}

fn usage(msg: &str) -> anyhow::Result<ExitCode> {
    eprintln!("bindery: {msg}");
    Ok(ExitCode::FAILURE)
}

fn check(check: &CheckArgs) -> anyhow::Result<ExitCode> {
    let args = &check.config;
    let (tree, diags) = load(args)?;
    if check.migrate_report {
        print!("{}", migrate_report(&tree));
    } else {
        print!("{}", render_all(&diags, &tree.sources));
    }
    if check.verbose {
        for f in tree.found.iter().filter(|f| f.outcome == "inert (tuning)") {
            println!(
                "{}: note: `{}` has no effect in bindery: {}",
                tree.sources.location(f.span),
                f.name,
                f.why.unwrap_or("")
            );
        }
    }
    let errors = bindery_config::diag::error_count(&diags);
    if errors > 0 {
        println!("{errors} error{} found", if errors == 1 { "" } else { "s" });
        return Ok(ExitCode::FAILURE);
    }
    let snap = std::sync::Arc::new(Snapshot::compile(tree, 1));
    // What `run` checks before it opens anything, by the same function: scripts compile and
    // initialise, listener settings and TLS certificates resolve, a TCP console has a login,
    // `resolv_conf` parses.
    let generation = match bindery_server::check(snap.clone()) {
        Ok(g) => g,
        Err(e) => {
            println!("{}", e.to_string().trim_end());
            println!("configuration refused: `bindery run` would not start");
            return Ok(ExitCode::FAILURE);
        }
    };
    // Callouts the scripts define that bindery never runs: warnings, never silence.
    for w in generation.policy.warnings() {
        print!("{w}");
    }
    let scripts = generation.policy.scripts().len();
    println!(
        "configuration OK: {} files, {} bindings in {} binding groups, {} policy scripts",
        snap.tree.sources.files().count(),
        snap.bindings().count(),
        snap.groups().count(),
        scripts
    );
    Ok(ExitCode::SUCCESS)
}

/// `config check --migrate-report`: every option and module found, in reading order, then
/// the count of each outcome.
fn migrate_report(tree: &bindery_config::tree::ConfigTree) -> String {
    let mut out = String::new();
    let rows: Vec<(String, &bindery_config::tree::Found)> = tree
        .found
        .iter()
        .map(|f| (tree.sources.location(f.span), f))
        .collect();
    let at = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(5).max(5);
    let name = rows
        .iter()
        .map(|(_, f)| f.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "{:at$}  {:14}  {:6}  {:name$}  WHY",
        "WHERE", "OUTCOME", "WHAT", "NAME"
    );
    for (loc, f) in &rows {
        let _ = writeln!(
            out,
            "{loc:at$}  {:14}  {:6}  {:name$}  {}",
            f.outcome,
            f.what,
            f.name,
            f.why.unwrap_or("")
        );
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for (_, f) in &rows {
        match counts.iter_mut().find(|(o, _)| *o == f.outcome) {
            Some((_, n)) => *n += 1,
            None => counts.push((f.outcome, 1)),
        }
    }
    counts.sort_by_key(|(o, _)| {
        [
            "implemented",
            "inert",
            "inert (tuning)",
            "refused",
            "unknown",
            "error",
        ]
        .iter()
        .position(|w| w == o)
    });
    let summary: Vec<String> = counts.iter().map(|(o, n)| format!("{n} {o}")).collect();
    let _ = writeln!(
        out,
        "{} options and modules: {}",
        rows.len(),
        if summary.is_empty() {
            "none".to_string()
        } else {
            summary.join(", ")
        }
    );
    out
}

/// Loads and compiles, or prints the diagnostics and fails.
fn with_snapshot(
    args: &ConfigArgs,
    f: impl FnOnce(&Snapshot) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    match compiled(args)? {
        Some(snap) => f(&snap),
        None => Ok(ExitCode::FAILURE),
    }
}

fn explain(snap: &Snapshot, query: &query::Query, ev: &Evaluation) -> String {
    let tree = &snap.tree;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} for {}:",
        ev.option.def().name,
        if query.steps.is_empty() {
            "global".into()
        } else {
            query.scope_path()
        }
    );
    let winner = ev.steps.iter().position(|s| s.setting.is_some());
    for (i, step) in ev.steps.iter().enumerate() {
        let mark = if Some(i) == winner { "=>" } else { "  " };
        let what = match (step.scope, &step.setting) {
            (None, _) => "no stanza".to_string(),
            (Some(id), None) => format!("{}: not set", tree.label(id)),
            (Some(id), Some(s)) => format!(
                "{}: {} ({})",
                tree.label(id),
                s.value,
                tree.sources.location(s.span)
            ),
        };
        let _ = writeln!(out, "{mark} {:>2}. {:<22} {}", i + 1, step.level, what);
    }
    let default = ev.option.def().default.unwrap_or("unset");
    let mark = if winner.is_none() { "=>" } else { "  " };
    let _ = writeln!(out, "{mark}     {:<22} {default}", "default");
    let won = winner.and_then(|i| ev.steps[i].setting.as_ref());
    let from = match (ev.origin, won) {
        (Some(Origin::Scope(id)), Some(s)) => {
            format!(
                "from {} at {}",
                tree.label(id),
                tree.sources.location(s.span)
            )
        }
        _ => "the built-in default".into(),
    };
    let _ = writeln!(out, "{}   ({from})", query::eval_line(query, ev));
    out
}
