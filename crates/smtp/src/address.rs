//! Reverse and forward paths (RFC 5321 §4.1.2), parsed strictly and kept as written.
//!
//! The local part keeps its quoting. Relay decisions depend on it: `"a@evil"@relay.example`
//! must never turn into `a@evil@relay.example` on the way out, so nothing here dequotes.
//! A source route (`<@a,@b:user@c>`) is parsed and dropped, as RFC 5321 §3.3 asks.

use std::fmt;
use std::net::IpAddr;

/// Longest local part (RFC 5321 §4.5.3.1.1).
pub const MAX_LOCAL: usize = 64;
/// Longest domain (RFC 5321 §4.5.3.1.2).
pub const MAX_DOMAIN: usize = 255;
/// Longest path including the angle brackets (RFC 5321 §4.5.3.1.3).
pub const MAX_PATH: usize = 256;

/// The part after `@`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Domain {
    /// A host name, lower-cased.
    Name(String),
    /// An address literal as written between the brackets (`1.2.3.4`, `IPv6:...`).
    Literal(String),
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Domain::Name(n) => f.write_str(n),
            Domain::Literal(l) => write!(f, "[{l}]"),
        }
    }
}

/// `local@domain`, or an unqualified local part such as `<Postmaster>` or `<abuse>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    /// The local part exactly as the client wrote it, quotes and escapes included.
    pub local: String,
    /// `None` for an unqualified address. Only `<Postmaster>` is one by right (RFC 5321
    /// §4.1.1.3); the session qualifies the others with
    /// `Domain_For_Unqualified_*` or refuses them, so none reaches the spool.
    pub domain: Option<Domain>,
}

impl Mailbox {
    /// `u@[192.0.2.1]`: the domain is an address literal.
    pub fn has_literal_domain(&self) -> bool {
        matches!(self.domain, Some(Domain::Literal(_)))
    }

    /// No `@domain`: `<Postmaster>`, or `<abuse>` when unqualified addresses are allowed.
    pub fn is_unqualified(&self) -> bool {
        self.domain.is_none()
    }

    /// The same local part at `domain` (`Domain_For_Unqualified_*`).
    pub fn qualified(&self, domain: &str) -> Mailbox {
        Mailbox {
            local: self.local.clone(),
            domain: Some(Domain::Name(domain.to_ascii_lowercase())),
        }
    }

    pub fn is_quoted(&self) -> bool {
        self.local.starts_with('"')
    }

    /// The local part without quoting, for inspection only (never for output).
    pub fn local_unquoted(&self) -> String {
        if !self.is_quoted() {
            return self.local.clone();
        }
        let inner = &self.local[1..self.local.len() - 1];
        let mut out = String::with_capacity(inner.len());
        let mut escaped = false;
        for c in inner.chars() {
            if !escaped && c == '\\' {
                escaped = true;
                continue;
            }
            escaped = false;
            out.push(c);
        }
        out
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.domain {
            Some(d) => write!(f, "{}@{}", self.local, d),
            None => f.write_str(&self.local),
        }
    }
}

/// Why a path was refused; each maps to a 501/553 reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// No `<`, no `>`, or junk where a path should be.
    Syntax,
    /// A component is longer than RFC 5321 allows.
    TooLong,
    /// Non-ASCII without SMTPUTF8.
    NeedsUtf8,
}

/// Parses `<...>` at the start of `s`. Returns the mailbox (`None` for `<>`) and what follows
/// the closing bracket. `utf8` allows non-ASCII in the local part and domain (SMTPUTF8).
pub fn parse_path(s: &str, utf8: bool) -> Result<(Option<Mailbox>, &str), PathError> {
    parse_path_with(s, utf8, false)
}

