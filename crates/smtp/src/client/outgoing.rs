//! One message as the client sends it: the envelope's commands and the dot-stuffed body.

use std::sync::Arc;

use super::extensions::Extensions;

/// A recipient with the DSN parameters to pass on when the server supports DSN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutRecipient {
    /// The forward path without angle brackets.
    pub address: String,
    /// `NEVER` or a comma-separated list of SUCCESS, FAILURE, DELAY, as received.
    pub notify: Option<String>,
    /// `addr-type;xtext`, as received.
    pub orcpt: Option<String>,
}

/// What one SMTP transaction carries.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The reverse path without angle brackets; empty for the null sender (bounces).
    pub sender: String,
    pub recipients: Vec<OutRecipient>,
    /// The message as stored: CRLF line ends, not dot-stuffed.
    pub body: Arc<Vec<u8>>,
    /// `FULL` or `HDRS`, passed on with DSN.
    pub ret: Option<String>,
    pub envid: Option<String>,
    /// The message needs SMTPUTF8 (it was received with it).
    pub smtputf8: bool,
    /// Say `BODY=8BITMIME` for an 8-bit body where the server offers 8BITMIME (Momentum's
    /// `Send_8BitMIME = ifavailable`). Either way the body goes as it is.
    pub announce_8bit: bool,
    /// Who handed us the message, for XCLIENT (`None`: unknown, as for a bounce we made).
    pub origin: Option<Origin>,
}

/// The client that gave us a message, as XCLIENT passes it on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub addr: std::net::IpAddr,
    /// Its HELO or EHLO argument; empty when it sent none.
    pub helo: String,
}

impl Outgoing {
    /// Postfix's `XCLIENT` with this message's origin, for the attributes the server named
    /// (`ADDR`, `NAME`, `HELO`, `PROTO`): values are xtext, unknown ones `[UNAVAILABLE]`.
    /// <https://www.postfix.org/XCLIENT_README.html>
    pub fn xclient_command(&self, offered: &[String]) -> Vec<u8> {
        const UNAVAILABLE: &str = "[UNAVAILABLE]";
        let mut c = String::from("XCLIENT");
        let o = self.origin.as_ref();
        for attr in ["NAME", "ADDR", "HELO", "PROTO"] {
            if !offered.iter().any(|a| a == attr) {
                continue;
            }
            let value = match attr {
                "ADDR" => o.map_or(UNAVAILABLE.to_string(), |o| match o.addr {
                    std::net::IpAddr::V4(a) => a.to_string(),
                    std::net::IpAddr::V6(a) => format!("IPV6:{a}"),
                }),
                "HELO" => match o {
                    Some(o) if !o.helo.is_empty() => xtext(&o.helo),
                    _ => UNAVAILABLE.to_string(),
                },
                "PROTO" if o.is_some() => "ESMTP".to_string(),
                // The client's verified name: bindery does not look it up.
                _ => UNAVAILABLE.to_string(),
            };
            c.push_str(&format!(" {attr}={value}"));
        }
        c.push_str("\r\n");
        c.into_bytes()
    }
}

