//! Delivery status notifications (RFC 3464): the bounce sent to the envelope sender when
//! recipients fail, the success report asked for with `NOTIFY=SUCCESS`, and the delay notice
//! Momentum's `delay_dsn` module sends while mail waits (`generate_delay_dsn`).
//!
//! The MIME tree is built with mail-builder; the `message/delivery-status` body is written
//! here field by field, because its format is the part receivers parse (Sisimai, Python's
//! `email`, every mailbox provider's bounce processor) and it must be exact.

use std::fmt::Write as _;

use bindery_smtp::received::rfc5322_date;
use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::MimePart;

use crate::options::InlineOriginal;

/// Failure (bounce) or success report. A success report says `Action: relayed`: we handed
/// the message to a server that does not offer DSN, so the report comes from us (RFC 3461
/// §6.2.1); a server that offers DSN gets NOTIFY passed on and reports itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    Failure,
    Success,
    /// `Action: delayed`: a warning, the mail is still being retried.
    Delay,
}

/// One recipient's line in the report.
#[derive(Clone, Debug)]
pub struct ReportRecipient {
    pub address: String,
    /// The ORCPT parameter as received (`rfc822;a@b`).
    pub orcpt: Option<String>,
    /// `x.y.z`.
    pub status: String,
    /// The host that answered, when one did.
    pub remote_mta: Option<String>,
    /// The reply, as one line (`550 5.1.1 no such user`).
    pub diagnostic: String,
}

/// Everything a report says.
#[derive(Clone, Debug)]
pub struct Report<'a> {
    pub kind: ReportKind,
    /// Our host name, for Reporting-MTA and the Message-ID.
    pub hostname: &'a str,
    /// `From:` (the `mailerdaemon` option or `mailer-daemon@hostname`).
    pub from: &'a str,
    /// The original envelope sender: the report's only recipient.
    pub to: &'a str,
    /// The new message's id, for its Message-ID.
    pub id: &'a str,
    /// The original message's id, quoted in the text.
    pub original_id: &'a str,
    pub envid: Option<&'a str>,
    /// When the original arrived and when this report is made (seconds since the epoch).
    pub arrival: u64,
    pub now: u64,
    /// A delay notice's `Will-Retry-Until` (RFC 3464 §2.3.9): when the message expires.
    pub retry_until: Option<u64>,
    pub recipients: Vec<ReportRecipient>,
    /// The original message as stored.
    pub original: &'a [u8],
    /// How much of it to return: the configuration's choice, narrowed by the sender's RET.
    pub inline: InlineOriginal,
}

/// The header section of a message (up to and including the blank line's first CRLF).
pub fn header_section(msg: &[u8]) -> &[u8] {
    match msg.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => &msg[..i + 2],
        None => msg,
    }
}

/// The `message/delivery-status` body: per-message fields, then one group per recipient.
pub fn delivery_status(r: &Report<'_>) -> String {
    let mut s = String::new();
    let _ = write!(s, "Reporting-MTA: dns; {}\r\n", r.hostname);
    if let Some(envid) = r.envid {
        let _ = write!(s, "Original-Envelope-Id: {envid}\r\n");
    }
    let _ = write!(s, "Arrival-Date: {}\r\n", rfc5322_date(r.arrival));
    let action = match r.kind {
        ReportKind::Failure => "failed",
        ReportKind::Success => "relayed",
        ReportKind::Delay => "delayed",
    };
    for rc in &r.recipients {
        s.push_str("\r\n");
        let _ = write!(s, "Final-Recipient: rfc822; {}\r\n", rc.address);
        if let Some(o) = &rc.orcpt {
            match o.split_once(';') {
                Some((t, a)) => {
                    let _ = write!(s, "Original-Recipient: {}; {}\r\n", t.trim(), a.trim());
                }
                None => {
                    let _ = write!(s, "Original-Recipient: rfc822; {o}\r\n");
                }
            }
        }
        let _ = write!(s, "Action: {action}\r\n");
        let _ = write!(s, "Status: {}\r\n", rc.status);
        if let Some(m) = &rc.remote_mta {
            let _ = write!(s, "Remote-MTA: dns; {m}\r\n");
        }
        let _ = write!(s, "Diagnostic-Code: smtp; {}\r\n", rc.diagnostic);
        let _ = write!(s, "Last-Attempt-Date: {}\r\n", rfc5322_date(r.now));
        if let (ReportKind::Delay, Some(t)) = (r.kind, r.retry_until) {
            let _ = write!(s, "Will-Retry-Until: {}\r\n", rfc5322_date(t));
        }
    }
    s
}

fn human_text(r: &Report<'_>) -> String {
    let mut s = String::new();
    let _ = write!(s, "This is the mail system at host {}.\r\n\r\n", r.hostname);
    match r.kind {
        ReportKind::Failure => s.push_str(
            "I'm sorry to have to inform you that your message could not\r\n\
             be delivered to one or more recipients. It's attached below.\r\n",
        ),
        ReportKind::Success => s.push_str(
            "Your message was successfully delivered to the destination(s)\r\n\
             listed below, as you asked with NOTIFY=SUCCESS.\r\n",
        ),
        ReportKind::Delay => {
            s.push_str(
                "This is a warning only; you do not need to send your message again.\r\n\
                 It could not be delivered yet to the recipients below, and delivery\r\n\
                 is still being tried",
            );
            match r.retry_until {
                Some(t) => {
                    let _ = write!(s, " until {}.\r\n", rfc5322_date(t));
                }
                None => s.push_str(".\r\n"),
            }
        }
    }
    let _ = write!(s, "\r\nMessage id: {}\r\n\r\n", r.original_id);
    for rc in &r.recipients {
        let _ = write!(s, "<{}>: {}", rc.address, rc.diagnostic);
        if let Some(m) = &rc.remote_mta {
            let _ = write!(s, " (remote host {m})");
        }
        s.push_str("\r\n");
    }
    s
}

