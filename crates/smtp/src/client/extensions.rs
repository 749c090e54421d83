//! What the remote server said it supports in its EHLO reply.

use super::response::Response;

/// The ESMTP extensions the client acts on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// The server answered EHLO (not only HELO).
    pub esmtp: bool,
    pub pipelining: bool,
    pub starttls: bool,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
    pub dsn: bool,
    pub enhanced_status_codes: bool,
    /// The SIZE limit, when announced with a value (0 means announced without a limit).
    pub size: Option<u64>,
    /// Postfix's XCLIENT, with the attribute names the server takes (upper case).
    pub xclient: Option<Vec<String>>,
    /// AUTH (RFC 4954) with the mechanisms offered (upper case); `AUTH=` lines of old
    /// servers count too.
    pub auth: Option<Vec<String>>,
}

impl Extensions {
    /// Reads a 250 EHLO reply. The first line is the server's greeting name; each further
    /// line is a keyword and its parameters (RFC 5321 §4.1.1.1).
    pub fn from_ehlo(reply: &Response) -> Extensions {
        let mut ext = Extensions {
            esmtp: true,
            ..Extensions::default()
        };
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => ext.pipelining = true,
                "STARTTLS" => ext.starttls = true,
                "8BITMIME" => ext.eight_bit_mime = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "DSN" => ext.dsn = true,
                "ENHANCEDSTATUSCODES" => ext.enhanced_status_codes = true,
                "SIZE" => ext.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "XCLIENT" => {
                    ext.xclient = Some(words.map(|w| w.to_ascii_uppercase()).collect());
                }
                k if k == "AUTH" || k.starts_with("AUTH=") => {
                    let first = k.strip_prefix("AUTH=").filter(|m| !m.is_empty());
                    let list = ext.auth.get_or_insert_with(Vec::new);
                    for m in first
                        .map(str::to_string)
                        .into_iter()
                        .chain(words.map(|w| w.to_ascii_uppercase()))
                    {
                        if !list.contains(&m) {
                            list.push(m);
                        }
                    }
                }
                _ => {}
            }
        }
        ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keywords_case_insensitively() {
        let r = Response {
            code: 250,
            lines: vec![
                "mx.example hello".into(),
                "pipelining".into(),
                "SIZE 1000".into(),
                "STARTTLS".into(),
                "DSN".into(),
                "8BITMIME".into(),
                "AUTH PLAIN".into(),
                "XCLIENT name addr PROTO HELO".into(),
            ],
        };
        let e = Extensions::from_ehlo(&r);
        assert!(e.esmtp && e.pipelining && e.starttls && e.dsn && e.eight_bit_mime);
        assert!(!e.smtputf8);
        assert_eq!(e.size, Some(1000));
        assert_eq!(e.auth.as_deref(), Some(&["PLAIN".to_string()][..]));
        assert_eq!(
            e.xclient.as_deref(),
            Some(&["NAME", "ADDR", "PROTO", "HELO"].map(String::from)[..])
        );
    }
}