/// As [`parse_path`]; with `loose`, spaces between the brackets and the address are ignored
/// (`< user@example.com >`), as Momentum's `Allow_Trailing_Whitespace_In_Commands` does.
pub fn parse_path_with(
    s: &str,
    utf8: bool,
    loose: bool,
) -> Result<(Option<Mailbox>, &str), PathError> {
    let s = s.trim_start_matches(' ');
    let rest = s.strip_prefix('<').ok_or(PathError::Syntax)?;
    let close = find_close(rest).ok_or(PathError::Syntax)?;
    let inner = if loose {
        rest[..close].trim_matches(' ')
    } else {
        &rest[..close]
    };
    let after = &rest[close + 1..];
    if close + 2 > MAX_PATH {
        return Err(PathError::TooLong);
    }
    if !utf8 && !inner.is_ascii() {
        return Err(PathError::NeedsUtf8);
    }
    if inner.is_empty() {
        return Ok((None, after));
    }
    let inner = strip_source_route(inner)?;
    Ok((Some(parse_mailbox(inner)?), after))
}

/// The index of the `>` that closes the path: the first one outside a quoted string.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quoted = false;
    while i < b.len() {
        match b[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'>' if !quoted => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// `@a.example,@b.example:user@c.example` → `user@c.example`, with every hop checked.
fn strip_source_route(s: &str) -> Result<&str, PathError> {
    if !s.starts_with('@') {
        return Ok(s);
    }
    let colon = s.find(':').ok_or(PathError::Syntax)?;
    for hop in s[..colon].split(',') {
        let d = hop.strip_prefix('@').ok_or(PathError::Syntax)?;
        parse_domain(d)?;
    }
    Ok(&s[colon + 1..])
}

/// `local@domain`, or an unqualified dot-string (`Postmaster`, `abuse`): the caller decides
/// whether it may stand (see [`Mailbox::domain`]).
pub fn parse_mailbox(s: &str) -> Result<Mailbox, PathError> {
    if !s.contains('@') && is_dot_string(s) {
        if s.len() > MAX_LOCAL {
            return Err(PathError::TooLong);
        }
        return Ok(Mailbox {
            local: s.to_string(),
            domain: None,
        });
    }
    let at = local_end(s)?;
    let (local, domain) = (&s[..at], &s[at + 1..]);
    if local.len() > MAX_LOCAL {
        return Err(PathError::TooLong);
    }
    Ok(Mailbox {
        local: local.to_string(),
        domain: Some(parse_domain(domain)?),
    })
}

/// Checks the local part and returns the index of the `@` after it.
fn local_end(s: &str) -> Result<usize, PathError> {
    let b = s.as_bytes();
    if b.first() == Some(&b'"') {
        let mut i = 1;
        loop {
            match b.get(i) {
                None => return Err(PathError::Syntax),
                Some(b'"') => break,
                Some(b'\\') => match b.get(i + 1) {
                    Some(&c) if (32..=126).contains(&c) => i += 2,
                    _ => return Err(PathError::Syntax),
                },
                // qtextSMTP: printable ASCII except `"` and `\`; UTF-8 under SMTPUTF8.
                Some(&c) if (32..=126).contains(&c) || c >= 0x80 => i += 1,
                Some(_) => return Err(PathError::Syntax),
            }
        }
        return match b.get(i + 1) {
            Some(b'@') if i > 1 => Ok(i + 1),
            _ => Err(PathError::Syntax),
        };
    }
    let at = s.rfind('@').ok_or(PathError::Syntax)?;
    if !is_dot_string(&s[..at]) {
        return Err(PathError::Syntax);
    }
    Ok(at)
}

/// Dot-string: atoms separated by single dots.
fn is_dot_string(local: &str) -> bool {
    !local.is_empty()
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.bytes().all(is_atext))
}

/// RFC 5322 atext, plus any UTF-8 byte (only reachable under SMTPUTF8).
fn is_atext(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&c) || c >= 0x80
}

