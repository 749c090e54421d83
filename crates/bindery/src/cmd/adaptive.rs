//! `bindery adaptive explain BINDING DOMAIN`: asks the running daemon, through its console,
//! why adaptive delivery holds that binding and domain (the console's `adaptive explain`).

use std::process::ExitCode;

use super::console::{Connect, ConsoleArgs, run as console};

#[derive(clap::Subcommand)]
pub enum AdaptiveCommand {
    /// Which rule fired on which replies, what it changed, and when it lifts.
    Explain(ExplainArgs),
}

#[derive(clap::Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub connect: Connect,
    pub binding: String,
    pub domain: String,
}

pub fn run(c: AdaptiveCommand) -> anyhow::Result<ExitCode> {
    match c {
        AdaptiveCommand::Explain(a) => console(&ConsoleArgs {
            connect: a.connect,
            command: vec!["adaptive".into(), "explain".into(), a.binding, a.domain],
        }),
    }
}
