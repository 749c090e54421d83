//! Every console command's output, against a daemon with fixed figures.
//!
//! Each `golden/NAME.txt` is a transcript: `> COMMAND` lines, each followed by the output
//! the command must print (`error: ...` when it fails). The test runs the commands in order
//! on a fresh fake daemon and compares the whole transcript. Run with `BINDERY_BLESS=1` to
//! rewrite the files from what the commands print now.

use std::sync::{Arc, Mutex};

use bindery_config::{ConfigTree, Snapshot};
use bindery_control::daemon::{CalloutStats, Daemon, Install, RouteLine, SpoolHealth};
use bindery_delivery::engine::console::{MessageView, PartView, QueueView, Select};
use bindery_delivery::stats::Stats;
use std::sync::atomic::Ordering;

const CONFIG: &str = r#"
Permastore_Interval = 60
Local_Changes_File = "local_changes.conf"
binding "default" { EHLO_Hostname = "mta.example" }
binding_group "g" {
  binding "b1" { Bind_Address = 127.0.0.2 }
  binding "b2" { Bind_Address = 127.0.0.3  Suspend_Delivery = true }
}
domain "hotmail.com" { Max_Outbound_Connections = 20 }
ESMTP_Listener { Listen ":25" { } }
Control_Listener { Listen "/tmp/2025" { } }
"#;

struct Fake {
    snap: Mutex<Arc<Snapshot>>,
    /// What `config reload` reads.
    files: Mutex<String>,
    /// The files before `#empty`, for `#restore`.
    kept: Mutex<String>,
    stats: Stats,
    signing: bindery_control::signing::SigningStats,
    injections: bindery_control::injections::Injections,
    queues: Vec<QueueView>,
    parts: Vec<PartView>,
    changes: Mutex<Vec<String>>,
    /// Files `config writeback` wrote, by path.
    written: Mutex<std::collections::BTreeMap<std::path::PathBuf, String>>,
}

fn compile(text: &str, generation: u64) -> Result<Snapshot, String> {
    let s = bindery_config::snapshot_from_str("bindery.conf", text)?;
    Ok(Snapshot::compile((*s.tree).clone(), generation))
}

fn queue(binding: &str, domain: &str, a: usize, d: usize, c: u32, sent: u64) -> QueueView {
    QueueView {
        binding: binding.into(),
        domain: domain.into(),
        active: a,
        delayed: d,
        connections: c,
        inflight: c,
        target: c.max(1),
        idle: 0,
        waiting_for: None,
        unreachable: None,
        delivered: sent,
        failed: 1,
        transient: 2,
    }
}

fn part(id: &str, binding: &str, domain: &str, due: Option<u64>) -> PartView {
    PartView {
        id: id.into(),
        binding: binding.into(),
        domain: domain.into(),
        due,
        received: 1_700_000_000,
        sender: "news@shop.example".into(),
        recipients: vec![format!("user@{domain}")],
        attempts: u32::from(due.is_some()),
    }
}

impl Fake {
    fn new() -> Fake {
        let stats = Stats::new(1000);
        for (name, rx, dl, fl) in [("default", 12, 10, 1), ("b1", 300, 290, 4), ("b2", 7, 0, 0)] {
            let slot = stats.slot(name);
            stats.count(slot, |t| {
                t.received.fetch_add(rx, Ordering::Relaxed);
                t.delivered.fetch_add(dl, Ordering::Relaxed);
                t.failed.fetch_add(fl, Ordering::Relaxed);
            });
        }
        // Rates: b1 delivered 120 in the last minute.
        stats.sample(1530);
        let b1 = stats.slot("b1");
        stats.count(b1, |t| {
            t.delivered.fetch_add(120, Ordering::Relaxed);
            t.received.fetch_add(60, Ordering::Relaxed);
        });
        stats.sample(1590);
        stats.reject(550);
        stats.adaptive.count("b1", "suspend");
        stats.adaptive.count("b1", "warmup_cap");
        stats.adaptive.count("b1", "warmup_cap");
        Fake {
            snap: Mutex::new(Arc::new(compile(CONFIG, 1).expect("valid config"))),
            files: Mutex::new(CONFIG.to_string()),
            kept: Mutex::new(String::new()),
            stats,
            signing: {
                use bindery_control::signing::{Mode, Record, SigningStats};
                let s = SigningStats::default();
                let ms = |n| std::time::Duration::from_micros(n);
                let rec = |d, signed, failed| Record {
                    domain: Some(d),
                    signed,
                    failed,
                };
                s.record(Mode::All, "b1", ms(300), &[rec("example.com", 1, 0)]);
                s.record(Mode::All, "b1", ms(420), &[rec("example.com", 2, 0)]);
                s.record(Mode::All, "b2", ms(40), &[rec("other.example", 0, 1)]);
                s
            },
            injections: {
                use bindery_control::injections::{Injections, Via};
                let i = Injections::default();
                i.login(Via::Smtp, "alice", true);
                i.login(Via::Smtp, "alice", false);
                i.message(Via::Smtp, "alice", 2, 0);
                i.login(Via::Api, "platform", true);
                i.message(Via::Api, "platform", 100, 3);
                i
            },
            queues: vec![
                queue("default", "yahoo.com", 11, 0, 1, 40),
                QueueView {
                    // At its Global::Domain cap: its active parts wait for a place.
                    waiting_for: Some("domain \"earthlink.com\"".into()),
                    target: 64,
                    ..queue("b1", "earthlink.com", 315, 192, 60, 1957)
                },
                queue("b1", "hotmail.com", 0, 5, 0, 20),
                QueueView {
                    // Every connect fails: its active parts wait for an address to come back.
                    unreachable: Some("240s: 421 4.3.2 try later".into()),
                    ..queue("b2", "earthlink.com", 0, 3, 0, 0)
                },
            ],
            parts: vec![
                part("0000000A00000001", "default", "yahoo.com", None),
                part(
                    "0000000A00000002",
                    "default",
                    "yahoo.com",
                    Some(1_700_000_600),
                ),
                part("0000000A00000003", "b1", "hotmail.com", Some(1_700_000_900)),
            ],
            changes: Mutex::new(Vec::new()),
            written: Mutex::default(),
        }
    }

