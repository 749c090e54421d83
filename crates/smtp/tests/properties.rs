//! Properties of the session that must hold for any input.

use std::sync::Arc;

use bindery_smtp::relay::DomainSet;
use bindery_smtp::session::{AuthOffer, AuthVerdict, Check, Checks, Mechanism};
use bindery_smtp::{Reply, Session, SessionConfig, Step};
use proptest::prelude::*;

/// Runs the session over `chunks`, answering every message with 250 and every policy check
/// alternately yes and no. Returns everything the server wrote and the bodies it handed over.
fn drive(chunks: &[Vec<u8>]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let cfg = SessionConfig {
        hostname: "mx.test".into(),
        max_message_size: 200,
        max_recipients: 3,
        relay_domains: DomainSet::new(["ok.example"]),
        checks: Checks {
            connect: true,
            ehlo: true,
            mail: true,
            rcpt: true,
            data: true,
        },
        auth: AuthOffer {
            mechanisms: vec![Mechanism::Plain, Mechanism::Login, Mechanism::CramMd5],
            plaintext: true,
            ..AuthOffer::default()
        },
        ..SessionConfig::default()
    };
    let mut checks = 0u32;
    let mut s = Session::new(Arc::new(cfg), "192.0.2.1".parse().unwrap());
    let mut out = Vec::new();
    let mut bodies = Vec::new();
    'outer: for c in chunks {
        s.input(c);
        loop {
            let step = s.step();
            out.extend_from_slice(s.output());
            s.clear_output();
            match step {
                Step::NeedInput => break,
                Step::Close => break 'outer,
                Step::StartTls => s.tls_started(),
                Step::Check(c) => {
                    checks += 1;
                    let refuse = checks.is_multiple_of(2) && c != Check::Connect;
                    s.verdict(refuse.then(|| Reply::new(550, "5.7.1", "no")));
                }
                Step::Auth(_) => {
                    checks += 1;
                    s.auth_done(if checks.is_multiple_of(2) {
                        AuthVerdict::Invalid
                    } else {
                        AuthVerdict::Accepted
                    });
                }
                Step::Message(t) => {
                    bodies.push(t.body);
                    s.message_done(Reply::new(250, "2.0.0", "OK"));
                    out.extend_from_slice(s.output());
                    s.clear_output();
                }
            }
        }
    }
    (out, bodies)
}

fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"EHLO c.example\r\n".to_vec()),
        Just(b"HELO c.example\r\n".to_vec()),
        Just(b"MAIL FROM:<a@s.example>\r\n".to_vec()),
        Just(b"MAIL FROM:<> SIZE=300\r\n".to_vec()),
        Just(b"RCPT TO:<b@ok.example>\r\n".to_vec()),
        Just(b"RCPT TO:<b@no.example>\r\n".to_vec()),
        Just(b"DATA\r\n".to_vec()),
        Just(b"RSET\r\n".to_vec()),
        Just(b".\r\n".to_vec()),
        Just(b"\r\n.\r\n".to_vec()),
        Just(b"\n.\n".to_vec()),
        Just(b"..x\r\n".to_vec()),
        Just(b"QUIT\r\n".to_vec()),
        Just(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n".to_vec()),
        Just(b"AUTH LOGIN\r\n".to_vec()),
        Just(b"AUTH CRAM-MD5\r\n".to_vec()),
        Just(b"YWxpY2U=\r\n".to_vec()),
        Just(b"*\r\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(
            prop_oneof![Just(b'a'), Just(b'\r'), Just(b'\n'), Just(b'.')],
            0..20
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// How the bytes are split into reads never changes what the server says or keeps.
    #[test]
    fn chunking_does_not_matter(pieces in proptest::collection::vec(piece(), 0..30), cuts in proptest::collection::vec(any::<usize>(), 0..10)) {
        let all: Vec<u8> = pieces.concat();
        let whole = drive(std::slice::from_ref(&all));
        let mut points: Vec<usize> = cuts.iter().map(|c| if all.is_empty() { 0 } else { c % all.len() }).collect();
        points.sort();
        let mut chunks = Vec::new();
        let mut last = 0;
        for p in points {
            chunks.push(all[last..p].to_vec());
            last = p;
        }
        chunks.push(all[last..].to_vec());
        let split = drive(&chunks);
        prop_assert_eq!(whole, split);
    }

    /// Every reply line is well formed: three digits, a space or hyphen, and CRLF.
    #[test]
    fn replies_are_well_formed(pieces in proptest::collection::vec(piece(), 0..30)) {
        let (out, bodies) = drive(&[pieces.concat()]);
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            prop_assert!(line.len() >= 5 && line.ends_with(b"\r"));
            prop_assert!(line[..3].iter().all(u8::is_ascii_digit));
            prop_assert!(line[3] == b' ' || line[3] == b'-');
        }
        for b in bodies {
            prop_assert!(b.len() <= 200);
        }
    }
}

