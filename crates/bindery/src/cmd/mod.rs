//! One module per subcommand.

pub mod config;
pub mod policy;
pub mod run;
pub mod spool;

use std::path::{Path, PathBuf};

use anyhow::Context;
use bindery_config::{ConfigTree, Diagnostic, FsSource, LoadOptions, MemSource};

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

/// Loads the configuration the arguments name. Diagnostics come back unrendered.
pub fn load(args: &ConfigArgs) -> anyhow::Result<(ConfigTree, Vec<Diagnostic>)> {
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