    fn matching(&self, sel: &Select<'_>) -> Vec<&PartView> {
        self.parts
            .iter()
            .filter(|p| sel.binding.is_none_or(|b| p.binding == b))
            .filter(|p| sel.domain.is_none_or(|d| p.domain.eq_ignore_ascii_case(d)))
            .filter(|p| sel.id.is_none_or(|i| p.id == i))
            .collect()
    }
}

impl Daemon for Fake {
    fn now(&self) -> u64 {
        1590
    }
    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snap.lock().unwrap())
    }
    fn stats(&self) -> &Stats {
        &self.stats
    }
    fn signing(&self) -> &bindery_control::signing::SigningStats {
        &self.signing
    }
    fn injections(&self) -> &bindery_control::injections::Injections {
        &self.injections
    }
    fn queues(&self) -> Vec<QueueView> {
        self.queues.clone()
    }
    fn parts(&self, sel: Select<'_>, limit: usize, offset: usize) -> Vec<PartView> {
        self.matching(&sel)
            .into_iter()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect()
    }
    fn message(&self, id: &str) -> Option<MessageView> {
        let p = self.parts.iter().find(|p| p.id == id)?;
        Some(MessageView {
            id: p.id.clone(),
            sender: p.sender.clone(),
            received: p.received,
            peer: "192.0.2.7".into(),
            binding_group: "g".into(),
            binding: p.binding.clone(),
            attempts: p.attempts,
            next_attempt: p.due.unwrap_or(p.received),
            size: 2048,
            recipients: vec![
                (p.recipients[0].clone(), "pending"),
                ("done@other.example".into(), "delivered"),
            ],
            parts: vec![p.clone()],
        })
    }
    fn inbound_sessions(&self) -> u64 {
        3
    }
    fn spool_health(&self) -> SpoolHealth {
        SpoolHealth {
            healthy: true,
            stored: 379,
            remove_failures: 0,
        }
    }
    fn callouts(&self) -> CalloutStats {
        vec![("validate_set_binding", 331, 2)]
    }
    fn routes(&self, domain: &str) -> Vec<RouteLine> {
        if domain == "hotmail.com" {
            vec![RouteLine {
                preference: 5,
                host: "mx1.hotmail.com".into(),
                ttl: 1902,
                addresses: vec!["65.54.188.72".into(), "65.54.188.94".into()],
            }]
        } else {
            Vec::new()
        }
    }
    async fn fail(&self, sel: Select<'_>, _reply: &str, _quiet: bool) -> usize {
        self.matching(&sel).len()
    }
    fn flush(&self, sel: Select<'_>) -> usize {
        self.matching(&sel)
            .iter()
            .filter(|p| p.due.is_some())
            .count()
    }
    async fn rebind(&self, sel: Select<'_>) -> usize {
        self.matching(&sel).len()
    }
    fn install(&self, snapshot: Snapshot, _: Install) -> Result<Vec<String>, String> {
        let mut notes = Vec::new();
        let old = self.snapshot();
        for opt in bindery_config::change::restart_only(&old.tree, &snapshot.tree) {
            notes.push(format!(
                "{} changed; it takes effect after a restart",
                opt.def().name
            ));
        }
        *self.snap.lock().unwrap() = Arc::new(snapshot);
        Ok(notes)
    }
    fn reread(&self) -> Result<ConfigTree, String> {
        let mut tree = self.files_alone()?;
        let path = bindery_config::local_changes_path(&tree);
        if let Some(text) = self.written.lock().unwrap().get(&path) {
            let diags = tree.apply(&path.display().to_string(), text);
            if diags.iter().any(|d| d.is_error()) {
                return Err(bindery_config::diag::render_all(&diags, &tree.sources));
            }
        }
        Ok(tree)
    }
    fn files_alone(&self) -> Result<ConfigTree, String> {
        let text = self.files.lock().unwrap().clone();
        compile(&text, 0).map(|s| (*s.tree).clone())
    }
    fn write_file(&self, path: &std::path::Path, text: &str) -> Result<(), String> {
        if path.starts_with("/proc") {
            return Err("Permission denied".into());
        }
        self.written
            .lock()
            .unwrap()
            .insert(path.to_path_buf(), text.to_string());
        Ok(())
    }
    fn with_changes<R>(&self, f: impl FnOnce(&mut Vec<String>) -> R) -> R {
        f(&mut self.changes.lock().unwrap())
    }
    fn reopen_logs(&self) -> Vec<std::path::PathBuf> {
        vec!["/var/log/ecelerity/mainlog.ec".into()]
    }
}