/// The whole report message, ready for the spool (CRLF line ends).
pub fn build(r: &Report<'_>) -> Vec<u8> {
    let subject = match r.kind {
        ReportKind::Failure => "Undelivered Mail Returned to Sender",
        ReportKind::Success => "Successful Mail Delivery Report",
        ReportKind::Delay => "Delayed Mail (still being retried)",
    };
    let mut parts = vec![
        MimePart::new(
            ContentType::new("text/plain").attribute("charset", "utf-8"),
            human_text(r),
        )
        .header(
            "Content-Transfer-Encoding",
            mail_builder::headers::raw::Raw::new("8bit"),
        ),
        MimePart::new(
            ContentType::new("message/delivery-status"),
            delivery_status(r).into_bytes(),
        )
        .header(
            "Content-Transfer-Encoding",
            mail_builder::headers::raw::Raw::new("7bit"),
        ),
    ];
    let eight_bit = r.original.iter().any(|&b| b >= 0x80);
    let cte = if eight_bit { "8bit" } else { "7bit" };
    match r.inline {
        InlineOriginal::None => {}
        InlineOriginal::Headers => parts.push(
            MimePart::new(
                ContentType::new("text/rfc822-headers"),
                header_section(r.original).to_vec(),
            )
            .header(
                "Content-Transfer-Encoding",
                mail_builder::headers::raw::Raw::new(cte),
            ),
        ),
        InlineOriginal::All => parts.push(
            MimePart::new(ContentType::new("message/rfc822"), r.original.to_vec()).header(
                "Content-Transfer-Encoding",
                mail_builder::headers::raw::Raw::new(cte),
            ),
        ),
    }
    let body = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        parts,
    );
    let msg = MessageBuilder::new()
        .from(r.from)
        .to(r.to)
        .subject(subject)
        .date(r.now)
        .message_id(format!("{}@{}", r.id, r.hostname))
        .header(
            "Auto-Submitted",
            mail_builder::headers::raw::Raw::new("auto-replied"),
        )
        .body(body);
    msg.write_to_vec().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    use mail_parser::MimeHeaders;

    fn report(inline: InlineOriginal) -> Vec<u8> {
        report_of(ReportKind::Failure, inline)
    }

    fn report_of(kind: ReportKind, inline: InlineOriginal) -> Vec<u8> {
        build(&Report {
            kind,
            hostname: "mta.test",
            from: "mailer-daemon@mta.test",
            to: "sender@origin.test",
            id: "00000001AAAAAAAA",
            original_id: "00000000BBBBBBBB",
            envid: Some("ENV1"),
            arrival: 1_700_000_000,
            now: 1_700_000_100,
            retry_until: Some(1_700_432_000),
            recipients: vec![ReportRecipient {
                address: "nobody@dest.test".into(),
                orcpt: Some("rfc822;nobody@dest.test".into()),
                status: "5.1.1".into(),
                remote_mta: Some("mx.dest.test".into()),
                diagnostic: "550 5.1.1 <nobody@dest.test>: no such user".into(),
            }],
            original: b"Subject: hello\r\nFrom: sender@origin.test\r\n\r\nbody line\r\n",
            inline,
        })
    }

    #[test]
    fn report_parses_as_multipart_report() {
        let bytes = report(InlineOriginal::Headers);
        let text = String::from_utf8(bytes.clone()).unwrap();
        if std::env::var_os("BINDERY_SHOW_DSN").is_some() {
            println!("{text}");
        }
        assert!(
            text.contains("report-type=\"delivery-status\"")
                || text.contains("report-type=delivery-status"),
            "{text}"
        );
        assert!(text.contains("Final-Recipient: rfc822; nobody@dest.test\r\n"));
        assert!(text.contains("Original-Recipient: rfc822; nobody@dest.test\r\n"));
        assert!(text.contains("Status: 5.1.1\r\n"));
        assert!(text.contains("Action: failed\r\n"));
        assert!(
            text.contains("Message-ID: <00000001AAAAAAAA@mta.test>"),
            "{text}"
        );
        assert!(!text.contains("body line"), "headers only");
        let msg = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(msg.subject(), Some("Undelivered Mail Returned to Sender"));
        let ct = msg.content_type().unwrap();
        assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("report")));
        assert_eq!(msg.parts.len(), 4, "root + text + status + headers");
        assert!(
            String::from_utf8(report(InlineOriginal::All))
                .unwrap()
                .contains("body line")
        );
        assert!(
            !String::from_utf8(report(InlineOriginal::None))
                .unwrap()
                .contains("Subject: hello")
        );
    }

    #[test]
    fn a_delay_notice_says_delayed_and_until_when() {
        let bytes = report_of(ReportKind::Delay, InlineOriginal::Headers);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("Action: delayed\r\n"), "{text}");
        assert!(
            text.contains("Will-Retry-Until: Sun, 19 Nov 2023 22:13:20 +0000\r\n"),
            "{text}"
        );
        assert!(text.contains("This is a warning only"), "{text}");
        let msg = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(msg.subject(), Some("Delayed Mail (still being retried)"));
        // A bounce carries no Will-Retry-Until.
        let bounce = String::from_utf8(report(InlineOriginal::None)).unwrap();
        assert!(!bounce.contains("Will-Retry-Until"), "{bounce}");
    }
}
