//! Verifying a message's DKIM signatures, for Lua's `msys.validate.opendkim.verify` and its
//! getters, with OpenDKIM's statuses (`DKIM_STAT_*`) and signature flags.
//!
//! mail-auth verifies; its DNS lookups never leave this module: the caller's `txt` function
//! (in the daemon, the policy's resolver seam, so `Resolv_Conf` and the test's dnsmasq are
//! asked) answers every key record first, and mail-auth reads them from a cache filled with
//! those answers. Its own resolver is built once and never asked.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, Txt};

use crate::sign::Canon;

/// OpenDKIM's `DKIM_STAT` values (libopendkim's numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum Status {
    Ok = 0,
    BadSig = 1,
    NoSig = 2,
    NoKey = 3,
    CantVerify = 4,
    Syntax = 5,
    NoResource = 6,
    Internal = 7,
    Revoked = 8,
    Invalid = 9,
    NotImplemented = 10,
    KeyFail = 11,
}

impl Status {
    /// Every status with its Lua name.
    pub const ALL: &[(&str, Status)] = &[
        ("DKIM_STAT_OK", Status::Ok),
        ("DKIM_STAT_BADSIG", Status::BadSig),
        ("DKIM_STAT_NOSIG", Status::NoSig),
        ("DKIM_STAT_NOKEY", Status::NoKey),
        ("DKIM_STAT_CANTVRFY", Status::CantVerify),
        ("DKIM_STAT_SYNTAX", Status::Syntax),
        ("DKIM_STAT_NORESOURCE", Status::NoResource),
        ("DKIM_STAT_INTERNAL", Status::Internal),
        ("DKIM_STAT_REVOKED", Status::Revoked),
        ("DKIM_STAT_INVALID", Status::Invalid),
        ("DKIM_STAT_NOTIMPLEMENT", Status::NotImplemented),
        ("DKIM_STAT_KEYFAIL", Status::KeyFail),
    ];
}

/// libopendkim's `DKIM_SIGFLAG_*`.
pub const SIGFLAG_IGNORE: i64 = 0x01;
pub const SIGFLAG_PROCESSED: i64 = 0x02;
pub const SIGFLAG_PASSED: i64 = 0x04;
pub const SIGFLAG_TESTKEY: i64 = 0x08;
pub const SIGFLAG_NOSUBDOMAIN: i64 = 0x10;

/// One signature of a verified message (OpenDKIM's `DKIM_SIGINFO`).
#[derive(Clone, Debug)]
pub struct SigInfo {
    pub domain: String,
    pub selector: String,
    /// `rsa-sha256`, `rsa-sha1` or `ed25519-sha256`.
    pub algorithm: &'static str,
    pub header_canon: Canon,
    pub body_canon: Canon,
    /// `i=`, or `@d` when the signature has none (RFC 6376's default).
    pub identity: String,
    /// `h=`, lowercased.
    pub signed_headers: Vec<String>,
    /// Bits of the public key found in DNS; 0 when none was found.
    pub key_bits: u32,
    pub status: Status,
    pub flags: i64,
    /// Why it did not verify.
    pub error: Option<String>,
}

/// The answer to one key record question.
#[derive(Clone, Debug)]
pub enum TxtAnswer {
    Records(Vec<String>),
    /// NXDOMAIN, or no TXT record.
    NotFound,
    /// A failure worth trying again (timeout, SERVFAIL).
    TempFail(String),
}

/// Key records by name, as mail-auth reads them (with and without the final dot).
struct Answered(Mutex<HashMap<Box<str>, Txt>>);

fn key_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl mail_auth::ResolverCache<Box<str>, Txt> for Answered {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    fn remove<Q>(&self, _: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        None
    }

    fn insert(&self, _: Box<str>, _: Txt, _: std::time::Instant) {}
}

/// The resolver mail-auth is built with; every question is answered from [`Answered`].
fn authenticator() -> Option<&'static MessageAuthenticator> {
    static A: OnceLock<Option<MessageAuthenticator>> = OnceLock::new();
    A.get_or_init(|| {
        use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
        MessageAuthenticator::new(ResolverConfig::default(), ResolverOpts::default()).ok()
    })
    .as_ref()
}

/// Runs a future that never waits on I/O (every DNS answer is in the cache) to its end;
/// `None` if it waits after all.
fn run<F: std::future::Future>(f: F) -> Option<F::Output> {
    use std::task::{Context, Poll, Waker};
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..64 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return Some(v);
        }
    }
    None
}

/// The public key's size in bits from a `v=DKIM1; k=...; p=...` record.
fn key_bits(record: &str) -> u32 {
    use base64::Engine as _;
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    use rsa::traits::PublicKeyParts;
    let tags: HashMap<&str, &str> = record
        .split(';')
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    if tags
        .get("k")
        .is_some_and(|k| k.eq_ignore_ascii_case("ed25519"))
    {
        return 256;
    }
    let p: String = tags
        .get("p")
        .map(|p| p.chars().filter(|c| !c.is_whitespace()).collect())
        .unwrap_or_default();
    let Ok(der) = base64::engine::general_purpose::STANDARD.decode(p) else {
        return 0;
    };
    rsa::RsaPublicKey::from_public_key_der(&der)
        .or_else(|_| rsa::RsaPublicKey::from_pkcs1_der(&der))
        .map_or(0, |k| (k.size() * 8) as u32)
}

