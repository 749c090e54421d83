//! The envelope file: everything about a message except its body, small enough that a retry
//! rewrites a few hundred bytes.
//!
//! On disk it is one line of JSON followed by `crc32 XXXXXXXX` over that line, so a torn or
//! hand-edited file is detected rather than half-believed.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Where one recipient stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RcptState {
    /// Not yet delivered; more attempts to come.
    #[default]
    Pending,
    /// A 2xx from the next hop.
    Delivered,
    /// A permanent failure (or expiry).
    Failed,
}

/// `RET=` (RFC 3461): how much of the message a failure report carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ret {
    #[serde(rename = "FULL")]
    Full,
    #[serde(rename = "HDRS")]
    Hdrs,
}

impl Ret {
    /// The parameter's value as written in `MAIL FROM`.
    pub fn as_str(self) -> &'static str {
        match self {
            Ret::Full => "FULL",
            Ret::Hdrs => "HDRS",
        }
    }
}

/// A recipient with its DSN parameters (RFC 3461), kept for the bounces of later stages.
///
/// Text is `Box<str>`, not `String`: a queued message lives in memory until it is delivered,
/// and the spare capacity word of every field is paid once per recipient of every message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub address: Box<str>,
    /// `NOTIFY=` as a comma-separated list (`NEVER` or any of `SUCCESS,FAILURE,DELAY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Box<str>>,
    /// `ORCPT=` as received (`rfc822;...` in xtext).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orcpt: Option<Box<str>>,
    pub state: RcptState,
}

impl Recipient {
    /// A recipient with no DSN parameters, not yet delivered.
    pub fn pending(address: impl Into<Box<str>>) -> Recipient {
        Recipient {
            address: address.into(),
            notify: None,
            orcpt: None,
            state: RcptState::Pending,
        }
    }
}

/// The message's metadata. `Default` is a blank envelope to fill in: no attempts yet, and
/// `body_len`/`body_crc` are set by [`crate::Spool::store`].
///
/// Delivery keeps one in memory for every queued message, so its shape is chosen for size:
/// fixed text is `Box<str>` (no capacity word), the recipients a boxed slice, and the binding
/// names `Arc<str>` so that the queues can share one copy of each name among all the
/// messages on a binding (the delivery engine interns them as it queues a message). The
/// file format is the same JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: Box<str>,
    /// Reception time, seconds since the Unix epoch.
    pub received: u64,
    pub peer: Box<str>,
    pub helo: Box<str>,
    /// The reverse path without brackets; empty for the null sender `<>`.
    pub sender: Box<str>,
    pub recipients: Box<[Recipient]>,
    pub binding_group: Arc<str>,
    pub binding: Arc<str>,
    /// `RET=FULL|HDRS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<Ret>,
    /// `ENVID=` (xtext).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envid: Option<Box<str>>,
    #[serde(default)]
    pub smtputf8: bool,
    /// The domain whose route the message takes instead of its recipients' (a policy's
    /// `msg:routing_domain`): its MX, its options, its queue. `None`: each recipient's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<Box<str>>,
    /// Header fields sent before the body: the DKIM signatures of a message that went to the
    /// spool as it arrived, before they could be made (`Spool::message` puts them first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<Box<str>>,
    /// Message-context entries delivery reads: Momentum's `outbound_smtp_auth_type`,
    /// `_user`, `_pass` and `_key`, set by the policy at reception. Momentum keeps the whole
    /// context with the message; bindery keeps only what it acts on. The password is kept
    /// here as Momentum keeps it in its spooled context: the spool's files are the daemon
    /// user's alone (`spool_mode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Context>,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// Delay notices (`generate_delay_dsn`) sent to the sender so far: the schedule of the
    /// next one counts from them, and a restart does not send one twice.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delay_notices: u32,
    /// When the next attempt is due, seconds since the Unix epoch.
    pub next_attempt: u64,
    /// Length and CRC-32 of the body file: a body that does not match is torn.
    pub body_len: u64,
    pub body_crc: u32,
}

