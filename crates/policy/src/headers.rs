//! Header fields of a received message, for `msg:header`.
//!
//! Only the header section is read or changed; the scan stops at the first empty line. A
//! full MIME parser (mail-parser) would build a whole message tree per call.
//!
//! Reading gives values unfolded, with RFC 2047 encoded words decoded to UTF-8 (Momentum:
//! "the headers will have RFC2047 header encoding removed"). Writing follows Momentum's
//! `msg:header(name, value, mode)`: an empty value deletes every field of that name;
//! `replace` (the default) deletes them and appends the new one; `prepend` and `append` keep
//! them; non-ASCII values are written as RFC 2047 encoded words.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Every value of header field `name` (case-insensitive), in order, decoded.
pub fn header_values(message: &[u8], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    for raw in message.split(|&b| b == b'\n') {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // A continuation line belongs to the field before it.
            if let Some(v) = current.as_mut() {
                v.extend_from_slice(line);
            }
            continue;
        }
        if let Some(v) = current.take() {
            out.push(finish(v));
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let field = &line[..colon];
            if field.eq_ignore_ascii_case(name.as_bytes()) {
                current = Some(line[colon + 1..].to_vec());
            }
        }
    }
    if let Some(v) = current {
        out.push(finish(v));
    }
    out
}

fn finish(v: Vec<u8>) -> String {
    let text = String::from_utf8_lossy(&v);
    decode_words(text.trim()).into_owned()
}

/// Where `msg:header` puts a new field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Replace,
    Prepend,
    Append,
}

impl Mode {
    pub fn parse(word: Option<&str>) -> Option<Mode> {
        match word.map(str::to_ascii_lowercase).as_deref() {
            None | Some("replace") => Some(Mode::Replace),
            Some("prepend") => Some(Mode::Prepend),
            Some("append") => Some(Mode::Append),
            Some(_) => None,
        }
    }
}

/// The end of the header section: just after the last field's line break (where an appended
/// field goes), or the message's end when it has no body.
fn head_end(message: &[u8]) -> usize {
    let mut at = 0;
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            return at;
        }
        at += line.len();
    }
    message.len()
}

/// Removes every field `name`, with its continuation lines. Returns whether any was there.
pub fn delete(message: &mut Vec<u8>, name: &str) -> bool {
    let end = head_end(message);
    let mut kept = Vec::with_capacity(message.len());
    let mut dropping = false;
    let mut removed = false;
    for line in message[..end].split_inclusive(|&b| b == b'\n') {
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            dropping = line
                .iter()
                .position(|&b| b == b':')
                .is_some_and(|c| line[..c].eq_ignore_ascii_case(name.as_bytes()));
            removed |= dropping;
        }
        if !dropping {
            kept.extend_from_slice(line);
        }
    }
    if removed {
        kept.extend_from_slice(&message[end..]);
        *message = kept;
    }
    removed
}

/// Sets field `name` to `values` (one field each) as `mode` says.
pub fn set(message: &mut Vec<u8>, name: &str, values: &[String], mode: Mode) {
    if mode == Mode::Replace {
        delete(message, name);
    }
    let mut fields = Vec::new();
    for v in values {
        fields.extend_from_slice(name.as_bytes());
        fields.extend_from_slice(b": ");
        fields.extend_from_slice(encode_words(v).as_bytes());
        fields.extend_from_slice(b"\r\n");
    }
    let at = match mode {
        Mode::Prepend => 0,
        Mode::Replace | Mode::Append => head_end(message),
    };
    message.splice(at..at, fields);
}

/// A value as it may stand in a header: as it is when ASCII, else RFC 2047 `B` words of at
/// most 75 characters, folded onto continuation lines.
fn encode_words(v: &str) -> Cow<'_, str> {
    if v.is_ascii() && !v.contains(['\r', '\n']) {
        return Cow::Borrowed(v);
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in v.chars().filter(|c| *c != '\r' && *c != '\n') {
        // 45 bytes encode to 60 characters; with `=?UTF-8?B?` and `?=` a word stays under 75.
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(&chunk)));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(&chunk)));
    }
    Cow::Owned(words.join("\r\n "))
}

