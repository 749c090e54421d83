//! Signatures checked by real verifiers: python3-dkim (Debian's, `/usr/bin/python3`, which
//! also knows Ed25519) and Perl's Mail::DKIM (RSA: Debian's predates Ed25519), with the public
//! keys served as TXT records by a dnsmasq on loopback. Keys are made by `openssl` for each
//! run: RSA 1024 (the legacy signer), 2048 and 4096, and Ed25519. `.ci/run` installs the
//! verifiers; where one is missing the test says so and fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use bindery_dkim::{Canon, Key, Options, crlf, sign};

#[path = "../../delivery/tests/support/dnsmasq.rs"]
#[allow(dead_code)]
mod dnsmasq;

/// A key made by openssl: its file and its selector.
struct TestKey {
    selector: &'static str,
    path: PathBuf,
    ed25519: bool,
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_keys(dir: &Path) -> Vec<TestKey> {
    let mut keys = Vec::new();
    for (selector, bits) in [
        ("rsa1024", "1024"),
        ("rsa2048", "2048"),
        ("rsa4096", "4096"),
    ] {
        let path = dir.join(format!("{selector}.pem"));
        // PKCS#1 (`BEGIN RSA PRIVATE KEY`), as Momentum's docs make keys.
        openssl(&[
            "genrsa",
            "-traditional",
            "-out",
            path.to_str().unwrap(),
            bits,
        ]);
        keys.push(TestKey {
            selector,
            path,
            ed25519: false,
        });
    }
    let path = dir.join("ed25519.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        path.to_str().unwrap(),
    ]);
    keys.push(TestKey {
        selector: "ed25519",
        path,
        ed25519: true,
    });
    keys
}

const DOMAIN: &str = "sign.test";

/// A TXT record's strings: the value cut into pieces of at most 250 bytes.
fn txt_record(name: &str, value: &str) -> String {
    let pieces: Vec<String> = value
        .as_bytes()
        .chunks(250)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    format!("txt-record={name},{}\n", pieces.join(","))
}

fn messages() -> Vec<(&'static str, Vec<u8>)> {
    let long_line = "x".repeat(5000);
    let mut big = String::new();
    while big.len() < 1_000_000 {
        big.push_str(&long_line);
        big.push_str("\r\n");
    }
    vec![
        ("plain", b"From: Alice <alice@sign.test>\r\nTo: bob@example.test\r\nSubject: Hello\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <1@sign.test>\r\n\r\nHello, Bob.\r\n".to_vec()),
        ("empty-body", b"From: alice@sign.test\r\nTo: bob@example.test\r\nSubject: nothing\r\n\r\n".to_vec()),
        ("no-body-at-all", b"From: alice@sign.test\r\nSubject: headers only\r\n".to_vec()),
        ("big-long-lines", format!("From: alice@sign.test\r\nSubject: big\r\n\r\n{big}").into_bytes()),
        ("8bit-utf8", "From: Zoë <zoe@sign.test>\r\nTo: José <jose@example.test>\r\nSubject: Grüße — ça va\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nÇa va très bien.\r\n".as_bytes().to_vec()),
        ("encoded-word", b"From: =?UTF-8?B?Wm/Dqw==?= <zoe@sign.test>\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\r\nHi\r\n".to_vec()),
        ("folded-and-spaced", b"From:   alice@sign.test  \r\nSubject: a\r\n  folded\t subject\r\n\r\nline with trailing space   \r\n\r\n\r\n".to_vec()),
        ("bare-line-ends", b"From: alice@sign.test\nSubject: bare\n\nline one\rline two\n".to_vec()),
        ("already-signed", b"DKIM-Signature: v=1; a=rsa-sha256; d=other.test; s=x; h=from; bh=AAAA; b=BBBB\r\nFrom: alice@sign.test\r\nSubject: resent\r\n\r\nHi\r\n".to_vec()),
    ]
}

/// The messages in files of a temporary folder (kept as long as the folder is).
fn files(signed: &[Vec<u8>]) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, m) in signed.iter().enumerate() {
        let p = dir.path().join(format!("{i}.eml"));
        std::fs::write(&p, m).unwrap();
        paths.push(p.display().to_string());
    }
    (dir, paths)
}

