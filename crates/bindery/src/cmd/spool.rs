//! `bindery spool list`: what is in the spool, read offline (the daemon need not run).

use std::process::ExitCode;

use bindery_config::diag::render_all;
use bindery_config::snapshot::Snapshot;
use bindery_server::settings::Globals;
use bindery_spool::DiskSpool;

use super::{ConfigArgs, load};

#[derive(clap::Subcommand)]
pub enum SpoolCommand {
    /// One line per message: id, binding, sender, recipients, size, age.
    List {
        #[command(flatten)]
        config: ConfigArgs,
        /// One JSON object per line instead of columns.
        #[arg(long)]
        json: bool,
    },
}

fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

pub fn run(cmd: SpoolCommand) -> anyhow::Result<ExitCode> {
    let SpoolCommand::List { config, json } = cmd;
    let (tree, diags) = load(&config)?;
    if diags.iter().any(|d| d.is_error()) {
        eprint!("{}", render_all(&diags, &tree.sources));
        return Ok(ExitCode::FAILURE);
    }
    let globals = Globals::from_snapshot(&Snapshot::compile(tree, 1));
    let found = DiskSpool::scan_readonly(&globals.spoolbase)?;
    let now = bindery_server::unix_now();
    for m in &found.messages {
        let rcpts: Vec<&str> = m.recipients.iter().map(|r| r.address.as_ref()).collect();
        let age_s = now.saturating_sub(m.received);
        if json {
            let v = serde_json::json!({
                "id": m.id, "binding_group": m.binding_group, "binding": m.binding,
                "sender": m.sender, "recipients": rcpts, "size": m.body_len,
                "age": age_s, "received": m.received, "attempts": m.attempts,
            });
            println!("{v}");
        } else {
            println!(
                "{} {} <{}> {} {} {}",
                m.id,
                m.binding,
                m.sender,
                rcpts
                    .iter()
                    .map(|r| format!("<{r}>"))
                    .collect::<Vec<_>>()
                    .join(","),
                m.body_len,
                age(age_s)
            );
        }
    }
    for q in &found.quarantined {
        eprintln!(
            "bindery: unusable spool file {}: {}",
            q.path.display(),
            q.reason
        );
    }
    if !json {
        eprintln!("{} message(s)", found.messages.len());
    }
    Ok(ExitCode::SUCCESS)
}
