//! Out-of-band mail read for what it says about mail we sent: a delivery status notification
//! (RFC 3464, `multipart/report; report-type=delivery-status`), a feedback report (ARF, RFC
//! 5965, `report-type=feedback-report`), or anything else that came back (an auto-reply, a
//! bounce in no standard form), which Momentum calls an MDN.
//!
//! What ties it to the original message, best first:
//! - bindery's own trace field in the returned headers (`Received: ... by HOST (Bindery) with
//!   ESMTP id ID`): the original's spool id;
//! - Momentum's FBL header (`X-MSFBL` by default): base64 of
//!   `rcptlocal@rcptdomain@binding@bindinggroup@userstring` (`modules/fbl.md`);
//! - the returned `Message-ID`, and the DSN's `Original-Envelope-Id` (RFC 3461's ENVID).
//!
//! Sans-IO: bytes in, a [`Report`] out. A message that is not a report at all is still read
//! (its text is what the MDN rules classify); one that claims to be a report and breaks its
//! standard (no status part, no recipient, no feedback type) is read the same way, with
//! [`Report::malformed`] saying why, for the caller to log: ten of the 629 real bounces of
//! sisimai/set-of-emails are such, and their text still classifies.

use base64::Engine as _;
use mail_parser::{MessageParser, MimeHeaders, PartType};

/// What kind of mail came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// RFC 3464 delivery status notification.
    Dsn,
    /// RFC 5965 feedback report (a complaint).
    Arf,
    /// Neither: an auto-reply or a bounce in no standard form.
    Other,
}

/// One recipient block of a DSN (RFC 3464 section 2.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DsnRecipient {
    /// `Original-Recipient`, else `Final-Recipient`, without its address type.
    pub address: String,
    pub action: String,
    pub status: String,
    /// `Diagnostic-Code`, without its type (`smtp;`).
    pub diagnostic: String,
    pub remote_mta: String,
}

/// An FBL report's fields (RFC 5965 section 3.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Feedback {
    /// `Feedback-Type`: abuse, fraud, virus, other, not-spam (lowercase).
    pub feedback_type: String,
    pub user_agent: String,
    /// `Original-Rcpt-To`.
    pub original_rcpt: String,
    /// `Original-Mail-From`.
    pub original_mail_from: String,
    pub reported_domain: String,
    pub source_ip: String,
}

/// Momentum's FBL header, decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FblMark {
    pub rcpt: String,
    pub binding: String,
    pub binding_group: String,
    pub user_string: String,
}

/// What a report says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub kind: Option<Kind>,
    pub recipients: Vec<DsnRecipient>,
    pub feedback: Option<Feedback>,
    /// `Original-Envelope-Id` of the DSN.
    pub envid: String,
    /// `Reporting-MTA`, without its type.
    pub reporting_mta: String,
    /// The returned message's `Message-ID`.
    pub original_message_id: String,
    /// The spool id bindery gave the original (from its own `Received` field).
    pub original_id: String,
    /// The FBL header of the returned message, decoded.
    pub mark: Option<FblMark>,
    /// The report's own `Subject`.
    pub subject: String,
    /// The text the MDN rules classify: `Auto-Submitted`, the subject and the
    /// human-readable part, at most [`TEXT_MAX`] bytes.
    pub text: String,
    /// A report that breaks its own standard (a DSN without its status part, an ARF report
    /// without a `Feedback-Type`): read as [`Kind::Other`], and this says why, for the log.
    pub malformed: Option<ReportError>,
}

/// How much of a report's human-readable text is kept for classification.
pub const TEXT_MAX: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("not a MIME message")]
    Unparsable,
    #[error("a multipart/report of type {0} without its {0} part")]
    MissingPart(String),
    #[error("a delivery status notification that names no recipient")]
    NoRecipient,
    #[error("a feedback report without a Feedback-Type")]
    NoFeedbackType,
}

