//! One command line (CRLF removed) → [`Command`]. Pure and total: every input is either a
//! command or a [`CommandError`] that names the reply.

use crate::address::{Mailbox, PathError, parse_path_with};

/// `BODY=` of MAIL (RFC 6152).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
}

/// `RET=` of MAIL (RFC 3461 §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    Full,
    Hdrs,
}

/// ESMTP parameters of MAIL FROM.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailParams {
    pub size: Option<u64>,
    pub body: Option<Body>,
    pub smtputf8: bool,
    pub ret: Option<Ret>,
    /// `ENVID=`, still xtext-encoded as the client sent it.
    pub envid: Option<String>,
}

/// `NOTIFY=` of RCPT (RFC 3461 §4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notify {
    pub never: bool,
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

/// ESMTP parameters of RCPT TO.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RcptParams {
    pub notify: Option<Notify>,
    /// `ORCPT=addr-type;xtext` as sent.
    pub orcpt: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    Mail(Option<Mailbox>, MailParams),
    Rcpt(Mailbox, RcptParams),
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Expn,
    Help,
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954).
    Auth(String, Option<String>),
    /// A verb we know of but do not offer (BDAT, AUTH, ETRN, TURN ...).
    NotImplemented(String),
}

/// What is wrong with a command line; [`crate::session`] turns it into a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// 500 5.5.2: no such verb.
    Unknown,
    /// 501 5.5.4 with a usage hint.
    Syntax(&'static str),
    /// 501 5.1.7 / 5.1.3: the path is malformed.
    BadPath(PathError, bool),
    /// 555 5.5.4: a parameter we do not know or a bad value for one we do.
    BadParam(String),
}

/// Parses `line` (no CRLF). `smtputf8_offered` allows `SMTPUTF8` on MAIL and UTF-8 paths.
pub fn parse(line: &str, utf8_session: bool) -> Result<Command, CommandError> {
    parse_with(line, utf8_session, false)
}

/// As [`parse`]; with `loose_paths`, `< user@example.com >` stands for `<user@example.com>`
/// (Momentum's `Allow_Trailing_Whitespace_In_Commands`).
pub fn parse_with(
    line: &str,
    utf8_session: bool,
    loose_paths: bool,
) -> Result<Command, CommandError> {
    let (verb, arg) = match line.find(' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    let verb = verb.to_ascii_uppercase();
    let no_arg = |c: Command| {
        if arg.trim().is_empty() {
            Ok(c)
        } else {
            Err(CommandError::Syntax("no arguments allowed"))
        }
    };
    match verb.as_str() {
        "EHLO" | "HELO" => {
            let name = arg.trim();
            if name.is_empty() || name.contains(' ') {
                return Err(CommandError::Syntax(if verb == "EHLO" {
                    "EHLO hostname"
                } else {
                    "HELO hostname"
                }));
            }
            Ok(if verb == "EHLO" {
                Command::Ehlo(name.to_string())
            } else {
                Command::Helo(name.to_string())
            })
        }
        "MAIL" => mail(arg, utf8_session, loose_paths),
        "RCPT" => rcpt(arg, utf8_session, loose_paths),
        "DATA" => no_arg(Command::Data),
        "RSET" => no_arg(Command::Rset),
        "QUIT" => no_arg(Command::Quit),
        "STARTTLS" => no_arg(Command::StartTls),
        // NOOP, VRFY, EXPN and HELP may carry any argument; it is ignored.
        "NOOP" => Ok(Command::Noop),
        "VRFY" if !arg.trim().is_empty() => Ok(Command::Vrfy),
        "VRFY" => Err(CommandError::Syntax("VRFY address")),
        "EXPN" => Ok(Command::Expn),
        "HELP" => Ok(Command::Help),
        "AUTH" => {
            let mut words = arg.split(' ').filter(|w| !w.is_empty());
            match (words.next(), words.next(), words.next()) {
                (Some(m), initial, None) => {
                    Ok(Command::Auth(m.to_string(), initial.map(str::to_string)))
                }
                _ => Err(CommandError::Syntax("AUTH mechanism [initial-response]")),
            }
        }
        "BDAT" | "ETRN" | "TURN" | "ATRN" | "BURL" | "SEND" | "SOML" | "SAML" | "XCLIENT"
        | "XFORWARD" => Ok(Command::NotImplemented(verb)),
        _ => Err(CommandError::Unknown),
    }
}

/// Strips `FROM:` / `TO:` (case-insensitive, spaces allowed after the colon, as most MTAs do).
fn after_keyword<'a>(arg: &'a str, kw: &str) -> Option<&'a str> {
    let head = arg.get(..kw.len())?;
    head.eq_ignore_ascii_case(kw).then(|| &arg[kw.len()..])
}

fn params(rest: &str) -> impl Iterator<Item = (String, Option<&str>)> {
    rest.split(' ')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
            None => (p.to_ascii_uppercase(), None),
        })
}

fn bad(k: &str) -> CommandError {
    CommandError::BadParam(k.to_string())
}

