//! `bindery policy test`: runs a configuration's callouts on one message, no daemon.
//!
//! The phases go in the daemon's order (connect, EHLO, MAIL, each RCPT, then data,
//! data_spool and set_binding) and each one's outcome is printed, so an operator can see
//! which binding a message would get and which code a script would answer.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use bindery_policy::{Callout, Code, Conn, Message, Policy, Verdict};

use super::{ConfigArgs, compiled, init_logging};

#[derive(clap::Subcommand)]
pub enum PolicyCommand {
    /// Run the callouts on MESSAGE and print the binding group, binding and every code set.
    Test(Box<TestArgs>),
}

#[derive(clap::Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The envelope sender (empty for the null sender).
    #[arg(long = "mail-from", value_name = "ADDRESS", default_value = "")]
    pub mail_from: String,
    /// An envelope recipient; repeat for more.
    #[arg(long = "rcpt", value_name = "ADDRESS", required = true)]
    pub rcpt: Vec<String>,
    /// The client's address.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub peer: IpAddr,
    /// The name the client gives in EHLO.
    #[arg(long, value_name = "NAME", default_value = "client.invalid")]
    pub ehlo: String,
    /// The listener name the callouts see.
    #[arg(long, value_name = "NAME", default_value = "policy-test")]
    pub listener: String,
    /// The listener's address (`msg:listener_addr`).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:25")]
    pub local: std::net::SocketAddr,
    /// The client's port (`msg:reception_peer`, `accept.remote_addr`).
    #[arg(long, value_name = "PORT", default_value_t = 40000)]
    pub peer_port: u16,
    /// After acceptance, run the delivery log callout (`core_log_delivery_v1`) as if the
    /// message was delivered with this reply.
    #[arg(long, value_name = "REPLY", conflicts_with_all = ["transient", "permanent"])]
    pub delivered: Option<String>,
    /// Likewise `core_log_transient_failure_v1` (and `core_pre_mailq_message_requeue`).
    #[arg(long, value_name = "REPLY", conflicts_with = "permanent")]
    pub transient: Option<String>,
    /// Likewise `core_log_permanent_failure_v1`.
    #[arg(long, value_name = "REPLY")]
    pub permanent: Option<String>,
    /// Run as at this time (seconds since 1970): the scripts' `os.time()` and `os.date()`
    /// give it, for a policy that depends on the time of day.
    #[arg(long, value_name = "EPOCH")]
    pub time: Option<i64>,
    /// The message: headers and body, as a .eml file.
    #[arg(value_name = "MESSAGE")]
    pub message: PathBuf,
}

/// What the scripts did to the connection, as lines: keywords added to the EHLO reply, a
/// tarpit, a disconnect, connection context keys set. `seen` holds what was printed.
fn conn_effects(conn: &Conn, seen: &mut Vec<String>) {
    let mut now = Vec::new();
    for c in &conn.capabilities {
        now.push(format!("capability + {c}"));
    }
    if let Some(t) = conn.tarpit {
        now.push(format!("tarpit: the reply waits {} s", t.as_secs_f64()));
    }
    if conn.disconnect {
        now.push("disconnect: the session closes after the reply".to_string());
    }
    let mut ctx: Vec<_> = conn
        .context
        .iter()
        .filter(|(k, _)| {
            !["peer_ip", "listener", "ehlo", "ehlo_domain", "ehlo_string"].contains(&k.as_str())
        })
        .collect();
    ctx.sort();
    for (k, v) in ctx {
        now.push(format!("connection context {k} = {v}"));
    }
    for line in now {
        if !seen.contains(&line) {
            println!("{line}");
            seen.push(line);
        }
    }
}

/// `--delivered`, `--transient`, `--permanent`: the log callouts run for `msg` with that
/// reply, and what they changed.
fn delivery_outcome(policy: &Policy, args: &TestArgs, msg: &mut Message) {
    let (callouts, reply): (&[Callout], &str) =
        match (&args.delivered, &args.transient, &args.permanent) {
            (Some(r), _, _) => (&[Callout::LogDelivery], r),
            (_, Some(r), _) => (&[Callout::LogTransient, Callout::PreRequeue], r),
            (_, _, Some(r)) => (&[Callout::LogPermanent], r),
            _ => return,
        };
    let (code, text) = reply.split_once(' ').unwrap_or((reply, ""));
    let note = Code {
        code: code.parse().unwrap_or(250),
        text: text.to_string(),
    };
    let domain = msg
        .recipients
        .first()
        .and_then(|r| r.rsplit_once('@'))
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default();
    let now = match args.time {
        Some(t) => t.max(0) as u64,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    for &c in callouts {
        let changed = policy.log_event(c, msg, &domain, now, &note);
        let what = if policy.has(c) {
            "ran"
        } else {
            "no script has this callout"
        };
        println!("{} ({} {}): {what}", c.name(), note.code, note.text);
        if let Some(k) = changed {
            println!(
                "{}: the scripts changed the reply to {} {}",
                c.name(),
                k.code,
                k.text
            );
        }
    }
}

pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Test(args) => test(&args),
    }
}

