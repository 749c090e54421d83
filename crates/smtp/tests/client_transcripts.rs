//! Whole outbound dialogues, run in memory against the sans-IO client.
//!
//! Each `tests/client/*.txt` file is a golden dialogue. Lines the test keeps as written:
//! - `# ...` comments; `@ key = value` settings before the first server line (`ehlo`, `tls`,
//!   `protocol`: esmtp, smtp or lmtp; `xclient`: ifavailable or required; `auth`: a
//!   mechanism, then the user and the secret, and `plaintext` to log in without TLS; a
//!   message comes from 192.0.2.7, which said HELO client.example);
//! - `S: text` a server line, sent with CRLF; `S| text` the same but in one write with the next
//!   server line;
//! - `! send FROM TO...` starts a transaction (FROM `-` is the null sender) with a small body
//!   that needs dot-stuffing; `! quit`; `! tls` (the TLS handshake finished); `! drop` (the
//!   connection dropped or timed out).
//!
//! Lines the test writes: `C: ` client output, `E: ` an event (`ready`, `starttls`,
//! `done ...` with each recipient's deciding reply, `failed PHASE REPLY`, `closed`), `P: ` the
//! phase after each server write (which timeout the caller would arm). `BINDERY_BLESS=1`
//! rewrites the files.

mod common;

use std::fmt::Write as _;
use std::sync::Arc;

use bindery_smtp::client::{
    Client, ClientConfig, ClientStep, Origin, OutRecipient, Outgoing, Protocol, Response, TlsWish,
};
use common::unescape;

const BODY: &[u8] = b"Subject: t\r\n\r\n.leading dot\r\nend\r\n";

struct Runner {
    out: String,
    cfg: ClientConfig,
    client: Option<Client>,
    pending: Vec<u8>,
}

impl Runner {
    fn client(&mut self) -> &mut Client {
        if self.client.is_none() {
            self.client = Some(Client::new(self.cfg.clone()));
        }
        self.client.as_mut().unwrap()
    }

    fn flush(&mut self) {
        let c = self.client();
        let text = String::from_utf8_lossy(c.output()).into_owned();
        c.clear_output();
        for line in text.split_terminator("\r\n") {
            let _ = writeln!(self.out, "C: {line}");
        }
    }

    fn drive(&mut self) {
        loop {
            let step = self.client().step();
            self.flush();
            match step {
                ClientStep::NeedInput => break,
                ClientStep::Ready => self.out.push_str("E: ready\n"),
                ClientStep::StartTls => self.out.push_str("E: starttls\n"),
                ClientStep::Closed => self.out.push_str("E: closed\n"),
                ClientStep::Failed(f) => {
                    let _ = writeln!(self.out, "E: failed {:?} {}", f.phase, f.response);
                }
                ClientStep::Done(o) => {
                    let each: Vec<String> = (0..o.rcpts.len())
                        .map(|i| format!("[{}]", o.for_recipient(i)))
                        .collect();
                    let _ = writeln!(self.out, "E: done {}", each.join(" "));
                }
            }
        }
        let phase = self.client().phase();
        let _ = writeln!(self.out, "P: {phase:?}");
    }

    fn action(&mut self, words: &[&str]) {
        match words {
            ["send", from, to @ ..] => {
                let msg = Outgoing {
                    sender: if *from == "-" {
                        String::new()
                    } else {
                        from.to_string()
                    },
                    recipients: to
                        .iter()
                        .map(|a| OutRecipient {
                            address: a.to_string(),
                            notify: None,
                            orcpt: None,
                        })
                        .collect(),
                    body: Arc::new(BODY.to_vec()),
                    ret: None,
                    envid: None,
                    smtputf8: false,
                    announce_8bit: false,
                    origin: Some(Origin {
                        addr: "192.0.2.7".parse().unwrap(),
                        helo: "client.example".into(),
                    }),
                };
                self.client().send(msg);
            }
            ["quit"] => self.client().quit(),
            ["tls"] => self.client().tls_started(),
            ["drop"] => {
                let cut = self
                    .client()
                    .abort(Response::local(451, "4.4.2 connection dropped"));
                if let Some(o) = cut {
                    let each: Vec<String> = (0..o.rcpts.len())
                        .map(|i| format!("[{}]", o.for_recipient(i)))
                        .collect();
                    let _ = writeln!(self.out, "E: cut {}", each.join(" "));
                }
            }
            other => panic!("unknown action {other:?}"),
        }
        self.drive();
    }
}

fn run(text: &str) -> String {
    let mut r = Runner {
        out: String::new(),
        cfg: ClientConfig {
            ehlo: "out.test".into(),
            tls: TlsWish::No,
            protocol: Protocol::Esmtp,
            xclient: TlsWish::No,
            transform_8bit: bindery_smtp::client::Transform8Bit::No,
            auth: None,
        },
        client: None,
        pending: Vec::new(),
    };
    for line in text.lines() {
        let keep = line.starts_with('#')
            || line.is_empty()
            || line.starts_with("@ ")
            || line.starts_with("S")
            || line.starts_with("! ");
        if keep {
            r.out.push_str(line);
            r.out.push('\n');
        }
        if let Some(rest) = line.strip_prefix("@ ") {
            let (k, v) = rest.split_once('=').expect("@ key = value");
            match (k.trim(), v.trim()) {
                ("ehlo", v) => r.cfg.ehlo = v.into(),
                ("tls", "no") => r.cfg.tls = TlsWish::No,
                ("tls", "ifavailable") => r.cfg.tls = TlsWish::IfAvailable,
                ("tls", "required") => r.cfg.tls = TlsWish::Required,
                ("protocol", "esmtp") => r.cfg.protocol = Protocol::Esmtp,
                ("protocol", "smtp") => r.cfg.protocol = Protocol::Smtp,
                ("protocol", "lmtp") => r.cfg.protocol = Protocol::Lmtp,
                ("xclient", "ifavailable") => r.cfg.xclient = TlsWish::IfAvailable,
                ("xclient", "required") => r.cfg.xclient = TlsWish::Required,
                ("auth", v) => {
                    use bindery_smtp::client::{AuthMechanism, ClientAuth};
                    let w: Vec<&str> = v.split_whitespace().collect();
                    r.cfg.auth = Some(ClientAuth {
                        mechanism: match w[0] {
                            "PLAIN" => AuthMechanism::Plain,
                            "LOGIN" => AuthMechanism::Login,
                            "XOAUTH2" => AuthMechanism::Xoauth2,
                            m => panic!("unknown mechanism {m}"),
                        },
                        user: w[1].into(),
                        secret: w[2].into(),
                        plaintext: w.get(3) == Some(&"plaintext"),
                    });
                }
                other => panic!("unknown setting {other:?}"),
            }
        } else if let Some(rest) = line.strip_prefix("S: ") {
            r.pending.extend(unescape(rest));
            r.pending.extend_from_slice(b"\r\n");
            let input = std::mem::take(&mut r.pending);
            r.client().input(&input);
            r.drive();
        } else if let Some(rest) = line.strip_prefix("S| ") {
            r.pending.extend(unescape(rest));
            r.pending.extend_from_slice(b"\r\n");
        } else if let Some(rest) = line.strip_prefix("! ") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            r.action(&words);
        }
    }
    r.out
}

#[test]
fn client_transcripts() {
    common::check_goldens("tests/client", 6, run);
}
