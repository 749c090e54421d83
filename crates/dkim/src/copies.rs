//! `copy_headers`: the `z=` tag, a copy of every signed header field as it was signed
//! (RFC 6376 §3.5; Momentum's opendkim option, "useful for debugging": a verifier that fails
//! can show what changed in transit).
//!
//! mail-auth reads `z=` but never writes it, so a signature that carries it is made here
//! from the one mail-auth made: the same tags and the same canonical header fields, `z=`
//! added before `bh=`, signed again with the key. The written field is the very form that was
//! hashed, each space a fold (which both canonicalizations turn back into what was hashed).

use mail_auth::common::crypto::SigningKey;
use mail_auth::common::headers::{HeaderStream, Writable, Writer};
use mail_auth::dkim::{DkimSigner, Done, Signature};

use crate::key::Key;
use crate::sign::{Canon, SignError};

/// The header fields of a message as mail-auth's own (crate-private) iterator gives them:
/// the name before the colon, the value after it through the field's last line end, folds
/// included; the body after the blank line.
struct Fields<'x> {
    message: &'x [u8],
    pos: usize,
}

impl<'x> HeaderStream<'x> for Fields<'x> {
    fn next_header(&mut self) -> Option<(&'x [u8], &'x [u8])> {
        let m = self.message;
        let start = self.pos;
        if start >= m.len() || m[start..].starts_with(b"\r\n") || m[start] == b'\n' {
            return None;
        }
        let mut end = start;
        loop {
            end = match memchr::memchr(b'\n', &m[end..]) {
                Some(i) => end + i + 1,
                None => m.len(),
            };
            if end >= m.len() || !matches!(m[end], b' ' | b'\t') {
                break;
            }
        }
        self.pos = end;
        let field = &m[start..end];
        Some(match memchr::memchr(b':', field) {
            Some(colon) => (&field[..colon], &field[colon + 1..]),
            None => (field, &b""[..]),
        })
    }

    fn body(&mut self) -> &'x [u8] {
        while self.next_header().is_some() {}
        let m = self.message;
        let rest = &m[self.pos.min(m.len())..];
        rest.strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))
            .unwrap_or(rest)
    }
}

/// RFC 6376's dkim-quoted-printable, with `|` (the copies' separator) encoded too.
fn quoted(value: &[u8], out: &mut String) {
    for &b in value {
        match b {
            b'\r' | b'\n' => {}
            0x21..=0x7e if !matches!(b, b';' | b'=' | b'|') => out.push(b as char),
            _ => out.push_str(&format!("={b:02X}")),
        }
    }
}

/// The `z=` value: each header field of `head` that `names` signs, `name:value`, in the
/// order of the message, joined by `|` and a space (a place to fold).
pub fn copies(head: &[u8], names: &[String]) -> String {
    let mut out = String::new();
    let mut fields = Fields {
        message: head,
        pos: 0,
    };
    while let Some((name, value)) = fields.next_header() {
        let wanted = names
            .iter()
            .any(|n| n.as_bytes().eq_ignore_ascii_case(name.trim_ascii()));
        if !wanted {
            continue;
        }
        if !out.is_empty() {
            out.push_str("| ");
        }
        quoted(name.trim_ascii(), &mut out);
        out.push(':');
        quoted(value.trim_ascii(), &mut out);
    }
    out
}

/// The canonical header fields and the signature's hashed form, as the key signs them.
struct Signable<'a, W: Writable> {
    headers: W,
    signature: &'a [u8],
}

impl<W: Writable> Writable for Signable<'_, W> {
    fn write(self, writer: &mut impl Writer) {
        self.headers.write(writer);
        writer.write(self.signature);
    }
}

/// `made` (mail-auth's signature by `signer` over a message whose header section is `head`)
/// made again with `z=`; the written field, with its CRLF.
pub fn with_copies(
    signer: &DkimSigner<&Key, Done>,
    made: &Signature,
    key: &Key,
    head: &[u8],
    canon: Canon,
) -> Result<String, SignError> {
    let mut sig = made.clone();
    sig.b = Vec::new();
    let mut rendered = Vec::new();
    sig.write(&mut rendered, false);
    let text = String::from_utf8_lossy(&rendered).into_owned();
    // One space where mail-auth put a space or a fold: the value as both forms derive it.
    let value = text
        .strip_prefix("dkim-signature:")
        .or_else(|| text.strip_prefix("DKIM-Signature: "))
        .unwrap_or(&text)
        .replace("\r\n\t", " ");
    let value = value.trim_end().trim_end_matches(';').trim_end();
    let Some(at) = value.rfind("bh=") else {
        return Err(SignError::Crypto("no bh= in the signature".into()));
    };
    let names: Vec<String> = signer.template.h.clone();
    let value = format!(
        "{}z={}; {}",
        &value[..at],
        copies(head, &names),
        &value[at..]
    );
    let folded = value.replace(' ', "\r\n\t");
    let hashed = match canon {
        Canon::Relaxed => format!("dkim-signature:{value}"),
        Canon::Simple => format!("DKIM-Signature: {folded}"),
    };
    let (_, headers, _, _) = signer.template.canonicalize(Fields {
        message: head,
        pos: 0,
    });
    let b = key
        .sign(Signable {
            headers,
            signature: hashed.as_bytes(),
        })
        .map_err(|e| SignError::Crypto(e.to_string()))?;
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(b);
    Ok(format!("DKIM-Signature: {folded}{b}\r\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_quoted_and_in_message_order() {
        let head = b"Subject: a b;c=d|e\r\nFrom: <x@y>\r\nX-Other: no\r\nTo: t@u,\r\n v@w\r\n\r\n";
        let z = copies(head, &["from".into(), "to".into(), "subject".into()]);
        assert_eq!(z, "Subject:a=20b=3Bc=3Dd=7Ce| From:<x@y>| To:t@u,=20v@w");
    }
}
