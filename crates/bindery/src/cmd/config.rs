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
    Check(ConfigArgs),
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

fn check(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let (tree, diags) = load(args)?;
    print!("{}", render_all(&diags, &tree.sources));
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
