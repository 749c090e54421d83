//! `bindery run`: the daemon in the foreground.

use std::process::ExitCode;
use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};

use super::{ConfigArgs, compiled, init_logging};

pub fn run(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let Some(snap) = compiled(args)? else {
        eprintln!("bindery: configuration has errors; not starting");
        return Ok(ExitCode::FAILURE);
    };
    let snap = Arc::new(snap);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bindery")
        .build()?;
    let code = rt.block_on(async move {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let reader = args.clone();
        let reload: bindery_server::Reload = Box::new(move |local| reread(&reader, local));
        let running = match bindery_server::start(snap, Some(reload)).await {
            Ok(r) => r,
            // Rendered diagnostics go out as they are, their FILE:LINE:COL first.
            Err(bindery_server::ServerError::Config(text)) => {
                eprintln!("{}", text.trim_end());
                eprintln!("bindery: configuration refused; not starting");
                return Ok::<_, anyhow::Error>(ExitCode::FAILURE);
            }
            Err(e) => return Err(e.into()),
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => tracing::info!("SIGINT: stopping"),
        }
        running.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })?;
    Ok(code)
}

/// `config reload` (and, without the local changes, `config writeback`): the files again,
/// with every diagnostic rendered on error.
fn reread(args: &ConfigArgs, local: bool) -> Result<bindery_config::ConfigTree, String> {
    let (tree, diags) = super::load_files(args, local).map_err(|e| format!("{e:#}"))?;
    let errors: Vec<_> = diags.into_iter().filter(|d| d.is_error()).collect();
    if errors.is_empty() {
        Ok(tree)
    } else {
        Err(bindery_config::diag::render_all(&errors, &tree.sources))
    }
}