/// Drives the client over arbitrary server bytes, sending a message whenever it is ready.
/// Returns how many transactions it reported.
fn drive_client(chunks: &[Vec<u8>]) -> usize {
    use bindery_smtp::client::{Client, ClientConfig, ClientStep, OutRecipient, Outgoing, TlsWish};
    let mut c = Client::new(ClientConfig {
        ehlo: "out.test".into(),
        tls: TlsWish::IfAvailable,
        protocol: bindery_smtp::client::Protocol::Esmtp,
        xclient: TlsWish::IfAvailable,
        transform_8bit: bindery_smtp::client::Transform8Bit::Strict,
        auth: None,
    });
    let msg = Outgoing {
        sender: "a@b.test".into(),
        recipients: vec![
            OutRecipient {
                address: "c@d.test".into(),
                notify: None,
                orcpt: None,
            },
            OutRecipient {
                address: "e@d.test".into(),
                notify: None,
                orcpt: None,
            },
        ],
        body: Arc::new(b"x\r\n".to_vec()),
        ret: None,
        envid: None,
        smtputf8: false,
        announce_8bit: false,
        origin: None,
    };
    let (mut done, mut sent) = (0, 0);
    for chunk in chunks {
        c.input(chunk);
        loop {
            match c.step() {
                ClientStep::NeedInput => break,
                ClientStep::Ready => {
                    sent += 1;
                    c.send(msg.clone());
                }
                ClientStep::StartTls => c.tls_started(),
                ClientStep::Done(o) => {
                    assert_eq!(o.rcpts.len(), 2);
                    done += 1;
                    assert!(done <= sent, "a transaction reported twice");
                }
                ClientStep::Failed(_) | ClientStep::Closed => return done,
            }
            c.clear_output();
        }
    }
    done
}

proptest! {
    /// Whatever the server sends, the client never panics and reports each transaction at
    /// most once per message sent.
    #[test]
    fn client_survives_any_server(chunks in proptest::collection::vec(
        proptest::collection::vec(prop_oneof![
            Just(b"220 x\r\n".to_vec()),
            Just(b"250-x\r\n250 PIPELINING\r\n".to_vec()),
            Just(b"250 STARTTLS\r\n".to_vec()),
            Just(b"250 ok\r\n".to_vec()),
            Just(b"354 go\r\n".to_vec()),
            Just(b"421 bye\r\n".to_vec()),
            Just(b"550 no\r\n".to_vec()),
            Just(b"451 later\r\n".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..20),
        ], 0..12).prop_map(|v| v.concat()),
        0..6,
    )) {
        drive_client(&chunks);
    }
}

/// Bytes that exercise every DATA state: dots, CR, LF and CRLF, mixed with text.
fn data_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            Just(b"\r\n".to_vec()),
            Just(b".".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r\n.\r\n".to_vec()),
            "[a-z .]{0,12}".prop_map(String::into_bytes),
        ],
        0..40,
    )
    .prop_map(|v| v.concat())
}

/// Feeds `chunks` until the end-of-data mark; returns the bytes used, whether the mark was
/// seen, the body and whether a bare line end was.
fn receive(chunks: &[&[u8]]) -> (usize, bool, Vec<u8>, bool) {
    let mut r = bindery_smtp::data::DataReceiver::new(0, 0);
    let mut used = 0;
    for c in chunks {
        let (n, done) = r.feed(c);
        used += n;
        if done {
            let bare = r.bare_line_end;
            return (used, true, r.into_body(), bare);
        }
    }
    let bare = r.bare_line_end;
    (used, false, r.into_body(), bare)
}

proptest! {
    /// The run-copying fast path gives what the byte-at-a-time state machine gives, however
    /// the input is cut.
    #[test]
    fn data_receiver_ignores_chunking(input in data_bytes(), cut in any::<usize>()) {
        let bytewise: Vec<&[u8]> = input.chunks(1).collect();
        let cut = if input.is_empty() { 0 } else { cut % input.len() };
        let halves = [&input[..cut], &input[cut..]];
        let whole = receive(&[&input]);
        prop_assert_eq!(&whole, &receive(&bytewise));
        prop_assert_eq!(&whole, &receive(&halves));
    }

    /// Taking the body out as it arrives (the server's spill to the spool) and joining what
    /// was taken with what is left gives the body kept whole.
    #[test]
    fn taking_the_body_as_it_arrives_loses_nothing(input in data_bytes(), at in 1usize..16) {
        let whole = receive(&[&input]);
        let mut r = bindery_smtp::data::DataReceiver::new(0, 0);
        let mut taken = Vec::new();
        for c in input.chunks(3) {
            let (_, done) = r.feed(c);
            if let Some(b) = r.take_body(at) {
                prop_assert!(b.len() >= at);
                taken.extend(b);
            }
            if done {
                break;
            }
        }
        taken.extend(r.into_body());
        prop_assert_eq!(taken, whole.2);
    }

    /// What the client stuffs, the server un-stuffs: the body comes back byte for byte.
    #[test]
    fn dot_stuffing_round_trips(lines in proptest::collection::vec("[a-z. ]{0,10}", 0..20)) {
        let body: Vec<u8> = lines.iter().flat_map(|l| format!("{l}\r\n").into_bytes()).collect();
        let mut wire = Vec::new();
        bindery_smtp::client::dot_stuff_into(&body, &mut wire);
        let (used, done, got, bare) = receive(&[&wire]);
        prop_assert_eq!((used, done, bare), (wire.len(), true, false));
        prop_assert_eq!(got, body);
    }
}