fn mail(arg: &str, utf8_session: bool, loose: bool) -> Result<Command, CommandError> {
    let path = after_keyword(arg, "FROM:").ok_or(CommandError::Syntax("MAIL FROM:<address>"))?;
    // SMTPUTF8 is a parameter after the path, so look for it before judging the path.
    let utf8 = utf8_session && path.split(' ').any(|p| p.eq_ignore_ascii_case("SMTPUTF8"));
    let (mailbox, rest) =
        parse_path_with(path, utf8, loose).map_err(|e| CommandError::BadPath(e, true))?;
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(CommandError::Syntax("MAIL FROM:<address>"));
    }
    let mut p = MailParams::default();
    for (k, v) in params(rest) {
        match (k.as_str(), v) {
            ("SIZE", Some(v)) => p.size = Some(v.parse().map_err(|_| bad(&k))?),
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => p.body = Some(Body::SevenBit),
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => {
                p.body = Some(Body::EightBitMime)
            }
            ("SMTPUTF8", None) if utf8_session => p.smtputf8 = true,
            ("RET", Some(v)) if v.eq_ignore_ascii_case("FULL") => p.ret = Some(Ret::Full),
            ("RET", Some(v)) if v.eq_ignore_ascii_case("HDRS") => p.ret = Some(Ret::Hdrs),
            ("ENVID", Some(v)) if is_xtext(v) && v.len() <= 100 => p.envid = Some(v.to_string()),
            // RFC 4954 §5: the submitter's identity; bindery trusts only its own AUTH, so the
            // value is checked for form and dropped.
            ("AUTH", Some(v)) if v == "<>" || is_xtext(v) => {}
            _ => return Err(bad(&k)),
        }
    }
    Ok(Command::Mail(mailbox, p))
}

fn rcpt(arg: &str, utf8: bool, loose: bool) -> Result<Command, CommandError> {
    let path = after_keyword(arg, "TO:").ok_or(CommandError::Syntax("RCPT TO:<address>"))?;
    let (mailbox, rest) =
        parse_path_with(path, utf8, loose).map_err(|e| CommandError::BadPath(e, false))?;
    let mailbox = mailbox.ok_or(CommandError::BadPath(PathError::Syntax, false))?;
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(CommandError::Syntax("RCPT TO:<address>"));
    }
    let mut p = RcptParams::default();
    for (k, v) in params(rest) {
        match (k.as_str(), v) {
            ("NOTIFY", Some(v)) => p.notify = Some(notify(v).ok_or_else(|| bad(&k))?),
            ("ORCPT", Some(v)) if orcpt_ok(v) => p.orcpt = Some(v.to_string()),
            _ => return Err(bad(&k)),
        }
    }
    Ok(Command::Rcpt(mailbox, p))
}

/// `NEVER` alone, or any of `SUCCESS`, `FAILURE`, `DELAY` separated by commas.
fn notify(v: &str) -> Option<Notify> {
    let mut n = Notify::default();
    for w in v.split(',') {
        match w.to_ascii_uppercase().as_str() {
            "NEVER" => n.never = true,
            "SUCCESS" => n.success = true,
            "FAILURE" => n.failure = true,
            "DELAY" => n.delay = true,
            _ => return None,
        }
    }
    (!n.never || !(n.success || n.failure || n.delay)).then_some(n)
}

/// `addr-type ";" xtext` (RFC 3461 §4.2), e.g. `rfc822;a+40b.example`.
fn orcpt_ok(v: &str) -> bool {
    matches!(v.split_once(';'), Some((t, x)) if !t.is_empty()
        && t.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        && is_xtext(x) && v.len() <= 500)
}

/// xtext (RFC 3461 §4): printable ASCII except `+` and `=`, or `+XX` hex.
fn is_xtext(v: &str) -> bool {
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let hex =
                    |c: Option<&u8>| c.is_some_and(|c| matches!(c, b'0'..=b'9' | b'A'..=b'F'));
                if !(hex(b.get(i + 1)) && hex(b.get(i + 2))) {
                    return false;
                }
                i += 3;
            }
            33..=126 if b[i] != b'=' => i += 1,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_with_params() {
        let c = parse(
            "mail from:<a@b.example> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=x+2By",
            false,
        )
        .unwrap();
        let Command::Mail(Some(m), p) = c else {
            panic!()
        };
        assert_eq!(m.to_string(), "a@b.example");
        assert_eq!(p.size, Some(100));
        assert_eq!(p.body, Some(Body::EightBitMime));
        assert_eq!(p.ret, Some(Ret::Hdrs));
        assert_eq!(p.envid.as_deref(), Some("x+2By"));
    }

    #[test]
    fn rcpt_with_dsn() {
        let c = parse(
            "RCPT TO: <u@x.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u@x.example",
            false,
        )
        .unwrap();
        let Command::Rcpt(_, p) = c else { panic!() };
        assert!(p.notify.unwrap().success && p.notify.unwrap().failure);
        assert_eq!(p.orcpt.as_deref(), Some("rfc822;u@x.example"));
        assert!(matches!(
            parse("RCPT TO:<u@x.example> NOTIFY=NEVER,SUCCESS", false),
            Err(CommandError::BadParam(_))
        ));
    }

    #[test]
    fn errors() {
        assert_eq!(parse("FOO", false), Err(CommandError::Unknown));
        assert!(matches!(parse("EHLO", false), Err(CommandError::Syntax(_))));
        assert!(matches!(
            parse("MAIL <a@b.example>", false),
            Err(CommandError::Syntax(_))
        ));
        assert!(matches!(
            parse("MAIL FROM:<a@b.example> SMTPUTF8", false),
            Err(CommandError::BadParam(_))
        ));
        assert!(matches!(
            parse("MAIL FROM:<a@b.example> XYZ=1", true),
            Err(CommandError::BadParam(_))
        ));
        assert!(matches!(
            parse("RCPT TO:<>", false),
            Err(CommandError::BadPath(..))
        ));
        assert!(matches!(
            parse("DATA x", false),
            Err(CommandError::Syntax(_))
        ));
    }

    #[test]
    fn smtputf8_allows_utf8_paths() {
        assert!(parse("MAIL FROM:<ü@b.example> SMTPUTF8", true).is_ok());
        assert!(parse("MAIL FROM:<ü@b.example>", true).is_err());
    }
}
