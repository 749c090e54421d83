//! One recipient's message from a transmission: its data layered (recipient substitution
//! data, recipient metadata, transmission substitution data, transmission metadata, then
//! `address.email`, `address.name` and `email`), its templates rendered, its MIME built by
//! mail-builder (or its `email_rfc822` rendered as a whole). The caller passes the time and the
//! Message-ID, so this reads no clock.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::raw::Raw;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::request::{Content, Recipient, Transmission};
use crate::template::Scope;

/// A message ready for reception.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The envelope sender: `return_path`, else the From address.
    pub sender: String,
    pub recipient: String,
    /// CRLF line ends.
    pub message: Vec<u8>,
}

impl Transmission {
    /// The message for recipient `i`. `now` is seconds since the epoch; `message_id` is the
    /// Message-ID without angle brackets.
    pub fn generate(&self, i: usize, now: u64, message_id: &str) -> Result<Generated, ApiError> {
        let r = &self.recipients[i];
        let mut addr = Map::new();
        addr.insert(
            "address".into(),
            json!({ "email": r.email, "name": r.name.clone().unwrap_or_default() }),
        );
        addr.insert("email".into(), Value::String(r.email.clone()));
        let scope = Scope {
            layers: vec![
                &r.substitution_data,
                &r.metadata,
                &self.substitution_data,
                &self.metadata,
                &addr,
            ],
        };
        let (from, message) = match &self.content {
            Content::Rfc822(t) => {
                // An `email_rfc822` pasted into JSON often has bare LFs.
                let message =
                    bindery_smtp::line_ends::crlf(t.render(&scope).as_bytes()).into_owned();
                // Without a return_path the envelope sender is the message's From.
                let from = mail_parser::MessageParser::default()
                    .parse_headers(&message)
                    .and_then(|m| {
                        m.from()
                            .and_then(|f| f.first())
                            .and_then(|a| a.address())
                            .map(str::to_string)
                    })
                    .unwrap_or_default();
                (from, message)
            }
            Content::Inline(c) => {
                let from_email = c.from_email.render(&scope);
                let from_name = c.from_name.as_ref().map(|t| t.render(&scope));
                let mut b = MessageBuilder::new()
                    .from(Address::new_address(from_name, from_email.clone()))
                    .to(to_header(r))
                    .subject(c.subject.render(&scope))
                    .message_id(message_id.to_string())
                    .date(now as i64);
                if let Some(rt) = &c.reply_to {
                    b = b.reply_to(Address::new_address(None::<String>, rt.render(&scope)));
                }
                for (name, t) in &c.headers {
                    let v = t.render(&scope);
                    if v.contains(['\r', '\n']) {
                        return Err(ApiError::mime(format!(
                            "header {name} has a line break after substitution"
                        )));
                    }
                    b = b.header(name.clone(), Raw::new(v));
                }
                if let Some(t) = &c.text {
                    b = b.text_body(t.render(&scope));
                }
                if let Some(t) = &c.html {
                    b = b.html_body(t.render(&scope));
                }
                for p in &c.attachments {
                    b = b.attachment(p.content_type.clone(), p.name.clone(), p.data.clone());
                }
                for p in &c.inline_images {
                    b = b.inline(p.content_type.clone(), p.name.clone(), p.data.clone());
                }
                let bytes = b
                    .write_to_vec()
                    .map_err(|e| ApiError::mime(format!("cannot build the message: {e}")))?;
                (from_email, bytes)
            }
        };
        Ok(Generated {
            sender: self.return_path.clone().unwrap_or(from),
            recipient: r.email.clone(),
            message,
        })
    }
}

/// The To header: `header_to` where a copy shows someone else, else the recipient.
fn to_header(r: &Recipient) -> Address<'static> {
    match &r.header_to {
        Some(h) => Address::new_address(None::<String>, h.clone()),
        None => Address::new_address(r.name.clone(), r.email.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Transmission {
        Transmission::from_json(&v).expect("valid")
    }

    #[test]
    fn recipient_data_wins_and_html_is_escaped() {
        let t = parse(json!({
            "return_path": "bounces@x.test",
            "substitution_data": {"name": "everyone", "sender": "Bindery"},
            "metadata": {"tier": "meta"},
            "recipients": [
                {"address": {"email": "a@y.test", "name": "Ann"}, "substitution_data": {"name": "<Ann>"}},
                {"address": {"email": "b@y.test"}, "metadata": {"tier": "gold"}}
            ],
            "content": {"from": {"email": "news@x.test", "name": "{{sender}} News"},
                        "subject": "For {{name}}",
                        "text": "Hi {{name}} ({{tier}}) at {{address.email}}",
                        "html": "<b>{{name}}</b>",
                        "headers": {"X-Tier": "{{tier}}"}}
        }));
        let a = t.generate(0, 1_700_000_000, "id1@x.test").unwrap();
        assert_eq!(a.sender, "bounces@x.test");
        let text = String::from_utf8(a.message).unwrap();
        assert!(text.contains("Subject: For <Ann>"), "{text}");
        assert!(text.contains("Hi <Ann> (meta) at a@y.test"), "{text}");
        assert!(text.contains("<b>&lt;Ann&gt;</b>"), "{text}");
        assert!(
            text.contains("From: \"Bindery News\" <news@x.test>"),
            "{text}"
        );
        assert!(text.contains("To: \"Ann\" <a@y.test>"), "{text}");
        assert!(text.contains("Message-ID: <id1@x.test>"), "{text}");
        assert!(text.contains("X-Tier: meta"), "{text}");
        let b =
            String::from_utf8(t.generate(1, 1_700_000_000, "id2@x.test").unwrap().message).unwrap();
        assert!(b.contains("Hi everyone (gold) at b@y.test"), "{b}");
        assert!(b.contains("X-Tier: gold"), "{b}");
    }

    #[test]
    fn rfc822_content_is_rendered_whole_with_crlf() {
        let t = parse(json!({
            "recipients": [{"address": "r@y.test", "substitution_data": {"n": "Zed"}}],
            "content": {"email_rfc822": "From: a@x.test\nTo: {{email}}\nSubject: hi\n\nHello {{n}}\n"}
        }));
        let g = t.generate(0, 0, "x@y").unwrap();
        assert_eq!(
            g.message,
            b"From: a@x.test\r\nTo: r@y.test\r\nSubject: hi\r\n\r\nHello Zed\r\n"
        );
        assert_eq!(
            (g.sender.as_str(), g.recipient.as_str()),
            ("a@x.test", "r@y.test")
        );
    }
}