fn canon(c: mail_auth::dkim::Canonicalization) -> Canon {
    match c {
        mail_auth::dkim::Canonicalization::Relaxed => Canon::Relaxed,
        _ => Canon::Simple,
    }
}

/// Verifies every DKIM signature of `message`; `txt` answers key record questions
/// (`selector._domainkey.domain`). Returns each signature and the message's status: `NoSig`
/// without one, `Ok` when one verified, else the first signature's.
pub fn verify(message: &[u8], txt: &dyn Fn(&str) -> TxtAnswer) -> (Vec<SigInfo>, Status) {
    let message = crate::sign::crlf(message);
    let Some(parsed) = AuthenticatedMessage::parse(&message) else {
        return (Vec::new(), Status::Syntax);
    };
    if parsed.dkim_headers.is_empty() {
        return (Vec::new(), Status::NoSig);
    }
    // Ask for every key first.
    let answered = Answered(Mutex::default());
    let mut found: HashMap<String, (Status, u32)> = HashMap::new();
    for h in &parsed.dkim_headers {
        let name = key_name(&format!("{}._domainkey.{}", h.header.s, h.header.d));
        if found.contains_key(&name) {
            continue;
        }
        let (value, status, bits) = match txt(&name) {
            TxtAnswer::Records(records) => {
                match records
                    .iter()
                    .find_map(|r| DomainKey::parse(r.as_bytes()).ok().map(|k| (k, r)))
                {
                    Some((k, r)) => (Txt::from(k), Status::Ok, key_bits(r)),
                    None => (invalid(), Status::NoKey, 0),
                }
            }
            TxtAnswer::NotFound => (invalid(), Status::NoKey, 0),
            TxtAnswer::TempFail(_) => (invalid(), Status::KeyFail, 0),
        };
        let mut records = answered.0.lock().unwrap_or_else(|p| p.into_inner());
        records.insert(format!("{name}.").into(), value.clone());
        records.insert(name.clone().into(), value);
        drop(records);
        found.insert(name, (status, bits));
    }
    let Some(auth) = authenticator() else {
        return (Vec::new(), Status::Internal);
    };
    let Some(outputs) = run(auth.verify_dkim(Parameters::new(&parsed).with_txt_cache(&answered)))
    else {
        return (Vec::new(), Status::Internal);
    };
    let mut sigs = Vec::with_capacity(outputs.len());
    for out in &outputs {
        let Some(sig) = out.signature() else {
            // A DKIM-Signature mail-auth could not parse.
            continue;
        };
        let name = key_name(&format!("{}._domainkey.{}", sig.s, sig.d));
        let (dns, bits) = found.get(&name).copied().unwrap_or((Status::NoKey, 0));
        let (status, error) = match out.result() {
            DkimResult::Pass => (Status::Ok, None),
            _ if dns != Status::Ok => (dns, Some(format!("no usable key record at {name}"))),
            DkimResult::Fail(e) | DkimResult::Neutral(e) => {
                let text = e.to_string();
                let s = if text.to_ascii_lowercase().contains("revoked") {
                    Status::Revoked
                } else {
                    Status::BadSig
                };
                (s, Some(text))
            }
            DkimResult::PermError(e) => (Status::CantVerify, Some(e.to_string())),
            DkimResult::TempError(e) => (Status::KeyFail, Some(e.to_string())),
            DkimResult::None => (Status::NoSig, None),
        };
        let mut flags = SIGFLAG_PROCESSED;
        if status == Status::Ok {
            flags |= SIGFLAG_PASSED;
        }
        sigs.push(SigInfo {
            domain: sig.d.clone(),
            selector: sig.s.clone(),
            algorithm: match sig.a {
                mail_auth::common::crypto::Algorithm::Ed25519Sha256 => "ed25519-sha256",
                mail_auth::common::crypto::Algorithm::RsaSha1 => "rsa-sha1",
                _ => "rsa-sha256",
            },
            header_canon: canon(sig.ch),
            body_canon: canon(sig.cb),
            identity: if sig.i.is_empty() {
                format!("@{}", sig.d)
            } else {
                sig.i.clone()
            },
            signed_headers: sig.h.iter().map(|h| h.to_ascii_lowercase()).collect(),
            key_bits: bits,
            status,
            flags,
            error,
        });
    }
    let status = if sigs.is_empty() {
        Status::Syntax
    } else if sigs.iter().any(|s| s.status == Status::Ok) {
        Status::Ok
    } else {
        sigs[0].status
    };
    (sigs, status)
}

