//! One module per subcommand.

pub mod adaptive;
pub mod api_key;
pub mod bounce;
pub mod config;
pub mod console;
pub mod policy;
pub mod run;
pub mod spool;

use std::path::{Path, PathBuf};

use std::io::IsTerminal;

use anyhow::Context;
use bindery_config::diag::render_all;
use bindery_config::{ConfigTree, Diagnostic, FsSource, LoadOptions, MemSource, Snapshot};

/// The configuration `bindery run` uses when no `-c` is given.
pub const DEFAULT_CONFIG: &str = include_str!("../default.conf");

/// Where the configuration comes from, shared by every command that reads one.
#[derive(clap::Args, Clone, Debug)]
pub struct ConfigArgs {
    /// Main configuration file (default: the embedded default configuration).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Node name for `conf/{NODENAME}` in the include search path (default: the host name).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
}

/// Environment variable that overrides the include search path (Momentum's
/// `EC_CONF_SEARCH_PATH`).
pub const SEARCH_PATH_ENV: &str = "BINDERY_CONF_SEARCH_PATH";

/// Loads the configuration the arguments name, `Local_Changes_File` last (Momentum reads it
/// implicitly after every other file). Diagnostics come back unrendered.
pub fn load(args: &ConfigArgs) -> anyhow::Result<(ConfigTree, Vec<Diagnostic>)> {
    load_files(args, true)
}

/// [`load`], with or without `Local_Changes_File` (`config writeback` compares the running
/// configuration with the files alone). The local changes file is read from disk even for
/// the embedded configuration.
pub fn load_files(
    args: &ConfigArgs,
    with_local_changes: bool,
) -> anyhow::Result<(ConfigTree, Vec<Diagnostic>)> {
    let (mut tree, mut diags) = load_main(args)?;
    if with_local_changes {
        diags.extend(bindery_config::load_local_changes(&mut tree, &FsSource));
    }
    Ok((tree, diags))
}

fn load_main(args: &ConfigArgs) -> anyhow::Result<(ConfigTree, Vec<Diagnostic>)> {
    let opts = LoadOptions {
        node: args
            .node
            .clone()
            .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned()),
        search_path: std::env::var(SEARCH_PATH_ENV).ok(),
    };
    match &args.config {
        Some(path) => bindery_config::load(&FsSource, path, &opts)
            .with_context(|| format!("cannot read {}", path.display())),
        None => {
            let path = Path::new("<embedded>/default.conf");
            let source = MemSource::new().with(path, DEFAULT_CONFIG);
            Ok(bindery_config::load(&source, path, &opts)?)
        }
    }
}

/// Loads and compiles the configuration, printing every diagnostic to stderr. `None` when
/// one of them is an error.
pub fn compiled(args: &ConfigArgs) -> anyhow::Result<Option<Snapshot>> {
    let (tree, diags) = load(args)?;
    eprint!("{}", render_all(&diags, &tree.sources));
    if diags.iter().any(|d| d.is_error()) {
        return Ok(None);
    }
    Ok(Some(Snapshot::compile(tree, 1)))
}

/// Logs to stderr, at `BINDERY_LOG` (default `info`); colour only on a terminal. Warnings
/// and errors also go to the paniclog of any `ec_logger` (see [`Paniclog`]).
pub fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BINDERY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .finish()
        .with(Paniclog)
        .init();
}

/// Momentum's paniclog takes the system events an operator must look at: every warning and
/// error, one line each (`TIME:LEVEL target: message key=value ...`).
struct Paniclog;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Paniclog {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let meta = event.metadata();
        if *meta.level() > tracing::Level::WARN {
            return;
        }
        let mut text = format!("{} {}:", meta.level(), meta.target());
        event.record(&mut Fields(&mut text));
        bindery_server::eclog::panic_event(bindery_server::unix_now(), &text);
    }
}

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        let _ = if field.name() == "message" {
            write!(self.0, " {value:?}")
        } else {
            write!(self.0, " {}={value:?}", field.name())
        };
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        use std::fmt::Write;
        let _ = if field.name() == "message" {
            write!(self.0, " {value}")
        } else {
            write!(self.0, " {}={value:?}", field.name())
        };
    }
}
