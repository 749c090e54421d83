//! Whole SMTP dialogues, run in memory against the sans-IO session.
//!
//! Each `tests/transcripts/*.txt` file is a golden dialogue. Lines the test keeps as written:
//! - `# ...` comments;
//! - `@ key = value` session settings (before the first command) or `@ spool = ok|fail|none`
//!   (how the fake spool answers the next messages: 250, `451 4.3.0`, or `451` for
//!   `default_binding = none`);
//! - `C: text` a client line, sent with CRLF; `C~ text` sent without CRLF; `C| text` sent with
//!   CRLF but in the same write as the next client line (pipelining). `\r`, `\n`, `\0`, `\\`
//!   and `\xNN` are escapes.
//!
//! - `@ checks = connect ehlo mail rcpt` (any of them) turns policy checks on. The fake
//!   policy refuses a connection when `@ connect = refuse`, and a HELO name, sender or
//!   recipient containing `reject` (550 5.7.1) or `defer` (451 4.7.1).
//!
//! Lines the test writes: `S: ` server output, `P: ` a policy check, `M: ` a message handed to
//! the spool (envelope), `B: ` its body (escaped), `T: starttls`, `X: close`. Run with `BINDERY_BLESS=1` to rewrite
//! the files from what the session does now; review the diff.

mod common;

use std::fmt::Write as _;
use std::sync::Arc;

use common::{escape, unescape};

use bindery_smtp::relay::DomainSet;
use bindery_smtp::session::{AuthVerdict, Check, Login, Mechanism, Proof};
use bindery_smtp::{Reply, Session, SessionConfig, Step};

fn set(cfg: &mut SessionConfig, key: &str, value: &str) {
    match key {
        "hostname" => cfg.hostname = value.into(),
        "max_message_size" => cfg.max_message_size = value.parse().unwrap(),
        "max_recipients" => cfg.max_recipients = value.parse().unwrap(),
        "max_messages" => cfg.max_messages = value.parse().unwrap(),
        "max_session_recipients" => cfg.max_session_recipients = value.parse().unwrap(),
        "loose_paths" => cfg.loose_paths = value.parse().unwrap(),
        "max_errors" => cfg.max_errors = value.parse().unwrap(),
        "postmaster" => cfg.postmaster = Some(bindery_smtp::address::parse_mailbox(value).unwrap()),
        "spool_free" => {
            cfg.spool_free = Some(std::sync::Arc::new(std::sync::atomic::AtomicU64::new(
                value.parse().unwrap(),
            )))
        }
        "relay_client" => cfg.relay_client = value.parse().unwrap(),
        "starttls" => cfg.starttls = value.parse().unwrap(),
        "require_hello" => cfg.require_hello = value.parse().unwrap(),
        "allow_null_sender" => cfg.allow_null_sender = value.parse().unwrap(),
        "allow_ip_literal" => cfg.allow_ip_literal = value.parse().unwrap(),
        "relay_senders" => cfg.relay_senders = Some(DomainSet::new(value.split_whitespace())),
        "banner" => cfg.banner = Some(value.to_string()),
        "unqualified_sender_domain" => cfg.unqualified_sender_domain = Some(value.to_string()),
        "unqualified_recipient_domain" => {
            cfg.unqualified_recipient_domain = Some(value.to_string())
        }
        "relay_domains" => cfg.relay_domains = DomainSet::new(value.split_whitespace()),
        "auth" => {
            cfg.auth.mechanisms = value
                .split_whitespace()
                .map(|m| Mechanism::parse(m).expect("a mechanism"))
                .collect()
        }
        "auth_plaintext" => cfg.auth.plaintext = value.parse().unwrap(),
        "checks" => {
            for w in value.split_whitespace() {
                match w {
                    "connect" => cfg.checks.connect = true,
                    "ehlo" => cfg.checks.ehlo = true,
                    "mail" => cfg.checks.mail = true,
                    "rcpt" => cfg.checks.rcpt = true,
                    "data" => cfg.checks.data = true,
                    other => panic!("unknown check {other}"),
                }
            }
        }
        other => panic!("unknown setting {other}"),
    }
}

struct Runner {
    out: String,
    session: Option<Session>,
    cfg: SessionConfig,
    spool: String,
    connect: String,
    queued: u32,
    pending: Vec<u8>,
    closed: bool,
}

impl Runner {
    fn session(&mut self) -> &mut Session {
        if self.session.is_none() {
            let s = Session::new(Arc::new(self.cfg.clone()), "192.0.2.7".parse().unwrap());
            self.session = Some(s);
            self.flush();
            // Let a connect check run before the first client line.
            self.send(Vec::new(), false);
        }
        self.session.as_mut().unwrap()
    }

    fn flush(&mut self) {
        let s = self.session.as_mut().unwrap();
        let text = String::from_utf8_lossy(s.output()).into_owned();
        s.clear_output();
        for line in text.split_terminator("\r\n") {
            let _ = writeln!(self.out, "S: {line}");
        }
    }