fn invalid() -> Txt {
    Txt::Error(mail_auth::Error::Dns(
        mail_auth::DnsError::InvalidRecordType,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Key, Options, sign};

    fn ed25519() -> (Key, String) {
        // A fixed PKCS#8 Ed25519 key (RFC 8032 test vector 1's secret).
        let pem = b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";
        let key = Key::from_pem(pem).expect("key");
        let record = format!("v=DKIM1; k=ed25519; p={}", key.public_key_base64());
        (key, record)
    }

    fn signed(key: &Key) -> Vec<u8> {
        let m = b"From: a@example.com\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nHello.\r\n";
        let o = Options {
            domain: "example.com".into(),
            selector: "s1".into(),
            headers: vec!["from".into(), "to".into(), "subject".into()],
            ..Options::default()
        };
        let mut out = sign(m, key, &o).expect("sign").into_bytes();
        out.extend_from_slice(m);
        out
    }

    #[test]
    fn ok_badsig_nokey_nosig() {
        let (key, record) = ed25519();
        let m = signed(&key);
        let answer = |name: &str| {
            if name == "s1._domainkey.example.com" {
                TxtAnswer::Records(vec![record.clone()])
            } else {
                TxtAnswer::NotFound
            }
        };
        let (sigs, status) = verify(&m, &answer);
        assert_eq!(status, Status::Ok, "{sigs:?}");
        assert_eq!(sigs.len(), 1);
        assert_eq!(sigs[0].domain, "example.com");
        assert_eq!(sigs[0].key_bits, 256);
        assert_eq!(sigs[0].algorithm, "ed25519-sha256");
        assert_eq!(sigs[0].identity, "@example.com");
        assert!(sigs[0].signed_headers.contains(&"subject".to_string()));
        assert_eq!(sigs[0].flags, SIGFLAG_PROCESSED | SIGFLAG_PASSED);

        let mut changed = m.clone();
        let at = changed.len() - 3;
        changed[at] = b'?';
        let (sigs, status) = verify(&changed, &answer);
        assert_eq!(status, Status::BadSig, "{sigs:?}");

        let (_, status) = verify(&m, &|_| TxtAnswer::NotFound);
        assert_eq!(status, Status::NoKey);
        let (_, status) = verify(&m, &|_| TxtAnswer::TempFail("timeout".into()));
        assert_eq!(status, Status::KeyFail);
        let (sigs, status) = verify(b"From: a@b\r\n\r\nx\r\n", &answer);
        assert_eq!((sigs.len(), status), (0, Status::NoSig));
    }

    /// `copy_headers`: the signature carries `z=` and still verifies, whole or streamed, under
    /// both header canonicalizations.
    #[test]
    fn signatures_with_copies_verify() {
        let (key, record) = ed25519();
        let m = b"From: A <a@example.com>\r\nSubject: with =|; and\r\n spaces\r\nTo: b@example.net\r\n\r\nBody.\r\n";
        let answer = |_: &str| TxtAnswer::Records(vec![record.clone()]);
        for canon in [Canon::Simple, Canon::Relaxed] {
            let o = Options {
                domain: "example.com".into(),
                selector: "s1".into(),
                headers: vec!["from".into(), "subject".into(), "to".into(), "cc".into()],
                header_canon: canon,
                body_canon: canon,
                copy_headers: true,
                ..Options::default()
            };
            let field = crate::sign::sign(m, &key, &o).expect("signed");
            assert!(field.contains("z=From:A=20<a@example.com>|"), "{field}");
            let streamed =
                crate::sign::sign_streamed(&[(&key, &o)], &m[..m.len() - 7], &mut |each| {
                    each(m);
                    Ok(())
                })
                .expect("signed");
            for f in [field, streamed[0].clone()] {
                let mut sent = f.into_bytes();
                sent.extend_from_slice(m);
                let (sigs, status) = verify(&sent, &answer);
                assert_eq!(
                    status,
                    Status::Ok,
                    "{canon:?}: {sigs:?}\n{}",
                    String::from_utf8_lossy(&sent)
                );
            }
        }
    }

    /// A message signed in chunks (as one over 1 MiB is, from the spool) verifies, whatever
    /// the chunk size, the header/body boundary split across chunks included.
    #[test]
    fn streamed_signatures_verify() {
        let (key, record) = ed25519();
        let mut m = b"Received: by us\r\nFrom: a@example.com\r\nSubject: big\r\n\r\n".to_vec();
        for i in 0..2000 {
            m.extend_from_slice(format!("line {i} {}\r\n", "z".repeat(i % 300)).as_bytes());
        }
        let answer = |_: &str| TxtAnswer::Records(vec![record.clone()]);
        for canon in [Canon::Simple, Canon::Relaxed] {
            let o = Options {
                domain: "example.com".into(),
                selector: "s1".into(),
                headers: vec!["from".into(), "subject".into()],
                header_canon: canon,
                body_canon: canon,
                ..Options::default()
            };
            for chunk in [7usize, 4096, 1 << 20] {
                let fields = crate::sign::sign_streamed(&[(&key, &o)], &m[..60], &mut |each| {
                    m.chunks(chunk).for_each(&mut *each);
                    Ok(())
                })
                .expect("signed");
                let mut sent = fields[0].clone().into_bytes();
                sent.extend_from_slice(&m);
                let (sigs, status) = verify(&sent, &answer);
                assert_eq!(status, Status::Ok, "{canon:?} {chunk}: {sigs:?}");
            }
        }
    }
}
