//! Momentum's `transform_8bitmime_content`: what to do with a body that has 8-bit bytes for
//! a server that did not offer 8BITMIME (RFC 6152, formerly RFC 1652).
//!
//! - `no`: send it as it is.
//! - `ifneeded` (Momentum's default since 3.1.6): strip the high bit of every byte.
//! - `strip`: strip the high bit of every byte, whatever the server offers.
//! - `strict`: re-encode each MIME leaf part that has 8-bit bytes as quoted-printable
//!   (RFC 2045 §6.7), walking `multipart/*` and `message/rfc822`; 8-bit bytes anywhere else
//!   (a header, a multipart preamble) cannot be converted and the message fails.
//!
//! Written here rather than with `mail-parser`: the walk must keep every byte it does not
//! convert exactly as it was (a DKIM signature over the headers stays valid), and it needs
//! only the headers' `Content-Type` boundary and `Content-Transfer-Encoding`.

use std::borrow::Cow;

/// `transform_8bitmime_content`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Transform8Bit {
    No,
    #[default]
    IfNeeded,
    Strict,
    Strip,
}

/// The body to send to a server that offers 8BITMIME (`offered`) or not. `Err` names what
/// could not be converted under `strict`.
pub fn transform(
    body: &[u8],
    mode: Transform8Bit,
    offered: bool,
) -> Result<Cow<'_, [u8]>, &'static str> {
    if body.is_ascii() {
        return Ok(Cow::Borrowed(body));
    }
    match mode {
        Transform8Bit::No => Ok(Cow::Borrowed(body)),
        Transform8Bit::IfNeeded | Transform8Bit::Strict if offered => Ok(Cow::Borrowed(body)),
        Transform8Bit::IfNeeded | Transform8Bit::Strip => {
            Ok(Cow::Owned(body.iter().map(|b| b & 0x7f).collect()))
        }
        Transform8Bit::Strict => {
            let mut out = Vec::with_capacity(body.len() + body.len() / 8);
            entity(body, &mut out)?;
            Ok(Cow::Owned(out))
        }
    }
}