    fn send(&mut self, bytes: Vec<u8>, batch: bool) {
        self.session();
        self.pending.extend(bytes);
        if batch || self.closed {
            return;
        }
        let input = std::mem::take(&mut self.pending);
        self.session().input(&input);
        loop {
            let step = self.session().step();
            self.flush();
            match step {
                Step::NeedInput => break,
                Step::Close => {
                    self.out.push_str("X: close\n");
                    self.closed = true;
                    break;
                }
                Step::StartTls => {
                    self.out.push_str("T: starttls\n");
                    self.session().tls_started();
                }
                Step::Check(c) => {
                    let (what, word) = match &c {
                        Check::Connect => ("connect".to_string(), self.connect.clone()),
                        Check::Hello(n) => (format!("hello {n}"), n.clone()),
                        Check::Mail(f) => {
                            let f = f.as_ref().map(|m| m.to_string()).unwrap_or_default();
                            (format!("mail <{f}>"), f)
                        }
                        Check::Rcpt(t) => (format!("rcpt <{t}>"), t.to_string()),
                        Check::Data(list) => {
                            let list: Vec<String> = list.iter().map(|m| m.to_string()).collect();
                            (format!("data <{}>", list.join(">, <")), list.join(" "))
                        }
                    };
                    let verdict = if word.contains("reject") || word == "refuse" {
                        Some(Reply::new(550, "5.7.1", "Refused by policy"))
                    } else if word.contains("defer") {
                        Some(Reply::new(451, "4.7.1", "Try again later"))
                    } else {
                        None
                    };
                    let _ = writeln!(
                        self.out,
                        "P: {what} -> {}",
                        verdict.as_ref().map_or("ok".into(), |r| r.code.to_string())
                    );
                    self.session().verdict(verdict);
                    self.flush();
                }
                Step::Auth(login) => {
                    let verdict = fake_store(&login);
                    let _ = writeln!(
                        self.out,
                        "A: {} user={} authzid={} -> {verdict:?}",
                        login.mechanism.name(),
                        login.user,
                        login.authzid
                    );
                    self.session().auth_done(verdict);
                    self.flush();
                }
                Step::Message(t) => {
                    let rcpts: Vec<String> = t
                        .recipients
                        .iter()
                        .map(|r| {
                            let mut s = format!("<{}>", r.mailbox);
                            if let Some(n) = r.params.notify {
                                let _ = write!(s, " notify={n:?}");
                            }
                            if let Some(o) = &r.params.orcpt {
                                let _ = write!(s, " orcpt={o}");
                            }
                            s
                        })
                        .collect();
                    let sender = t.sender.as_ref().map(|m| m.to_string()).unwrap_or_default();
                    let _ = writeln!(
                        self.out,
                        "M: from=<{sender}> params={:?} proto={} helo={} to={}",
                        t.params,
                        t.protocol,
                        t.helo,
                        rcpts.join(", ")
                    );
                    let _ = writeln!(self.out, "B: {}", escape(&t.body));
                    let reply = match self.spool.as_str() {
                        "ok" => {
                            self.queued += 1;
                            Reply::new(250, "2.0.0", format!("OK queued as {:04}", self.queued))
                        }
                        "fail" => Reply::new(451, "4.3.0", "Error: queue file write error"),
                        "none" => Reply::new(451, "4.4.4", "No binding assigned to message"),
                        other => panic!("unknown spool mode {other}"),
                    };
                    self.session().message_done(reply);
                    self.flush();
                }
            }
        }
    }
}

/// The password store of the transcripts: `alice` / `secret`; `locked` is locked out and
/// `broken` cannot be read. CRAM-MD5 is checked for real (HMAC-MD5 keyed with the password).
fn fake_store(login: &Login) -> AuthVerdict {
    use hmac::{Hmac, KeyInit, Mac};
    match login.user.as_str() {
        "locked" => return AuthVerdict::Locked,
        "broken" => return AuthVerdict::Unavailable,
        "alice" => {}
        _ => return AuthVerdict::Invalid,
    }
    let good = match &login.proof {
        Proof::Password(p) => p == "secret",
        Proof::CramMd5 { challenge, digest } => {
            let mut mac = Hmac::<md5::Md5>::new_from_slice(b"secret").unwrap();
            mac.update(challenge.as_bytes());
            hex::encode(mac.finalize().into_bytes()) == *digest
        }
    };
    if good {
        AuthVerdict::Accepted
    } else {
        AuthVerdict::Invalid
    }
}

fn run(text: &str) -> String {
    let mut r = Runner {
        out: String::new(),
        session: None,
        cfg: SessionConfig {
            hostname: "mx.test".into(),
            ..SessionConfig::default()
        },
        spool: "ok".into(),
        connect: "accept".into(),
        queued: 0,
        pending: Vec::new(),
        closed: false,
    };
    for line in text.lines() {
        if line.starts_with('C') {
            // The greeting comes before the first client line.
            r.session();
        }
        if let Some(rest) = line.strip_prefix("C: ") {
            r.out.push_str(line);
            r.out.push('\n');
            let mut b = unescape(rest);
            b.extend_from_slice(b"\r\n");
            r.send(b, false);
        } else if let Some(rest) = line.strip_prefix("C| ") {
            r.out.push_str(line);
            r.out.push('\n');
            let mut b = unescape(rest);
            b.extend_from_slice(b"\r\n");
            r.send(b, true);
        } else if let Some(rest) = line.strip_prefix("C~ ") {
            r.out.push_str(line);
            r.out.push('\n');
            r.send(unescape(rest), false);
        } else if let Some(rest) = line.strip_prefix("@ ") {
            r.out.push_str(line);
            r.out.push('\n');
            let (k, v) = rest.split_once('=').expect("@ key = value");
            let (k, v) = (k.trim(), v.trim());
            if k == "spool" {
                r.spool = v.to_string();
            } else if k == "connect" {
                r.connect = v.to_string();
            } else {
                assert!(
                    r.session.is_none(),
                    "session settings go before the first command"
                );
                set(&mut r.cfg, k, v);
            }
        } else if line.starts_with('#') || line.is_empty() {
            r.out.push_str(line);
            r.out.push('\n');
        }
        // S:, P:, M:, B:, T:, X: lines are output; they are regenerated.
    }
    if r.session.is_none() {
        r.session();
    }
    r.out
}

#[test]
fn transcripts() {
    common::check_goldens("tests/transcripts", 10, run);
}