/// Header blocks (`Name: value` lines, folded continuation lines, blocks parted by blank
/// lines), names lowercased: the body of `message/delivery-status` and
/// `message/feedback-report`.
fn blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if out.last().is_some_and(|b| !b.is_empty()) {
                out.push(Vec::new());
            }
            continue;
        }
        let block = out.last_mut().expect("never empty");
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = block.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((n, v)) = line.split_once(':') {
            block.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    out.retain(|b| !b.is_empty());
    out
}

fn field<'a>(block: &'a [(String, String)], name: &str) -> Option<&'a str> {
    block
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `rfc822; a@b` -> `a@b`; `smtp; 550 ...` -> `550 ...`.
fn untyped(v: &str) -> String {
    let v = match v.split_once(';') {
        Some((t, rest)) if !t.contains(' ') && !t.contains('@') => rest,
        _ => v,
    };
    v.trim().trim_matches(['<', '>']).to_string()
}

/// The id in bindery's own trace field among `headers` (raw header section text):
/// `by HOST (Bindery) with PROTO id ID`.
pub fn our_id(headers: &str) -> Option<String> {
    let i = headers.find("(Bindery) with ")?;
    let rest = &headers[i..];
    let j = rest.find(" id ")?;
    let id: String = rest[j + 4..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ';')
        .collect();
    (!id.is_empty()).then_some(id)
}

/// Decodes Momentum's FBL header value.
pub fn decode_mark(value: &str) -> Option<FblMark> {
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()?;
    let s = String::from_utf8(bytes).ok()?;
    let f: Vec<&str> = s.splitn(5, '@').collect();
    let [local, domain, binding, group, rest @ ..] = f.as_slice() else {
        return None;
    };
    Some(FblMark {
        rcpt: format!("{local}@{domain}"),
        binding: binding.to_string(),
        binding_group: group.to_string(),
        user_string: rest.first().map(|s| s.to_string()).unwrap_or_default(),
    })
}

/// Encodes Momentum's FBL header value.
pub fn encode_mark(m: &FblMark) -> String {
    let (local, domain) = m.rcpt.rsplit_once('@').unwrap_or((m.rcpt.as_str(), ""));
    base64::engine::general_purpose::STANDARD.encode(format!(
        "{local}@{domain}@{}@{}@{}",
        m.binding, m.binding_group, m.user_string
    ))
}

/// The raw header section of `raw` (up to the first blank line).
fn header_section(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let end = text
        .find("\r\n\r\n")
        .or_else(|| text.find("\n\n"))
        .unwrap_or(text.len());
    text[..end].to_string()
}

fn header_value(section: &str, name: &str) -> Option<String> {
    let b = blocks(section);
    b.first()
        .and_then(|h| field(h, &name.to_ascii_lowercase()))
        .map(str::to_string)
}

fn push_text(out: &mut String, s: &str) {
    if out.len() >= TEXT_MAX {
        return;
    }
    let room = TEXT_MAX - out.len();
    let mut cut = s.len().min(room);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    out.push_str(&s[..cut]);
    out.push('\n');
}

impl Report {
    /// The class of a DSN recipient: its `Diagnostic-Code` read as an SMTP reply to its
    /// domain, or, without one, its status and the report's text.
    pub fn recipient_class(&self, c: &crate::Classifier, rc: &DsnRecipient) -> u16 {
        let domain = rc.address.rsplit_once('@').map_or("", |(_, d)| d);
        if rc.diagnostic.is_empty() {
            c.smtp(&format!("{} {}", rc.status, self.text), domain)
                .class
        } else {
            c.smtp(&rc.diagnostic, domain).class
        }
    }

    /// The original message's id where the report names it, else `own` (the report's).
    pub fn original_or<'a>(&'a self, own: &'a str) -> &'a str {
        if self.original_id.is_empty() {
            own
        } else {
            &self.original_id
        }
    }
}

