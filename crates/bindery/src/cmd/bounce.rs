//! `bindery bounce classify`: what class a reply gets, and which rule gave it, without the
//! daemon. With `-c`, the configuration's `bounce_classifier_override` files apply too.
//!
//! Replies come from the arguments or, without any, one per line on stdin (`--tsv`: lines
//! of `domain<TAB>reply`), so that a log's replies can be classified in bulk.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use bindery_bounce::{Classifier, Verdict};

#[derive(clap::Subcommand)]
pub enum BounceCommand {
    /// Print the class of each REPLY (or of each line on stdin).
    Classify(ClassifyArgs),
    /// Print Momentum's class table and any custom classes.
    Classes(ClassesArgs),
    /// Read out-of-band mail (a DSN, an ARF report, an auto-reply) as the daemon would:
    /// one line per file with what ties it to the original and its class.
    Read(ReadArgs),
}

#[derive(clap::Args)]
pub struct ReadArgs {
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// The FBL header's name (Momentum's fbl `Header_Name`).
    #[arg(long, value_name = "NAME", default_value = "X-MSFBL")]
    pub header_name: String,
    /// Messages, as .eml files.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<std::path::PathBuf>,
}

#[derive(clap::Args)]
pub struct ClassifyArgs {
    /// A configuration whose `bounce_classifier_override` applies (default: the shipped
    /// rules alone).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// The domain the reply came from (for domain overrides).
    #[arg(long, value_name = "DOMAIN", default_value = "")]
    pub domain: String,
    /// Classify as out-of-band mail (MDN overrides) instead of an SMTP reply.
    #[arg(long)]
    pub mdn: bool,
    /// Also print the rule that matched: file, line, source and pattern.
    #[arg(long)]
    pub explain: bool,
    /// Stdin lines are `domain<TAB>reply`; output lines are `code<TAB>symbol<TAB>rule`.
    #[arg(long)]
    pub tsv: bool,
    /// The replies; none: read stdin.
    #[arg(value_name = "REPLY")]
    pub replies: Vec<String>,
}

#[derive(clap::Args)]
pub struct ClassesArgs {
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
}

pub fn run(cmd: BounceCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BounceCommand::Classify(a) => classify(&a),
        BounceCommand::Classes(a) => classes(&a),
        BounceCommand::Read(a) => read(&a),
    }
}

fn classifier(config: &Option<std::path::PathBuf>) -> anyhow::Result<Classifier> {
    let Some(path) = config else {
        return Ok(Classifier::shipped());
    };
    let args = super::ConfigArgs {
        config: Some(path.clone()),
        node: None,
    };
    let snap =
        super::compiled(&args)?.ok_or_else(|| anyhow::anyhow!("the configuration has errors"))?;
    bindery_server::bounces::load(&snap).map_err(|e| anyhow::anyhow!("{e}"))
}

fn line(c: &Classifier, v: &Verdict<'_>, explain: bool) -> String {
    let d = c.describe(v.class);
    let mut s = format!("{} {} ({})", d.code, d.name, d.symbol);
    if explain {
        match v.rule {
            Some(r) => {
                s.push_str(&format!("\n  rule {}: {}", r.origin, r.pattern));
                if let Some(src) = &r.origin.source {
                    s.push_str(&format!("\n  source: {src}"));
                }
            }
            None => s.push_str("\n  no rule matched"),
        }
    }
    s
}

fn classify(a: &ClassifyArgs) -> anyhow::Result<ExitCode> {
    let c = classifier(&a.config)?;
    let verdict = |domain: &str, reply: &str| {
        if a.mdn {
            c.mdn(reply)
        } else {
            c.smtp(reply, domain)
        }
    };
    let mut out = std::io::stdout().lock();
    if !a.replies.is_empty() {
        for r in &a.replies {
            writeln!(out, "{}", line(&c, &verdict(&a.domain, r), a.explain))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    for l in std::io::stdin().lock().lines() {
        let l = l?;
        if a.tsv {
            let (domain, reply) = l.split_once('\t').unwrap_or(("", l.as_str()));
            let v = verdict(domain, reply);
            let d = c.describe(v.class);
            let rule = v.rule.map(|r| r.origin.to_string()).unwrap_or_default();
            writeln!(out, "{}\t{}\t{rule}", d.code, d.symbol)?;
        } else {
            writeln!(out, "{}", line(&c, &verdict(&a.domain, &l), a.explain))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn classes(a: &ClassesArgs) -> anyhow::Result<ExitCode> {
    let c = classifier(&a.config)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:>4}  {:<26} {:<13} name",
        "code", "symbol", "category"
    )?;
    let codes = bindery_bounce::CLASSES
        .iter()
        .map(|k| k.code)
        .chain(c.classes().custom().iter().map(|(k, _)| *k));
    let mut codes: Vec<u16> = codes.collect();
    codes.sort_unstable();
    for code in codes {
        let d = c.describe(code);
        writeln!(
            out,
            "{:>4}  {:<26} {:<13} {}",
            d.code,
            d.symbol,
            d.category.name(),
            d.name
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn read(a: &ReadArgs) -> anyhow::Result<ExitCode> {
    let c = classifier(&a.config)?;
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for f in &a.files {
        let raw = std::fs::read(f)?;
        let name = f.display();
        match bindery_bounce::report::parse(&raw, &a.header_name) {
            Err(e) => {
                failed = true;
                writeln!(out, "{name}\trefused\t{e}")?;
            }
            Ok(r) => {
                if let Some(e) = &r.malformed {
                    writeln!(out, "{name}\tmalformed\t{e}: read as an MDN")?;
                }
                let kind = match r.kind {
                    Some(bindery_bounce::report::Kind::Dsn) => "dsn",
                    Some(bindery_bounce::report::Kind::Arf) => "arf",
                    _ => "other",
                };
                let feedback = r
                    .feedback
                    .as_ref()
                    .map(|f| f.feedback_type.as_str())
                    .unwrap_or("");
                if r.recipients.is_empty() {
                    let class = c.mdn(&r.text).class;
                    writeln!(
                        out,
                        "{name}\t{kind}\t{feedback}\toriginal_id={}\tmessage_id={}\tclass={class}",
                        r.original_id, r.original_message_id
                    )?;
                }
                for rc in &r.recipients {
                    let class = r.recipient_class(&c, rc);
                    writeln!(
                        out,
                        "{name}\t{kind}\t{}\t{}\toriginal_id={}\tmessage_id={}\tclass={class}",
                        rc.address, rc.status, r.original_id, r.original_message_id
                    )?;
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
