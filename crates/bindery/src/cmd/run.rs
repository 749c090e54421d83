//! `bindery run`: the daemon in the foreground.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use bindery_config::diag::render_all;
use bindery_config::snapshot::Snapshot;
use tokio::signal::unix::{SignalKind, signal};

use super::{ConfigArgs, load};

pub fn run(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BINDERY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let (tree, diags) = load(args)?;
    eprint!("{}", render_all(&diags, &tree.sources));
    if diags.iter().any(|d| d.is_error()) {
        eprintln!("bindery: configuration has errors; not starting");
        return Ok(ExitCode::FAILURE);
    }
    let snap = Arc::new(Snapshot::compile(tree, 1));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bindery")
        .build()?;
    rt.block_on(async move {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let running = bindery_server::start(snap).await?;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => tracing::info!("SIGINT: stopping"),
        }
        running.shutdown().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