/// Message-context entries kept with a message: (name, value).
pub type Context = Box<[(Box<str>, Box<str>)]>;

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Envelope {
    /// The file's bytes: JSON, newline, `crc32 XXXXXXXX`, newline.
    /// Records the body's length and CRC, which recovery checks. `Spool::store` does this;
    /// a caller that keeps a copy of the envelope (to queue it) seals before copying, so a
    /// later `update` writes the same values.
    pub fn seal(&mut self, body: &[u8]) {
        self.body_len = body.len() as u64;
        self.body_crc = crc32fast::hash(body);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).unwrap_or_default();
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(format!("\ncrc32 {crc:08x}\n").as_bytes());
        out
    }

    /// Reads a file written by [`Envelope::encode`]; `Err` says why it is not one.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
        let (json, tail) = text
            .split_once('\n')
            .ok_or_else(|| "truncated (no checksum line)".to_string())?;
        let want = tail
            .trim_end()
            .strip_prefix("crc32 ")
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| "truncated (bad checksum line)".to_string())?;
        let got = crc32fast::hash(json.as_bytes());
        if got != want {
            return Err(format!(
                "checksum mismatch (file says {want:08x}, content is {got:08x})"
            ));
        }
        serde_json::from_str(json).map_err(|e| format!("bad envelope: {e}"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Envelope {
        Envelope {
            id: "0000000100000002".into(),
            received: 1,
            peer: "127.0.0.1".into(),
            helo: "c.example".into(),
            sender: "a@s.example".into(),
            recipients: Box::new([Recipient {
                address: "b@r.example".into(),
                notify: Some("SUCCESS,FAILURE".into()),
                orcpt: Some("rfc822;b@r.example".into()),
                state: RcptState::Pending,
            }]),
            binding_group: "default".into(),
            binding: "default".into(),
            ret: Some(Ret::Hdrs),
            envid: None,
            smtputf8: false,
            routing: None,
            prefix: None,
            context: None,
            attempts: 0,
            delay_notices: 0,
            next_attempt: 1,
            body_len: 3,
            body_crc: 7,
        }
    }

    /// The delay notices sent are kept, and an envelope without them writes no field, so
    /// spools written before the field read the same.
    #[test]
    fn delay_notices_round_trip() {
        let mut env = sample();
        let plain = String::from_utf8(env.encode()).unwrap();
        assert!(!plain.contains("delay_notices"), "{plain}");
        env.delay_notices = 2;
        let back = Envelope::decode(&env.encode()).unwrap();
        assert_eq!(back.delay_notices, 2);
    }

    /// The in-memory shape changed (boxed text, shared names, `Ret`); the file did not. A
    /// line as every earlier version wrote it still decodes, and encodes back the same.
    #[test]
    fn the_file_format_is_unchanged() {
        let json = r#"{"id":"0000000100000002","received":1,"peer":"127.0.0.1","helo":"c.example","sender":"a@s.example","recipients":[{"address":"b@r.example","notify":"SUCCESS,FAILURE","orcpt":"rfc822;b@r.example","state":"pending"}],"binding_group":"default","binding":"default","ret":"HDRS","smtputf8":false,"attempts":0,"next_attempt":1,"body_len":3,"body_crc":7}"#;
        let file = format!("{json}\ncrc32 {:08x}\n", crc32fast::hash(json.as_bytes()));
        assert_eq!(Envelope::decode(file.as_bytes()).unwrap(), sample());
        assert_eq!(sample().encode(), file.as_bytes());
    }

    #[test]
    fn round_trip_and_tears() {
        let e = sample();
        let bytes = e.encode();
        assert_eq!(Envelope::decode(&bytes).unwrap(), e);
        for cut in [0, 10, bytes.len() - 12, bytes.len() - 2] {
            assert!(Envelope::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[5] ^= 1;
        assert!(Envelope::decode(&flipped).is_err());
    }

    /// A routing domain (`msg:routing_domain`) is kept through a write and a read; files
    /// without one (every earlier one) read as `None`.
    #[test]
    fn a_routing_domain_round_trips() {
        let mut e = sample();
        e.routing = Some("smart.example".into());
        let back = Envelope::decode(&e.encode()).unwrap();
        assert_eq!(back.routing.as_deref(), Some("smart.example"));
        assert_eq!(Envelope::decode(&sample().encode()).unwrap().routing, None);
    }
}
