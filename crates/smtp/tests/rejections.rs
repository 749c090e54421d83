//! The refusals a session keeps for Momentum's rejectlog (`record_rejections`): the phase it
//! was in, what refused (the protocol core or the policy), the HELO and the sender.

use std::sync::Arc;

use bindery_smtp::relay::DomainSet;
use bindery_smtp::session::Checks;
use bindery_smtp::{Reply, Session, SessionConfig, Step};

fn run(s: &mut Session, input: &[u8], verdicts: &mut Vec<Option<Reply>>) {
    s.input(input);
    loop {
        match s.step() {
            Step::NeedInput | Step::Close => break,
            Step::Check(_) => s.verdict(verdicts.remove(0)),
            Step::Message(_) => s.message_done(Reply::new(250, "2.0.0", "OK")),
            Step::StartTls | Step::Auth(_) => break,
        }
        s.clear_output();
    }
}

#[test]
fn refusals_carry_phase_module_and_context() {
    let cfg = SessionConfig {
        relay_domains: DomainSet::new(["ours.example"]),
        record_rejections: true,
        checks: Checks {
            rcpt: true,
            ..Checks::default()
        },
        ..SessionConfig::default()
    };
    let mut s = Session::new(Arc::new(cfg), "192.0.2.7".parse().expect("ip"));
    let mut verdicts = vec![None, Some(Reply::new(550, "5.7.1", "policy says no"))];
    run(
        &mut s,
        b"EHLO client.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@elsewhere.example>\r\nRCPT TO:<ok@ours.example>\r\nRCPT TO:<no@ours.example>\r\nBDAT\r\n",
        &mut verdicts,
    );
    let r = s.take_rejections();
    assert_eq!(r.len(), 3, "{r:?}");
    assert_eq!(
        (r[0].phase, r[0].code, r[0].module),
        ("awaiting rcptto", 550, "esmtp")
    );
    assert_eq!(r[0].hello, Some(("EHLO", "client.example".to_string())));
    assert_eq!(r[0].sender.as_deref(), Some("a@b.example"));
    assert_eq!((r[1].phase, r[1].module), ("awaiting data", "scriptlet"));
    assert!(r[1].text.contains("5.7.1 policy says no"), "{:?}", r[1]);
    assert_eq!((r[2].phase, r[2].module), ("awaiting data", "esmtp"));
    assert!(s.take_rejections().is_empty(), "drained");
}

#[test]
fn nothing_is_kept_unless_asked() {
    let mut s = Session::new(
        Arc::new(SessionConfig::default()),
        "192.0.2.7".parse().expect("ip"),
    );
    run(&mut s, b"MAIL FROM:<bad\r\n", &mut Vec::new());
    assert!(s.take_rejections().is_empty());
}

/// A message a script discarded (`msg:discard`): the client reads a 250, the rejectlog
/// keeps the script's reason, from `scriptlet`, in the body phase.
#[test]
fn a_discarded_message_is_a_success_and_a_rejection() {
    let cfg = SessionConfig {
        relay_domains: DomainSet::new(["ours.example"]),
        record_rejections: true,
        ..SessionConfig::default()
    };
    let mut s = Session::new(Arc::new(cfg), "192.0.2.7".parse().expect("ip"));
    s.input(b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@ours.example>\r\nDATA\r\nhi\r\n.\r\n");
    let mut replies = String::new();
    loop {
        match s.step() {
            Step::NeedInput | Step::Close | Step::StartTls | Step::Auth(_) => break,
            Step::Check(_) => s.verdict(None),
            Step::Message(_) => s.message_discarded(
                Reply::new(250, "2.0.0", "OK queued as 1"),
                &Reply::new(550, "5.7.0", "discarded by policy"),
                "scriptlet",
            ),
        }
        replies.push_str(&String::from_utf8_lossy(s.output()));
        s.clear_output();
    }
    assert!(
        replies.ends_with("250 2.0.0 OK queued as 1\r\n"),
        "{replies}"
    );
    let r = s.take_rejections();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        (r[0].phase, r[0].code, r[0].module),
        ("reading body", 550, "scriptlet")
    );
    assert!(r[0].text.contains("discarded by policy"), "{:?}", r[0]);
}

/// A policy's `vctx:disconnect` answers the command waiting for a verdict and closes the
/// session; `ac:esmtp_capability_add` puts a keyword in this session's EHLO reply once.
#[test]
fn a_policy_disconnects_and_adds_capabilities() {
    let cfg = SessionConfig {
        relay_domains: DomainSet::new(["ours.example"]),
        record_rejections: true,
        checks: Checks {
            mail: true,
            ..Checks::default()
        },
        ..SessionConfig::default()
    };
    let mut s = Session::new(Arc::new(cfg), "192.0.2.7".parse().expect("ip"));
    s.add_capability("XTEST ONE");
    s.add_capability("xtest one");
    s.add_capability("PIPELINING");
    s.input(b"EHLO c.example\r\nMAIL FROM:<disconnect@example.com>\r\nNOOP\r\n");
    let mut out = String::new();
    let mut closed = false;
    loop {
        match s.step() {
            Step::NeedInput | Step::StartTls | Step::Auth(_) => break,
            Step::Close => {
                closed = true;
                break;
            }
            Step::Check(_) => s.disconnect(Reply::new(550, "5.7.1", "go away"), "scriptlet"),
            Step::Message(_) => unreachable!("no DATA was sent"),
        }
        out.push_str(&String::from_utf8_lossy(s.output()));
        s.clear_output();
    }
    out.push_str(&String::from_utf8_lossy(s.output()));
    assert_eq!(out.matches("XTEST ONE").count(), 1, "{out}");
    assert_eq!(out.matches("PIPELINING").count(), 1, "{out}");
    assert!(out.ends_with("550 5.7.1 go away\r\n"), "{out}");
    assert!(
        !out.contains("NOOP") && !out.contains("\r\n250 2.0.0 Ok\r\n"),
        "{out}"
    );
    assert!(
        closed || matches!(s.step(), Step::Close),
        "closed after the reply"
    );
    let r = s.take_rejections();
    assert_eq!((r[0].code, r[0].module), (550, "scriptlet"));
}