fn run_transcript(path: &std::path::Path) {
    let text = std::fs::read_to_string(path).expect("golden file");
    let fake = Fake::new();
    let mut out = String::new();
    for line in text.lines() {
        if let Some(cmd) = line.strip_prefix("> ") {
            if let Some(edit) = cmd.strip_prefix("#files ") {
                // A directive, not a command: the configuration files change on disk.
                let (from, to) = edit.split_once(" => ").expect("#files FROM => TO");
                let mut files = fake.files.lock().unwrap();
                *files = files.replace(from, &to.replace("\\n", "\n"));
                out.push_str(&format!("> {cmd}\n"));
                continue;
            }
            if cmd == "#empty" {
                // A directive: the main file is truncated to nothing (kept for `#restore`).
                let mut files = fake.files.lock().unwrap();
                *fake.kept.lock().unwrap() = std::mem::take(&mut *files);
                out.push_str(&format!("> {cmd}\n"));
                continue;
            }
            if cmd == "#restore" {
                *fake.files.lock().unwrap() = std::mem::take(&mut *fake.kept.lock().unwrap());
                out.push_str(&format!("> {cmd}\n"));
                continue;
            }
            if let Some(file) = cmd.strip_prefix("#cat ") {
                // A directive: the file a writeback wrote.
                out.push_str(&format!("> {cmd}\n"));
                let written = fake.written.lock().unwrap();
                out.push_str(
                    written
                        .get(std::path::Path::new(file))
                        .map_or("(none)\n", String::as_str),
                );
                continue;
            }
            let mut words = bindery_control::words::split(cmd);
            let json = words.first().is_some_and(|w| w == "json");
            if json {
                words.remove(0);
            }
            let o = tokio_like_block_on(bindery_control::run(&fake, &words));
            out.push_str(&format!("> {cmd}\n"));
            match (o.ok, json) {
                (true, false) => out.push_str(&o.display()),
                (true, true) => {
                    out.push_str(&serde_json::to_string_pretty(&o.json).unwrap());
                    out.push('\n');
                }
                (false, _) => {
                    for l in o.text.trim_end().lines() {
                        out.push_str(&format!("error: {l}\n"));
                    }
                }
            }
        }
    }
    if std::env::var_os("BINDERY_BLESS").is_some() {
        std::fs::write(path, &out).expect("bless");
        return;
    }
    assert_eq!(
        text,
        out,
        "{} differs (BINDERY_BLESS=1 to re-bless)",
        path.display()
    );
}

/// The commands' futures never wait on anything in the fake: poll them once.
fn tokio_like_block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[test]
fn every_command_prints_its_golden_output() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("golden folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "golden files missing");
    for f in files {
        run_transcript(&f);
    }
}

/// The metrics text for the same daemon: every family present, values as the figures say.
#[test]
fn metrics_carry_the_figures() {
    let text = bindery_control::metrics::render(&Fake::new());
    for line in [
        "bindery_binding_delivered_total{binding=\"b1\",binding_group=\"g\"} 410",
        "bindery_binding_queue_delayed{binding=\"b1\",binding_group=\"g\"} 197.0",
        "bindery_binding_group_queue_delayed{binding_group=\"g\"} 200.0",
        "bindery_domain_queue_active{domain=\"earthlink.com\"} 315.0",
        "bindery_domain_delivered_total{domain=\"earthlink.com\"} 1957",
        "bindery_smtp_replies_total{direction=\"inbound\",class=\"5xx\"} 1",
        "bindery_policy_errors_total{callout=\"validate_set_binding\"} 2",
        "bindery_spool_healthy 1.0",
        "bindery_uptime_seconds 590.0",
        "bindery_dkim_signatures_total{binding=\"b1\"} 3",
        "bindery_dkim_failures_total{binding=\"b2\"} 1",
        "bindery_dkim_signing_seconds_count 3",
        "bindery_dkim_signing_seconds_bucket{le=\"0.0005\"} 3",
        "bindery_dkim_signing_seconds_bucket{le=\"0.00025\"} 1",
        "bindery_adaptive_actions_total{binding=\"b1\",action=\"suspend\"} 1",
        "bindery_adaptive_actions_total{binding=\"b1\",action=\"warmup_cap\"} 2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in\n{text}"
        );
    }
}