/// Reads `raw`. `fbl_header` is the FBL header's name (Momentum's `Header_Name`,
/// `X-MSFBL` by default).
pub fn parse(raw: &[u8], fbl_header: &str) -> Result<Report, ReportError> {
    let msg = MessageParser::default()
        .parse(raw)
        .ok_or(ReportError::Unparsable)?;
    let mut r = Report {
        subject: msg.subject().unwrap_or("").to_string(),
        ..Report::default()
    };
    let top = header_section(raw);
    if let Some(v) = header_value(&top, "auto-submitted") {
        push_text(&mut r.text, &format!("auto-submitted: {v}"));
    }
    push_text(&mut r.text, &r.subject.clone());
    let report_type = msg
        .content_type()
        .filter(|c| {
            c.ctype().eq_ignore_ascii_case("multipart")
                && c.subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        })
        .and_then(|c| c.attribute("report-type"))
        .map(|t| t.to_ascii_lowercase());
    let mut status_part = None;
    let mut feedback_part = None;
    let mut original: Option<String> = None;
    let mut human = false;
    for part in msg.parts.iter() {
        let Some(ct) = part.content_type() else {
            if !human && let PartType::Text(t) = &part.body {
                push_text(&mut r.text, t);
                human = true;
            }
            continue;
        };
        let full = format!(
            "{}/{}",
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or("").to_ascii_lowercase()
        );
        match full.as_str() {
            "message/delivery-status" | "message/global-delivery-status" => {
                status_part = Some(String::from_utf8_lossy(part.contents()).into_owned());
            }
            "message/feedback-report" => {
                feedback_part = Some(String::from_utf8_lossy(part.contents()).into_owned());
            }
            "message/rfc822"
            | "message/global"
            | "text/rfc822-headers"
            | "message/rfc822-headers"
            | "message/global-headers"
                if original.is_none() =>
            {
                original = Some(header_section(part.contents()));
            }
            "text/plain" if !human => {
                if let PartType::Text(t) = &part.body {
                    push_text(&mut r.text, t);
                    human = true;
                }
            }
            _ => {}
        }
    }
    if let Some(h) = &original {
        r.original_message_id = header_value(h, "message-id")
            .map(|v| v.trim().trim_matches(['<', '>']).to_string())
            .unwrap_or_default();
        r.original_id = our_id(h).unwrap_or_default();
        r.mark = header_value(h, fbl_header).and_then(|v| decode_mark(&v));
    }
    if let Err(e) = structured(&mut r, report_type.as_deref(), status_part, feedback_part) {
        r.kind = Some(Kind::Other);
        r.recipients.clear();
        r.feedback = None;
        r.malformed = Some(e);
    }
    Ok(r)
}

/// Reads the machine-readable part a report's type promises.
fn structured(
    r: &mut Report,
    report_type: Option<&str>,
    status_part: Option<String>,
    feedback_part: Option<String>,
) -> Result<(), ReportError> {
    match report_type {
        Some("delivery-status") => {
            let text =
                status_part.ok_or_else(|| ReportError::MissingPart("delivery-status".into()))?;
            let b = blocks(&text);
            let mut iter = b.iter();
            if let Some(per_message) = iter.next() {
                r.envid = field(per_message, "original-envelope-id")
                    .unwrap_or("")
                    .to_string();
                r.reporting_mta = field(per_message, "reporting-mta")
                    .map(untyped)
                    .unwrap_or_default();
            }
            for block in b.iter() {
                let address =
                    field(block, "original-recipient").or_else(|| field(block, "final-recipient"));
                let Some(address) = address else { continue };
                r.recipients.push(DsnRecipient {
                    address: untyped(address),
                    action: field(block, "action").unwrap_or("").to_ascii_lowercase(),
                    status: field(block, "status").unwrap_or("").to_string(),
                    diagnostic: field(block, "diagnostic-code")
                        .map(untyped)
                        .unwrap_or_default(),
                    remote_mta: field(block, "remote-mta").map(untyped).unwrap_or_default(),
                });
            }
            if r.recipients.is_empty() {
                return Err(ReportError::NoRecipient);
            }
            r.kind = Some(Kind::Dsn);
        }
        Some("feedback-report") => {
            let text =
                feedback_part.ok_or_else(|| ReportError::MissingPart("feedback-report".into()))?;
            let b = blocks(&text);
            let f = b.first().cloned().unwrap_or_default();
            let feedback_type = field(&f, "feedback-type")
                .ok_or(ReportError::NoFeedbackType)?
                .to_ascii_lowercase();
            r.feedback = Some(Feedback {
                feedback_type,
                user_agent: field(&f, "user-agent").unwrap_or("").to_string(),
                original_rcpt: field(&f, "original-rcpt-to")
                    .map(untyped)
                    .unwrap_or_default(),
                original_mail_from: field(&f, "original-mail-from")
                    .map(untyped)
                    .unwrap_or_default(),
                reported_domain: field(&f, "reported-domain").unwrap_or("").to_string(),
                source_ip: field(&f, "source-ip").unwrap_or("").to_string(),
            });
            r.kind = Some(Kind::Arf);
        }
        _ => r.kind = Some(Kind::Other),
    }
    Ok(())
}