/// One MIME entity (headers, blank line, body) re-encoded into `out`.
fn entity(e: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    let (head, body) = split_head(e);
    if !head.is_ascii() {
        return Err("8-bit bytes in a header");
    }
    let fields = unfold(head);
    let ctype = field(&fields, "content-type").unwrap_or_default();
    let lower = ctype.to_ascii_lowercase();
    if lower.starts_with("multipart/")
        && let Some(b) = param(&ctype, "boundary")
    {
        out.extend_from_slice(head);
        return multipart(body, b.as_bytes(), out);
    }
    if lower.starts_with("message/rfc822") {
        out.extend_from_slice(head);
        return entity(body, out);
    }
    if body.is_ascii() {
        out.extend_from_slice(e);
        return Ok(());
    }
    // A leaf with 8-bit bytes: its Content-Transfer-Encoding header goes, a new one comes.
    let mut lines = head.split_inclusive(|&b| b == b'\n').peekable();
    let mut dropping = false;
    let mut kept_blank = Vec::new();
    while let Some(line) = lines.next() {
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if continuation && dropping {
            continue;
        }
        dropping = starts_with_ci(line, b"content-transfer-encoding:");
        if dropping {
            continue;
        }
        if lines.peek().is_none() && (line == b"\r\n" || line == b"\n") {
            // The blank line that ends the headers: the new field goes before it.
            kept_blank = line.to_vec();
            continue;
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b"Content-Transfer-Encoding: quoted-printable\r\n");
    out.extend_from_slice(if kept_blank.is_empty() {
        b"\r\n"
    } else {
        &kept_blank
    });
    quoted_printable(body, out);
    Ok(())
}

/// Splits an entity after the blank line that ends its headers (kept with the headers).
fn split_head(e: &[u8]) -> (&[u8], &[u8]) {
    let mut at = 0;
    for line in e.split_inclusive(|&b| b == b'\n') {
        at += line.len();
        if line == b"\r\n" || line == b"\n" {
            return e.split_at(at);
        }
    }
    (e, &[])
}

/// Header fields as (lower-case name, unfolded value).
fn unfold(head: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(head);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            fields.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    fields
}

fn field(fields: &[(String, String)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

/// A `name=value` or `name="value"` parameter of a structured header.
fn param(value: &str, name: &str) -> Option<String> {
    for p in value.split(';').skip(1) {
        let (n, v) = p.split_once('=')?;
        if n.trim().eq_ignore_ascii_case(name) {
            return Some(v.trim().trim_matches('"').to_string());
        }
    }
    None
}

fn starts_with_ci(line: &[u8], prefix: &[u8]) -> bool {
    line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// A multipart body: the preamble and epilogue as they are (ASCII only), each part
/// converted.
fn multipart(body: &[u8], boundary: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(boundary);
    // Positions of the delimiter lines: (start of the line, end of the line with its CRLF).
    let mut marks = Vec::new();
    let mut pos = 0;
    for line in body.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(&delim) {
            marks.push((
                pos,
                pos + line.len(),
                line[delim.len()..].starts_with(b"--"),
            ));
        }
        pos += line.len();
    }
    let Some(&(first, _, _)) = marks.first() else {
        return Err("a multipart body without its boundary");
    };
    if !body[..first].is_ascii() {
        return Err("8-bit bytes in a multipart preamble");
    }
    out.extend_from_slice(&body[..first]);
    for (i, &(start, end, last)) in marks.iter().enumerate() {
        out.extend_from_slice(&body[start..end]);
        if last {
            if !body[end..].is_ascii() {
                return Err("8-bit bytes in a multipart epilogue");
            }
            out.extend_from_slice(&body[end..]);
            return Ok(());
        }
        // The part runs to the CRLF before the next delimiter, which belongs to it.
        let next = marks.get(i + 1).map_or(body.len(), |m| m.0);
        let part = &body[end..next];
        let (content, crlf) = match part.strip_suffix(b"\r\n") {
            Some(c) => (c, &b"\r\n"[..]),
            None => (part, &b""[..]),
        };
        entity(content, out)?;
        out.extend_from_slice(crlf);
    }
    Ok(())
}

/// RFC 2045 §6.7 quoted-printable of `body`, line by line (CRLF kept as hard breaks), with
/// soft breaks to keep each line within 76 characters.
fn quoted_printable(body: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for raw in body.split_inclusive(|&b| b == b'\n') {
        let (line, eol) = match raw.strip_suffix(b"\r\n") {
            Some(l) => (l, true),
            None => match raw.strip_suffix(b"\n") {
                Some(l) => (l, true),
                None => (raw, false),
            },
        };
        let mut width = 0;
        for (i, &b) in line.iter().enumerate() {
            let trailing_space = (b == b' ' || b == b'\t') && i + 1 == line.len();
            let literal = (b == b' ' || b == b'\t' || (33..=126).contains(&b))
                && b != b'='
                && !trailing_space;
            let need = if literal { 1 } else { 3 };
            if width + need > 75 {
                out.extend_from_slice(b"=\r\n");
                width = 0;
            }
            if literal {
                out.push(b);
            } else {
                out.extend_from_slice(&[b'=', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
            }
            width += need;
        }
        if eol {
            out.extend_from_slice(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &[u8], mode: Transform8Bit, offered: bool) -> Result<String, &'static str> {
        transform(body, mode, offered).map(|b| String::from_utf8(b.into_owned()).unwrap())
    }

    #[test]
    fn ascii_and_offered_bodies_go_as_they_are() {
        let ascii = b"Subject: a\r\n\r\nplain\r\n";
        for m in [
            Transform8Bit::No,
            Transform8Bit::IfNeeded,
            Transform8Bit::Strict,
            Transform8Bit::Strip,
        ] {
            assert!(matches!(transform(ascii, m, false), Ok(Cow::Borrowed(_))));
        }
        let eight = "Subject: a\r\n\r\ncaf\u{e9}\r\n".as_bytes();
        assert!(matches!(
            transform(eight, Transform8Bit::IfNeeded, true),
            Ok(Cow::Borrowed(_))
        ));
        assert!(matches!(
            transform(eight, Transform8Bit::No, false),
            Ok(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn ifneeded_and_strip_clear_the_high_bit() {
        let eight = "Subject: a\r\n\r\ncaf\u{e9}\r\n".as_bytes();
        let want = "Subject: a\r\n\r\ncafC)\r\n";
        assert_eq!(run(eight, Transform8Bit::IfNeeded, false).unwrap(), want);
        assert_eq!(run(eight, Transform8Bit::Strip, true).unwrap(), want);
    }

    #[test]
    fn strict_reencodes_each_eight_bit_leaf_as_quoted_printable() {
        let msg = "From: a@b\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative;\r\n boundary=\"XX\"\r\n\
\r\n\
preamble\r\n\
--XX\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
caf\u{e9} = good \r\n\
--XX\r\n\
Content-Type: text/html\r\n\
\r\n\
<p>ascii</p>\r\n\
--XX--\r\n\
epilogue\r\n";
        let got = run(msg.as_bytes(), Transform8Bit::Strict, false).unwrap();
        let want = "From: a@b\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative;\r\n boundary=\"XX\"\r\n\
\r\n\
preamble\r\n\
--XX\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
caf=C3=A9 =3D good=20\r\n\
--XX\r\n\
Content-Type: text/html\r\n\
\r\n\
<p>ascii</p>\r\n\
--XX--\r\n\
epilogue\r\n";
        assert_eq!(got, want);
        assert!(got.is_ascii());
    }

    #[test]
    fn strict_keeps_lines_within_76_and_fails_on_8bit_headers() {
        let long = format!("Subject: x\r\n\r\n{}\r\n", "\u{e9}".repeat(40));
        let got = run(long.as_bytes(), Transform8Bit::Strict, false).unwrap();
        assert!(
            got.lines().all(|l| l.trim_end_matches('\r').len() <= 76),
            "{got}"
        );
        assert!(got.contains("=\r\n"), "soft breaks: {got}");
        let head = "Subject: caf\u{e9}\r\n\r\nbody \u{e9}\r\n";
        assert_eq!(
            run(head.as_bytes(), Transform8Bit::Strict, false),
            Err("8-bit bytes in a header")
        );
    }

    proptest::proptest! {
        /// Whatever the body, `strict` never panics, and what it gives is 7-bit.
        #[test]
        fn strict_gives_ascii_or_refuses(pieces in proptest::collection::vec(proptest::prop_oneof![
            proptest::strategy::Just(b"Content-Type: multipart/mixed; boundary=b\r\n".to_vec()),
            proptest::strategy::Just(b"Content-Type: message/rfc822\r\n".to_vec()),
            proptest::strategy::Just(b"Content-Transfer-Encoding: 8bit\r\n".to_vec()),
            proptest::strategy::Just(b"\r\n".to_vec()),
            proptest::strategy::Just(b"--b\r\n".to_vec()),
            proptest::strategy::Just(b"--b--\r\n".to_vec()),
            proptest::strategy::Just("caf\u{e9} \t=\r\n".as_bytes().to_vec()),
            proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20),
        ], 0..20)) {
            let body = pieces.concat();
            if let Ok(out) = transform(&body, Transform8Bit::Strict, false) {
                proptest::prop_assert!(out.is_ascii());
            }
        }
    }
}