fn outcome(policy: &Policy, callout: Callout, code: &Option<Code>) -> String {
    match code {
        None if !policy.has(callout) => "continue (no script has this callout)".into(),
        None => "continue".into(),
        Some(c) => format!("{} {}", c.code, c.text),
    }
}

/// Reads a message file with CRLF line ends, as SMTP would have delivered it.
fn read_message(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    let mut prev = 0u8;
    for &b in &raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    Ok(out)
}

fn test(args: &TestArgs) -> anyhow::Result<ExitCode> {
    // Script errors are logged: show them on stderr with their location.
    init_logging();
    let Some(snap) = compiled(&args.config)? else {
        return Ok(ExitCode::FAILURE);
    };
    let snap = Arc::new(snap);
    // `msys.dnsLookup` asks the configuration's `Resolv_Conf` servers, as the daemon would.
    let dns = match bindery_server::policy_dns(&snap) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    // `msys.bounce` classifies with the configuration's overrides, as the daemon would.
    let bounces = match bindery_server::bounces::load(&snap) {
        Ok(c) => Arc::new(bindery_bounce::Live::new(c)),
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    // The simulated session is the only one; injected messages are shown, not spooled.
    let injected = Arc::new(bindery_policy::inject::MemInjector::default());
    let hosts = bindery_policy::Hosts {
        config: None,
        dns: Some(dns as Arc<dyn bindery_policy::dns::Dns>),
        sessions: Some(Arc::new(bindery_policy::inject::MemSessions(vec![(
            bindery_policy::inject::Service::Smtp,
            args.listener.clone(),
            args.peer,
        )]))),
        injector: Some(Arc::clone(&injected) as Arc<dyn bindery_policy::inject::Injector>),
        fixed_time: args.time,
        bounces: Some(bounces),
        adaptive: None,
    };
    let policy = match Policy::load_hosted(snap.clone(), hosts) {
        Ok(p) => p,
        Err(e) => {
            eprint!("{}", bindery_policy::render(&e, &snap));
            return Ok(ExitCode::FAILURE);
        }
    };
    for w in policy.warnings() {
        eprint!("{w}");
    }
    // The inbound_audit module's series, as the daemon keeps them, with this session's
    // connection counted.
    let audit = match bindery_server::audit::InboundAudit::plan(&snap, &policy.stats().audit_series)
    {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if let Some(a) = &audit {
        a.record(bindery_server::audit::Event::Connection, args.peer);
    }
    let body = read_message(&args.message)?;
    let refused = |phase: &str, code: &Code| {
        println!(
            "result: refused at {phase} with {} {}",
            code.code, code.text
        );
        Ok(ExitCode::FAILURE)
    };
    let mut conn = Conn::new(args.peer, &args.listener, &[]);
    conn.peer_port = args.peer_port;
    conn.local = Some(args.local);
    let mut seen = Vec::new();
    let code = policy.connect(&mut conn);
    println!(
        "connect {}: {}",
        args.peer,
        outcome(&policy, Callout::Connect, &code)
    );
    conn_effects(&conn, &mut seen);
    if let Some(c) = &code {
        return refused("connect", c);
    }
    let code = policy.ehlo(&mut conn, &args.ehlo);
    println!(
        "ehlo {}: {}",
        args.ehlo,
        outcome(&policy, Callout::Ehlo, &code)
    );
    conn_effects(&conn, &mut seen);
    if let Some(c) = &code {
        return refused("ehlo", c);
    }
    let mut msg = Message {
        sender: args.mail_from.clone(),
        ..Message::default()
    };
    let code = policy.mailfrom(&mut conn, &mut msg);
    println!(
        "mailfrom <{}>: {}",
        args.mail_from,
        outcome(&policy, Callout::MailFrom, &code)
    );
    conn_effects(&conn, &mut seen);
    if let Some(c) = &code {
        return refused("mailfrom", c);
    }
    for rcpt in &args.rcpt {
        let code = policy.rcptto(&mut conn, &mut msg, rcpt);
        println!(
            "rcptto <{rcpt}>: {}",
            outcome(&policy, Callout::RcptTo, &code)
        );
        conn_effects(&conn, &mut seen);
        if code.is_none() {
            msg.recipients.push(rcpt.clone());
        }
    }
    if msg.recipients.is_empty() {
        println!("result: refused, no recipient was accepted");
        return Ok(ExitCode::FAILURE);
    }
    if policy.has_rcptto_list() {
        let code = policy.rcptto_list(&mut conn, &mut msg);
        println!(
            "data (recipient list): {}",
            outcome(
                &policy,
                if policy.has(Callout::RcptToList) {
                    Callout::RcptToList
                } else {
                    Callout::RcptToListFinal
                },
                &code
            )
        );
        conn_effects(&conn, &mut seen);
        if let Some(c) = &code {
            return refused("data", c);
        }
    }
    msg.body = body.clone();
    let given = msg.recipients.clone();
    let verdict = policy.message(&mut conn, &mut msg);
    conn_effects(&conn, &mut seen);
    let errors = policy.errors();
    if errors > 0 {
        println!("script errors: {errors} (see the log above)");
    }
    let show_binding = |binding: Option<bindery_policy::Assigned>| {
        let how = if binding.is_some() {
            "assigned"
        } else {
            "no assignment: default"
        };
        let a = binding.unwrap_or_else(|| {
            bindery_policy::Assigned::of(&snap, bindery_config::snapshot::BindingId::DEFAULT)
        });
        println!("binding_group: {}", a.group);
        println!("binding: {} ({how})", a.binding);
    };
    let exit = match verdict {
        Verdict::Refuse(c) => refused("data", &c),
        Verdict::Discard(reason) => {
            // The client would be told it was accepted; nothing would be spooled.
            println!(
                "result: discarded ({} {}); the client gets 250",
                reason.code, reason.text
            );
            Ok(ExitCode::SUCCESS)
        }
        Verdict::Split(shares) => {
            // The recipients' own messages came out different: one message each share.
            let count = shares.len();
            for (n, share) in shares.into_iter().enumerate() {
                let rcpts: Vec<&str> = share
                    .recipients
                    .iter()
                    .filter_map(|&i| msg.recipients.get(i).map(String::as_str))
                    .collect();
                println!("message {}: recipients {}", n + 1, rcpts.join(", "));
                show_binding(share.binding);
                if let Some(d) = &share.routing_domain {
                    println!("routing_domain: {d}");
                }
                header_changes(&body, &share.body);
            }
            println!("result: accepted as {count} messages");
            Ok(ExitCode::SUCCESS)
        }
        Verdict::Accept { binding } => {
            show_binding(binding);
            if let Some(d) = &msg.routing_domain {
                println!("routing_domain: {d}");
            }
            if msg.recipients != given {
                println!("recipients: {}", msg.recipients.join(", "));
            }
            header_changes(&body, &msg.body);
            let mut ctx: Vec<_> = msg.context.iter().collect();
            ctx.sort();
            for (k, v) in ctx {
                println!("context {k} = {v}");
            }
            println!("result: accepted");
            delivery_outcome(&policy, args, &mut msg);
            Ok(ExitCode::SUCCESS)
        }
    };
    show_injected(&injected);
    // msys.counter's counters the scripts made or moved.
    for (name, value) in policy.stats().counters.list() {
        println!("counter {name} = {value}");
    }
    exit
}

/// The messages the scripts injected (`msg:inject`): the daemon would receive each.
fn show_injected(injected: &bindery_policy::inject::MemInjector) {
    let taken = injected.taken.lock().unwrap_or_else(|p| p.into_inner());
    for (n, m) in taken.iter().enumerate() {
        println!(
            "injected {}: <{}> to {}",
            n + 1,
            m.sender,
            m.recipients.join(", ")
        );
        let text = String::from_utf8_lossy(&m.body);
        for line in text
            .split("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .split("\r\n")
        {
            let name = line.split(':').next().unwrap_or_default();
            // Boundaries, dates and ids change from run to run.
            if ["Subject", "From", "To", "Content-Type"].contains(&name) {
                let stable = line.split("boundary=").next().unwrap_or(line).trim_end();
                println!("injected {} header {stable}", n + 1);
            }
        }
    }
}

/// The header fields a policy added or removed, as `header + Name: value` and
/// `header - Name: value` lines, in the order of the message.
fn header_changes(before: &[u8], after: &[u8]) {
    let fields = |m: &[u8]| -> Vec<String> {
        let text = String::from_utf8_lossy(m);
        let head = text
            .split("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .to_string();
        let mut out: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = out.last_mut() {
                    last.push(' ');
                    last.push_str(line.trim());
                }
            } else if !line.is_empty() {
                out.push(line.to_string());
            }
        }
        out
    };
    let (old, new) = (fields(before), fields(after));
    for f in old.iter().filter(|f| !new.contains(f)) {
        println!("header - {f}");
    }
    for f in new.iter().filter(|f| !old.contains(f)) {
        println!("header + {f}");
    }
    // The body's lines the scripts removed and added (MIME parts, text replaced).
    let body = |m: &[u8]| -> Vec<String> {
        let text = String::from_utf8_lossy(m);
        match text.split_once("\r\n\r\n") {
            Some((_, b)) => b.split("\r\n").map(str::to_string).collect(),
            None => Vec::new(),
        }
    };
    let (old, new) = (body(before), body(after));
    if old != new {
        for l in old.iter().filter(|l| !new.contains(l)) {
            println!("body - {l}");
        }
        for l in new.iter().filter(|l| !old.contains(l)) {
            // Made-up boundaries change from run to run.
            let stable = match l.find("=_bindery_") {
                Some(i) => format!("{}=_bindery_...", &l[..i]),
                None => l.clone(),
            };
            println!("body + {stable}");
        }
    }
}
