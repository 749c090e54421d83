//! The responsible domain of a message: the domain of the `Sender:` address, else of the
//! first `From:` address (RFC 6376 §3.9's "author or sender"; Momentum's `%{d}`).
//!
//! mail-parser reads the header fields, so RFC 2047 encoded words (a display name
//! `=?UTF-8?B?...?=`, Momentum's MO-4211/4370), comments, groups and folded lines all come
//! out as the address they hide.

use mail_parser::MessageParser;

/// The responsible domain, lowercased; `None` when neither field holds an address.
pub fn responsible_domain(message: &[u8]) -> Option<String> {
    let parsed = MessageParser::new().parse_headers(message)?;
    [parsed.sender(), parsed.from()]
        .into_iter()
        .flatten()
        .find_map(|a| {
            let addr = a.first()?.address()?;
            let (_, domain) = addr.rsplit_once('@')?;
            let domain = domain.trim().trim_end_matches('>');
            (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_before_from() {
        let m = b"From: a@From.Example\r\nSender: b@sender.example\r\n\r\nbody\r\n";
        assert_eq!(responsible_domain(m).as_deref(), Some("sender.example"));
        let m = b"From: \"A\" <a@From.Example>\r\n\r\n";
        assert_eq!(responsible_domain(m).as_deref(), Some("from.example"));
    }

    #[test]
    fn encoded_words_and_folds() {
        let m = b"From: =?UTF-8?B?w4lsw6hhbm9y?=\r\n <eleanor@utf8.example>\r\n\r\n";
        assert_eq!(responsible_domain(m).as_deref(), Some("utf8.example"));
        let m = b"From: (comment) =?ISO-8859-1?Q?Andr=E9?= <andre@q.example> \r\n\r\n";
        assert_eq!(responsible_domain(m).as_deref(), Some("q.example"));
    }

    #[test]
    fn none_without_an_address() {
        assert_eq!(responsible_domain(b"Subject: x\r\n\r\n"), None);
        assert_eq!(responsible_domain(b"From: undisclosed\r\n\r\n"), None);
        assert_eq!(responsible_domain(b""), None);
    }
}