/// RFC 3461's xtext: `+`, `=`, controls, space and non-ASCII as `+XX`.
fn xtext(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

impl Outgoing {
    /// `MAIL FROM:<...>` with the parameters this server understands.
    pub fn mail_command(&self, ext: &Extensions) -> Vec<u8> {
        let mut c = format!("MAIL FROM:<{}>", self.sender);
        if ext.size.is_some() {
            c.push_str(&format!(" SIZE={}", self.body.len()));
        }
        if self.announce_8bit && ext.eight_bit_mime && !self.body.is_ascii() {
            c.push_str(" BODY=8BITMIME");
        }
        if ext.smtputf8 && self.smtputf8 {
            c.push_str(" SMTPUTF8");
        }
        if ext.dsn {
            if let Some(ret) = &self.ret {
                c.push_str(&format!(" RET={ret}"));
            }
            if let Some(envid) = &self.envid {
                c.push_str(&format!(" ENVID={envid}"));
            }
        }
        c.push_str("\r\n");
        c.into_bytes()
    }

    /// `RCPT TO:<...>` for recipient `i`.
    pub fn rcpt_command(&self, i: usize, ext: &Extensions) -> Vec<u8> {
        let r = &self.recipients[i];
        let mut c = format!("RCPT TO:<{}>", r.address);
        if ext.dsn {
            if let Some(n) = &r.notify {
                c.push_str(&format!(" NOTIFY={n}"));
            }
            if let Some(o) = &r.orcpt {
                c.push_str(&format!(" ORCPT={o}"));
            }
        }
        c.push_str("\r\n");
        c.into_bytes()
    }
}

/// Appends `body` dot-stuffed (RFC 5321 §4.5.2) and the end-of-data mark. A body that does
/// not end in CRLF gets one, so the mark always starts a line.
pub fn dot_stuff_into(body: &[u8], out: &mut Vec<u8>) {
    out.reserve(body.len() + body.len() / 512 + 5);
    if body.first() == Some(&b'.') {
        out.push(b'.');
    }
    // Copy from one line-starting dot to the next in one piece (memmem is vectorised; most
    // bodies have no such dot at all and go out in a single copy).
    let mut rest = body;
    while let Some(k) = memchr::memmem::find(rest, b"\n.") {
        out.extend_from_slice(&rest[..=k]);
        out.push(b'.');
        rest = &rest[k + 1..];
    }
    out.extend_from_slice(rest);
    if !body.is_empty() && !body.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuffed(body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        dot_stuff_into(body, &mut v);
        v
    }

    #[test]
    fn dots_at_line_start_are_doubled() {
        assert_eq!(stuffed(b".a\r\nb.\r\n.\r\n"), b"..a\r\nb.\r\n..\r\n.\r\n");
        assert_eq!(stuffed(b"no end"), b"no end\r\n.\r\n");
        assert_eq!(stuffed(b""), b".\r\n");
    }

    #[test]
    fn parameters_only_when_the_server_supports_them() {
        let m = Outgoing {
            sender: "a@b".into(),
            recipients: vec![OutRecipient {
                address: "c@d".into(),
                notify: Some("FAILURE".into()),
                orcpt: Some("rfc822;c@d".into()),
            }],
            body: Arc::new(b"x\xc3\xa9\r\n".to_vec()),
            ret: Some("HDRS".into()),
            envid: Some("E1".into()),
            smtputf8: false,
            announce_8bit: true,
            origin: None,
        };
        let none = Extensions::default();
        assert_eq!(m.mail_command(&none), b"MAIL FROM:<a@b>\r\n");
        assert_eq!(m.rcpt_command(0, &none), b"RCPT TO:<c@d>\r\n");
        let all = Extensions {
            esmtp: true,
            dsn: true,
            eight_bit_mime: true,
            size: Some(0),
            ..Extensions::default()
        };
        assert_eq!(
            m.mail_command(&all),
            b"MAIL FROM:<a@b> SIZE=5 BODY=8BITMIME RET=HDRS ENVID=E1\r\n"
        );
        assert_eq!(
            m.rcpt_command(0, &all),
            b"RCPT TO:<c@d> NOTIFY=FAILURE ORCPT=rfc822;c@d\r\n"
        );
        // Momentum's default `Send_8BitMIME = no`: the 8-bit body goes unannounced.
        let quiet = Outgoing {
            announce_8bit: false,
            ..m.clone()
        };
        assert_eq!(
            quiet.mail_command(&all),
            b"MAIL FROM:<a@b> SIZE=5 RET=HDRS ENVID=E1\r\n"
        );
        // An ASCII body is never announced.
        let ascii = Outgoing {
            body: Arc::new(b"x\r\n".to_vec()),
            ..m
        };
        assert_eq!(
            ascii.mail_command(&all),
            b"MAIL FROM:<a@b> SIZE=3 RET=HDRS ENVID=E1\r\n"
        );
    }

    #[test]
    fn xclient_names_the_origin_in_the_attributes_offered() {
        let m = Outgoing {
            sender: "a@b".into(),
            recipients: Vec::new(),
            body: Arc::new(Vec::new()),
            ret: None,
            envid: None,
            smtputf8: false,
            announce_8bit: false,
            origin: Some(Origin {
                addr: "192.0.2.7".parse().unwrap(),
                helo: "client one+x".into(),
            }),
        };
        let all: Vec<String> = ["NAME", "ADDR", "PROTO", "HELO", "LOGIN"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            String::from_utf8(m.xclient_command(&all)).unwrap(),
            "XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.7 HELO=client+20one+2Bx PROTO=ESMTP\r\n"
        );
        let v6 = Outgoing {
            origin: Some(Origin {
                addr: "2001:db8::1".parse().unwrap(),
                helo: String::new(),
            }),
            ..m.clone()
        };
        assert_eq!(
            String::from_utf8(v6.xclient_command(&["ADDR".into(), "HELO".into()])).unwrap(),
            "XCLIENT ADDR=IPV6:2001:db8::1 HELO=[UNAVAILABLE]\r\n"
        );
        let bounce = Outgoing { origin: None, ..m };
        assert_eq!(
            String::from_utf8(bounce.xclient_command(&all)).unwrap(),
            "XCLIENT NAME=[UNAVAILABLE] ADDR=[UNAVAILABLE] HELO=[UNAVAILABLE] PROTO=[UNAVAILABLE]\r\n"
        );
    }
}
