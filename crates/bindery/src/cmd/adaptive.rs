//! `bindery adaptive explain BINDING DOMAIN`: asks the running daemon, through its console,
//! why adaptive delivery holds that binding and domain (the console's `adaptive explain`).

use std::process::ExitCode;

use super::console::{ConsoleArgs, run as console};

#[derive(clap::Subcommand)]
pub enum AdaptiveCommand {
    /// Which rule fired on which replies, what it changed, and when it lifts.
    Explain(ExplainArgs),
}

#[derive(clap::Args)]
pub struct ExplainArgs {
    /// The console: a Unix socket path or HOST:PORT (as `bindery console -s`).
    #[arg(short = 's', long = "socket", value_name = "SOCKET|HOST:PORT")]
    pub socket: Option<String>,
    /// Print the answer as JSON.
    #[arg(long)]
    pub json: bool,
    /// The user to log in as on a TCP console.
    #[arg(long, default_value = "admin")]
    pub user: String,
    /// A file whose first line is the console password (else $BINDERY_CONSOLE_PASSWORD).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<std::path::PathBuf>,
    pub binding: String,
    pub domain: String,
}

pub fn run(c: AdaptiveCommand) -> anyhow::Result<ExitCode> {
    match c {
        AdaptiveCommand::Explain(a) => console(&ConsoleArgs {
            socket: a.socket,
            json: a.json,
            user: a.user,
            password_file: a.password_file,
            command: vec!["adaptive".into(), "explain".into(), a.binding, a.domain],
        }),
    }
}
