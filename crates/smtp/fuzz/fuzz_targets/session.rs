//! Any bytes, cut into reads at any points: the session must not panic, every reply line must
//! be well formed, and a kept body never exceeds the size limit or contains a bare CR or LF
//! or a NUL. Every policy check is on and answered alternately yes and no. The second byte
//! picks whether (and past how many bytes) the body is taken out as it arrives, as the server
//! does with large messages: what was taken and what is left make the same checked body.
#![no_main]

use std::sync::Arc;

use bindery_smtp::relay::DomainSet;
use bindery_smtp::session::{Check, Checks};
use bindery_smtp::{Reply, Session, SessionConfig, Step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cfg = SessionConfig {
        hostname: "mx.fuzz".into(),
        max_message_size: 4096,
        max_recipients: 5,
        relay_domains: DomainSet::new(["ok.example", "*.glob.example"]),
        starttls: true,
        checks: Checks {
            connect: true,
            ehlo: true,
            mail: true,
            rcpt: true,
        },
        ..SessionConfig::default()
    };
    let mut checks = 0u32;
    let mut s = Session::new(Arc::new(cfg), "192.0.2.1".parse().unwrap());
    // The first byte picks the read size, so the fuzzer explores chunking too; the second
    // whether to take the body out as it arrives, and past how many bytes.
    let (size, spill, rest) = match data {
        [a, b, rest @ ..] => (
            usize::from(*a).max(1),
            (b % 2 == 1).then_some(usize::from(*b / 2).max(1)),
            rest,
        ),
        _ => return,
    };
    let mut out = Vec::new();
    let mut taken: (u64, Vec<u8>) = (0, Vec::new());
    'outer: for chunk in rest.chunks(size) {
        s.input(chunk);
        loop {
            let step = s.step();
            out.extend_from_slice(s.output());
            s.clear_output();
            match step {
                Step::NeedInput => {
                    if let Some(at) = spill {
                        if taken.0 != s.data_serial() {
                            taken = (s.data_serial(), Vec::new());
                        }
                        if let Some(b) = s.take_data(at) {
                            assert!(b.len() >= at);
                            taken.1.extend(b);
                        }
                    }
                    break;
                }
                Step::Close => break 'outer,
                Step::StartTls => s.tls_started(),
                Step::Check(c) => {
                    checks += 1;
                    let refuse = checks.is_multiple_of(2) && c != Check::Connect;
                    s.verdict(refuse.then(|| Reply::new(550, "5.7.1", "no")));
                }
                Step::Message(t) => {
                    let mut body = if taken.0 == s.data_serial() {
                        std::mem::take(&mut taken.1)
                    } else {
                        Vec::new()
                    };
                    body.extend_from_slice(&t.body);
                    assert!(body.len() <= 4096);
                    assert!(!t.recipients.is_empty() && t.recipients.len() <= 5);
                    assert!(!body.contains(&0), "NUL kept");
                    let mut prev = 0u8;
                    for (i, &b) in body.iter().enumerate() {
                        if b == b'\n' {
                            assert_eq!(prev, b'\r', "bare LF kept");
                        }
                        if prev == b'\r' {
                            assert_eq!(b, b'\n', "bare CR kept");
                        }
                        prev = b;
                        let _ = i;
                    }
                    assert_ne!(prev, b'\r');
                    s.message_done(Reply::new(250, "2.0.0", "OK"));
                    out.extend_from_slice(s.output());
                    s.clear_output();
                }
            }
        }
    }
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        assert!(line.len() >= 5 && line.ends_with(b"\r"), "{line:?}");
        assert!(line[..3].iter().all(u8::is_ascii_digit));
        assert!(line[3] == b' ' || line[3] == b'-');
    }
});
