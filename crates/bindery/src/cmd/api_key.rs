//! `bindery api-key NAME [--permissions P]`: makes a random Transmissions API key and prints
//! it with the line to add to `API_Key_File` (which holds only the key's SHA-256, so the file
//! gives no key away). The key is shown once.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ApiKeyArgs {
    /// The key's name, as logs, metrics and `injection summary` show it.
    pub name: String,
    /// Comma-separated grants: `transmissions:modify` sends; `all` grants everything.
    #[arg(long, default_value = "transmissions:modify")]
    pub permissions: String,
}

pub fn run(args: &ApiKeyArgs) -> anyhow::Result<ExitCode> {
    if args.name.is_empty() || args.name.contains([':', '\n']) {
        anyhow::bail!("a key name has no ':' and is not empty");
    }
    // 20 random bytes in hex: SparkPost's keys are 40 hex digits too.
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let key = hex::encode(bytes);
    println!("key:  {key}");
    println!(
        "line: {}",
        bindery_transmissions::keys::line(&args.name, &key, &args.permissions)
    );
    Ok(ExitCode::SUCCESS)
}