/// A host name (letters, digits, hyphens; labels not starting or ending with a hyphen) or an
/// address literal.
pub fn parse_domain(s: &str) -> Result<Domain, PathError> {
    if s.len() > MAX_DOMAIN {
        return Err(PathError::TooLong);
    }
    if let Some(lit) = s.strip_prefix('[') {
        let lit = lit.strip_suffix(']').ok_or(PathError::Syntax)?;
        let ok = match lit.strip_prefix("IPv6:") {
            Some(v6) => matches!(v6.parse::<IpAddr>(), Ok(IpAddr::V6(_))),
            None => matches!(lit.parse::<IpAddr>(), Ok(IpAddr::V4(_))),
        };
        return if ok {
            Ok(Domain::Literal(lit.to_string()))
        } else {
            Err(PathError::Syntax)
        };
    }
    let labels_ok = !s.is_empty()
        && s.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
                && b.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c >= 0x80)
        });
    if labels_ok {
        Ok(Domain::Name(s.to_lowercase()))
    } else {
        Err(PathError::Syntax)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Option<Mailbox> {
        parse_path(s, false).unwrap().0
    }

    #[test]
    fn plain_and_null() {
        let m = ok("<Joe@Example.COM>").unwrap();
        assert_eq!(m.local, "Joe");
        assert_eq!(m.domain, Some(Domain::Name("example.com".into())));
        assert_eq!(ok("<>"), None);
    }

    #[test]
    fn quoted_local_parts_keep_their_quotes() {
        let m = ok(r#"<"a@evil.example"@relay.example>"#).unwrap();
        assert_eq!(m.local, r#""a@evil.example""#);
        assert_eq!(m.local_unquoted(), "a@evil.example");
        assert_eq!(m.domain, Some(Domain::Name("relay.example".into())));
        let m = ok(r#"<"a\"b>c"@x.example> SIZE=1"#).unwrap();
        assert_eq!(m.local_unquoted(), "a\"b>c");
    }

    #[test]
    fn source_routes_are_dropped() {
        let (m, rest) = parse_path("<@a.example,@b.example:u@c.example> X", false).unwrap();
        assert_eq!(m.unwrap().to_string(), "u@c.example");
        assert_eq!(rest, " X");
        assert_eq!(parse_path("<@:u@c.example>", false), Err(PathError::Syntax));
    }

    #[test]
    fn literals() {
        let m = ok("<u@[127.0.0.1]>").unwrap();
        assert_eq!(m.domain, Some(Domain::Literal("127.0.0.1".into())));
        assert!(ok("<u@[IPv6:::1]>").is_some());
        assert_eq!(parse_path("<u@[999.1.1.1]>", false), Err(PathError::Syntax));
    }

    #[test]
    fn refusals() {
        for bad in [
            "u@x.example",
            "<u@x.example",
            "<u@>",
            "<@x.example>",
            "<u..v@x.example>",
            "<u@-x.example>",
            "<u@x.example.>",
            "<u v@x.example>",
        ] {
            assert_eq!(parse_path(bad, false), Err(PathError::Syntax), "{bad}");
        }
        assert_eq!(
            parse_path("<ü@x.example>", false),
            Err(PathError::NeedsUtf8)
        );
        assert!(parse_path("<ü@x.example>", true).is_ok());
        let long = format!("<{}@x.example>", "a".repeat(65));
        assert_eq!(parse_path(&long, false), Err(PathError::TooLong));
    }

    #[test]
    fn postmaster_and_other_unqualified_addresses() {
        let m = ok("<Postmaster>").unwrap();
        assert_eq!(m.domain, None);
        let m = ok("<abuse.desk>").unwrap();
        assert!(m.is_unqualified());
        assert_eq!(
            m.qualified("Example.COM").to_string(),
            "abuse.desk@example.com"
        );
        for bad in ["<a..b>", "<a b>", "<\"quoted\">", "<.a>"] {
            assert_eq!(parse_path(bad, false), Err(PathError::Syntax), "{bad}");
        }
    }
}
