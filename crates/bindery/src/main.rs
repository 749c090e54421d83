//! The `bindery` binary: command-line parsing and dispatch, nothing else.
//!
//! **Architecture Invariant:** no business logic lives here; every command is a thin layer
//! over a library crate, and this is the only place that uses `anyhow`.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc instead of glibc's malloc, as KumoMTA does: a delivery allocates and frees many
/// small buffers on other threads than the ones that made them (a part moves from the
/// reception task to a connection task), and glibc's arenas spent about 8 % of bindery's CPU
/// in `_int_malloc`, `unlink_chunk` and `malloc_consolidate` on the 20,000-domain load.
/// mimalloc did less well there and tripled the idle RSS (bench/README.md has the A/B).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "bindery",
    version,
    about = "A mail transfer agent that speaks Momentum's configuration model"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the MTA (without -c, on the embedded default configuration).
    Run(cmd::ConfigArgs),
    /// Check, query and print configuration files.
    #[command(subcommand)]
    Config(cmd::config::ConfigCommand),
    /// Run policy scripts without the daemon.
    #[command(subcommand)]
    Policy(cmd::policy::PolicyCommand),
    /// Look at the spool offline.
    #[command(subcommand)]
    Spool(cmd::spool::SpoolCommand),
    /// Talk to a running daemon: Momentum's console commands (interactive without COMMAND).
    Console(cmd::console::ConsoleArgs),
    /// Print a console password file line for USER; the password is read from stdin.
    Passwd(cmd::console::PasswdArgs),
    /// Make a Transmissions API key and print it with its `API_Key_File` line.
    ApiKey(cmd::api_key::ApiKeyArgs),
    /// Bounce classification: classify replies, list the classes.
    #[command(subcommand)]
    Bounce(cmd::bounce::BounceCommand),
    /// Adaptive delivery in the running daemon: why a binding and domain are held.
    #[command(subcommand)]
    Adaptive(cmd::adaptive::AdaptiveCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Command::Run(args) => cmd::run::run(&args),
        Command::Config(c) => cmd::config::run(c),
        Command::Spool(c) => cmd::spool::run(c),
        Command::Policy(c) => cmd::policy::run(c),
        Command::Console(a) => cmd::console::run(&a),
        Command::Passwd(a) => cmd::console::passwd(&a),
        Command::ApiKey(a) => cmd::api_key::run(&a),
        Command::Bounce(c) => cmd::bounce::run(c),
        Command::Adaptive(c) => cmd::adaptive::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bindery: {}", report(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line. Some of our errors already print their cause (so a
/// log line is whole on its own); a cause whose text is already there is not said twice.
fn report(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}