/// A verifier's verdicts, one line per message; `what` names it where it cannot run.
fn verdicts(cmd: &mut Command, what: &str) -> Vec<String> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn python_verify(signed: &[Vec<u8>], records: &[(String, String)]) -> Vec<String> {
    let (_dir, paths) = files(signed);
    let table: Vec<String> = records
        .iter()
        .map(|(n, v)| format!("{:?}: {:?}", format!("{n}."), v))
        .collect();
    let script = format!(
        r#"
import sys, dkim
records = {{{}}}
def dns(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    v = records.get(name)
    return v.encode() if v else None
for p in sys.argv[1:]:
    m = open(p, "rb").read()
    print("ok" if dkim.verify(m, dnsfunc=dns) else "FAIL")
"#,
        table.join(", ")
    );
    verdicts(
        Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(script)
            .args(&paths),
        "python3-dkim (apt-get install python3-dkim)",
    )
}

fn perl_verify(signed: &[Vec<u8>], dns_port: u16) -> Vec<String> {
    let (_dir, paths) = files(signed);
    let script = r#"
use strict; use warnings;
use Mail::DKIM::Verifier; use Mail::DKIM::DNS; use Net::DNS::Resolver;
my $port = shift @ARGV;
Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(nameservers => ['127.0.0.1'], port => $port, recurse => 1));
for my $p (@ARGV) {
  open(my $fh, '<', $p) or die; binmode $fh;
  my $v = Mail::DKIM::Verifier->new();
  $v->load($fh); close $fh;
  my @sigs = $v->signatures;
  my $ours = (grep { ($_->domain // '') eq 'sign.test' } @sigs)[0];
  print(($ours && $ours->result eq 'pass') ? "ok\n" : "FAIL " . ($ours ? $ours->result_detail : 'no signature') . "\n");
}
"#;
    verdicts(
        Command::new("perl")
            .arg("-e")
            .arg(script)
            .arg(dns_port.to_string())
            .args(&paths),
        "Mail::DKIM (apt-get install libmail-dkim-perl)",
    )
}

#[test]
fn signatures_verify_with_python3_dkim_and_mail_dkim() {
    let dir = tempfile::tempdir().unwrap();
    let keys = make_keys(dir.path());
    let mut records = Vec::new();
    let mut zone = String::new();
    let mut loaded = Vec::new();
    for k in &keys {
        let key = Key::from_pem(&std::fs::read(&k.path).unwrap()).expect("the key loads");
        let kind = if k.ed25519 { "ed25519" } else { "rsa" };
        let value = format!("v=DKIM1; k={kind}; p={}", key.public_key_base64());
        let name = format!("{}._domainkey.{DOMAIN}", k.selector);
        zone.push_str(&txt_record(&name, &value));
        records.push((name, value));
        loaded.push((k, key));
    }
    assert!(loaded[0].1.legacy(), "1024 bits take the legacy signer");
    assert!(!loaded[1].1.legacy() && !loaded[2].1.legacy());
    let dns = dnsmasq::Dnsmasq::start(&zone).expect("dnsmasq is installed");

    let canons = [
        (Canon::Simple, Canon::Simple),
        (Canon::Relaxed, Canon::Relaxed),
        (Canon::Relaxed, Canon::Simple),
    ];
    let mut cases = Vec::new();
    let mut signed = Vec::new();
    for (k, key) in &loaded {
        for (hc, bc) in canons {
            for (name, message) in messages() {
                let message = crlf(&message).into_owned();
                let o = Options {
                    domain: DOMAIN.into(),
                    selector: k.selector.into(),
                    headers: [
                        "from",
                        "to",
                        "subject",
                        "date",
                        "message-id",
                        "content-type",
                    ]
                    .map(String::from)
                    .to_vec(),
                    oversign: vec!["from".into()],
                    header_canon: hc,
                    body_canon: bc,
                    ..Options::default()
                };
                let header = sign(&message, key, &o).expect("signs");
                let mut out = header.into_bytes();
                out.extend_from_slice(&message);
                cases.push(format!("{} {hc:?}/{bc:?} {name}", k.selector));
                signed.push((k.ed25519, out));
            }
        }
    }
    let all: Vec<Vec<u8>> = signed.iter().map(|(_, m)| m.clone()).collect();
    // The verifiers do refuse: a body changed after signing, a header added that was
    // oversigned.
    let mut tampered = all[0].clone();
    let at = tampered.len() - 3;
    tampered[at] ^= 1;
    let mut added = b"From: mallory@evil.test\r\n".to_vec();
    added.extend_from_slice(&all[0]);
    let mut second_from = all[0].clone();
    let split = second_from
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap()
        + 2;
    second_from.splice(split..split, b"From: mallory@evil.test\r\n".iter().copied());
    assert_eq!(
        python_verify(&[tampered.clone(), added, second_from], &records),
        vec!["FAIL", "FAIL", "FAIL"]
    );
    assert!(perl_verify(&[tampered], dns.port)[0].starts_with("FAIL"));
    let py = python_verify(&all, &records);
    let rsa: Vec<Vec<u8>> = signed
        .iter()
        .filter(|(e, _)| !e)
        .map(|(_, m)| m.clone())
        .collect();
    let pl = perl_verify(&rsa, dns.port);
    let mut failures = Vec::new();
    for (case, verdict) in cases.iter().zip(&py) {
        if verdict != "ok" {
            failures.push(format!("python3-dkim: {case}: {verdict}"));
        }
    }
    let rsa_cases: Vec<&String> = cases
        .iter()
        .zip(&signed)
        .filter(|(_, (e, _))| !e)
        .map(|(c, _)| c)
        .collect();
    for (case, verdict) in rsa_cases.iter().zip(&pl) {
        if verdict != "ok" {
            failures.push(format!("Mail::DKIM: {case}: {verdict}"));
        }
    }
    assert_eq!(py.len(), cases.len());
    assert_eq!(pl.len(), rsa_cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} checks failed:\n{}",
        failures.len(),
        py.len() + pl.len(),
        failures.join("\n")
    );
}