/// The addresses in `text`, in order, lowercased, without duplicates: the candidates for
/// an MDN's original recipient where it has no DSN part.
pub fn addresses(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in text.split(|c: char| c.is_whitespace() || "<>()[]\"',;:".contains(c)) {
        let w = word.trim_matches('.');
        let Some((l, d)) = w.split_once('@') else {
            continue;
        };
        if l.is_empty() || !d.contains('.') || d.contains('@') {
            continue;
        }
        let a = w.to_ascii_lowercase();
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSN: &str = "From: MAILER-DAEMON@mx.remote.test\r\n\
To: bounces@bounce.example.com\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain\r\n\
\r\n\
I'm sorry to have to inform you that your message could not be delivered.\r\n\
--b1\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.remote.test\r\n\
Original-Envelope-Id: env-42\r\n\
\r\n\
Final-Recipient: rfc822; gone@remote.test\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
Remote-MTA: dns; mx.remote.test\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <gone@remote.test>: Recipient address\r\n\
\t rejected: User unknown\r\n\
--b1\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
Received: from app ([127.0.0.1])\r\n\
\tby mx.bindery.test (Bindery) with ESMTP id 00/00-1234-ABCDEF01\r\n\
\tfor <gone@remote.test>; Thu, 1 Jan 1970 00:00:00 +0000\r\n\
Message-ID: <orig-1@sender.example.com>\r\n\
X-MSFBL: Z29uZUByZW1vdGUudGVzdEBiMkBzZW5kZXJzQHRlbmFudC03\r\n\
Subject: hello\r\n\
--b1--\r\n";

    #[test]
    fn a_dsn_gives_its_recipient_status_and_the_original() {
        let r = parse(DSN.as_bytes(), "X-MSFBL").unwrap();
        assert_eq!(r.kind, Some(Kind::Dsn));
        assert_eq!(r.envid, "env-42");
        assert_eq!(r.reporting_mta, "mx.remote.test");
        assert_eq!(r.recipients.len(), 1);
        let rc = &r.recipients[0];
        assert_eq!(rc.address, "gone@remote.test");
        assert_eq!(rc.action, "failed");
        assert_eq!(rc.status, "5.1.1");
        assert_eq!(
            rc.diagnostic,
            "550 5.1.1 <gone@remote.test>: Recipient address rejected: User unknown"
        );
        assert_eq!(r.original_id, "00/00-1234-ABCDEF01");
        assert_eq!(r.original_message_id, "orig-1@sender.example.com");
        let m = r.mark.unwrap();
        assert_eq!(
            (
                m.rcpt.as_str(),
                m.binding.as_str(),
                m.binding_group.as_str(),
                m.user_string.as_str()
            ),
            ("gone@remote.test", "b2", "senders", "tenant-7")
        );
        assert!(r.text.contains("could not be delivered"), "{}", r.text);
    }

    #[test]
    fn marks_round_trip() {
        let m = FblMark {
            rcpt: "a@b.test".into(),
            binding: "b2".into(),
            binding_group: "senders".into(),
            user_string: "x".into(),
        };
        assert_eq!(decode_mark(&encode_mark(&m)), Some(m));
        assert_eq!(decode_mark("not base64!"), None);
    }

    #[test]
    fn an_arf_report_gives_its_feedback_type() {
        let arf = "From: feedback@fbl.provider.test\r\n\
To: fbl@fbl.example.com\r\n\
Subject: FW: Earn money\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"p\"\r\n\
\r\n\
--p\r\n\
Content-Type: text/plain\r\n\
\r\n\
This is an email abuse report.\r\n\
--p\r\n\
Content-Type: message/feedback-report\r\n\
\r\n\
Feedback-Type: abuse\r\n\
User-Agent: SomeGenerator/1.0\r\n\
Version: 1\r\n\
Original-Mail-From: <bounces@sender.example.com>\r\n\
Original-Rcpt-To: <user@provider.test>\r\n\
Source-IP: 127.0.0.2\r\n\
Reported-Domain: sender.example.com\r\n\
--p\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Received: from app ([127.0.0.1]) by mx.bindery.test (Bindery) with ESMTP id 00/00-1-2; Thu, 1 Jan 1970 00:00:00 +0000\r\n\
Message-ID: <orig-2@sender.example.com>\r\n\
Subject: Earn money\r\n\
\r\n\
Spam body.\r\n\
--p--\r\n";
        let r = parse(arf.as_bytes(), "X-MSFBL").unwrap();
        assert_eq!(r.kind, Some(Kind::Arf));
        let f = r.feedback.unwrap();
        assert_eq!(f.feedback_type, "abuse");
        assert_eq!(f.original_rcpt, "user@provider.test");
        assert_eq!(f.source_ip, "127.0.0.2");
        assert_eq!(r.original_id, "00/00-1-2");
        assert_eq!(r.original_message_id, "orig-2@sender.example.com");
    }

    #[test]
    fn broken_reports_are_errors_and_plain_mail_is_other() {
        let malformed = |raw: &str| {
            let r = parse(raw.as_bytes(), "X-MSFBL").unwrap();
            assert_eq!(r.kind, Some(Kind::Other), "read as an MDN");
            r.malformed
        };
        let no_part = "Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n";
        assert_eq!(
            malformed(no_part),
            Some(ReportError::MissingPart("delivery-status".into()))
        );
        let no_rcpt = "Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; a\r\n--x--\r\n";
        assert_eq!(malformed(no_rcpt), Some(ReportError::NoRecipient));
        let no_type = "Content-Type: multipart/report; report-type=feedback-report; boundary=x\r\n\r\n--x\r\nContent-Type: message/feedback-report\r\n\r\nUser-Agent: a\r\n--x--\r\n";
        assert_eq!(malformed(no_type), Some(ReportError::NoFeedbackType));
        let auto = "Auto-Submitted: auto-replied\r\nSubject: Out of Office\r\n\r\nI am away.\r\n";
        let r = parse(auto.as_bytes(), "X-MSFBL").unwrap();
        assert_eq!(r.kind, Some(Kind::Other));
        assert!(
            r.text
                .starts_with("auto-submitted: auto-replied\nOut of Office\n"),
            "{}",
            r.text
        );
        // Bytes that are no message at all still parse as an empty one, or fail cleanly.
        let _ = parse(b"\xff\xfe\x00", "X-MSFBL");
        let _ = parse(b"", "X-MSFBL");
    }

    #[test]
    fn addresses_in_text() {
        assert_eq!(
            addresses("<a@b.test>: unknown; also C@D.test, a@b.test and x@localhost."),
            vec!["a@b.test".to_string(), "c@d.test".to_string()]
        );
    }
}