/// `value` with its RFC 2047 encoded words decoded (UTF-8, US-ASCII and ISO-8859-1; a word
/// in another charset, or malformed, stays as written). Whitespace between two encoded
/// words goes, as RFC 2047 §6.2 says.
pub fn decode_words(value: &str) -> Cow<'_, str> {
    if !value.contains("=?") {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, from) = rest.split_at(start);
        let Some((decoded, used)) = decode_word(from) else {
            out.push_str(before);
            out.push_str("=?");
            rest = &from[2..];
            last_was_word = false;
            continue;
        };
        if !(last_was_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        out.push_str(&decoded);
        rest = &from[used..];
        last_was_word = true;
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// One `=?charset?enc?text?=` at the start of `s`: its text and its length.
fn decode_word(s: &str) -> Option<(String, usize)> {
    let body = s.strip_prefix("=?")?;
    let (charset, rest) = body.split_once('?')?;
    let (enc, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let text = &rest[..end];
    let used = 2 + charset.len() + 1 + enc.len() + 1 + end + 2;
    let bytes = match enc {
        "B" | "b" => STANDARD.decode(text).ok()?,
        "Q" | "q" => {
            let mut out = Vec::new();
            let b = text.as_bytes();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'_' => out.push(b' '),
                    b'=' => {
                        out.push(u8::from_str_radix(text.get(i + 1..i + 3)?, 16).ok()?);
                        i += 2;
                    }
                    c => out.push(c),
                }
                i += 1;
            }
            out
        }
        _ => return None,
    };
    let charset = charset.split('*').next().unwrap_or(charset);
    let decoded = if charset.eq_ignore_ascii_case("utf-8")
        || charset.eq_ignore_ascii_case("us-ascii")
    {
        String::from_utf8(bytes).ok()?
    } else if charset.eq_ignore_ascii_case("iso-8859-1") || charset.eq_ignore_ascii_case("latin1") {
        bytes.iter().map(|&b| b as char).collect()
    } else {
        return None;
    };
    Some((decoded, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_value_unfolded_and_stops_at_the_body() {
        let m = b"Subject: hi\r\nX-Binding: b1\r\nx-binding:  b2\r\n\tcontinued\r\nTo: a@b\r\n\r\nX-Binding: body\r\n";
        assert_eq!(header_values(m, "X-Binding"), ["b1", "b2\tcontinued"]);
        assert_eq!(header_values(m, "subject"), ["hi"]);
        assert!(header_values(m, "X-Missing").is_empty());
        assert!(header_values(b"", "a").is_empty());
        assert_eq!(header_values(b"A: 1\nA: 2", "a"), ["1", "2"]);
    }

    #[test]
    fn encoded_words_are_decoded() {
        // The space between two encoded words goes (RFC 2047 §6.2); `_` is a space in Q.
        let m = "Subject: =?UTF-8?B?Y2Fmw6k=?= =?ISO-8859-1?Q?_cr=E8me_br=FBl=E9e?= ok\r\n\r\n";
        assert_eq!(
            header_values(m.as_bytes(), "subject"),
            ["café crème brûlée ok"]
        );
        assert_eq!(decode_words("=?koi8-r?B?x8/Q?= x"), "=?koi8-r?B?x8/Q?= x");
        assert_eq!(decode_words("=?UTF-8?Q?bad=Z?="), "=?UTF-8?Q?bad=Z?=");
    }

    #[test]
    fn set_replace_prepend_append_and_delete() {
        let mut m = b"X-A: 1\r\nSubject: s\r\nx-a: 2\r\n\tfolded\r\n\r\nX-A: body\r\n".to_vec();
        set(&mut m, "X-A", &["new".into()], Mode::Replace);
        assert_eq!(m, b"Subject: s\r\nX-A: new\r\n\r\nX-A: body\r\n");
        set(&mut m, "X-B", &["first".into()], Mode::Prepend);
        set(&mut m, "X-A", &["two".into(), "three".into()], Mode::Append);
        assert_eq!(
            m,
            b"X-B: first\r\nSubject: s\r\nX-A: new\r\nX-A: two\r\nX-A: three\r\n\r\nX-A: body\r\n"
        );
        assert!(delete(&mut m, "x-a"));
        assert!(!delete(&mut m, "x-a"));
        assert_eq!(m, b"X-B: first\r\nSubject: s\r\n\r\nX-A: body\r\n");
        let mut headers_only = b"Subject: s\r\n".to_vec();
        set(&mut headers_only, "X-C", &["v".into()], Mode::Replace);
        assert_eq!(headers_only, b"Subject: s\r\nX-C: v\r\n");
    }

    #[test]
    fn non_ascii_values_are_encoded_and_read_back() {
        let mut m = b"Subject: s\r\n\r\nbody\r\n".to_vec();
        let long = "é".repeat(40);
        set(&mut m, "X-U", std::slice::from_ref(&long), Mode::Replace);
        let text = String::from_utf8(m.clone()).unwrap();
        assert!(text.is_ascii(), "{text}");
        assert!(text.lines().all(|l| l.len() <= 78), "{text}");
        assert_eq!(header_values(&m, "X-U"), [long]);
    }
}
