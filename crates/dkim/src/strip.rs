//! Removes signatures of ours from an earlier pass (Momentum's MO-4309): a message that
//! comes back through bindery (a re-injection, a forward between nodes) would otherwise
//! carry two signatures for the same `d=` and `s=`, the old one broken by any change since.
//! Other signers' `DKIM-Signature` fields (a customer's own, an ESP's) are kept.

/// The tag `name` of a `DKIM-Signature` value, whitespace removed.
fn tag(value: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(value);
    text.split(';').find_map(|t| {
        let (k, v) = t.split_once('=')?;
        (k.trim() == name).then(|| v.chars().filter(|c| !c.is_whitespace()).collect())
    })
}

/// Whether the header section of `message` holds a `DKIM-Signature` field (the common case
/// of none skips [`strip_signatures`]' copy).
pub fn has_signature(message: &[u8]) -> bool {
    let end = memchr::memmem::find(message, b"\r\n\r\n").map_or(message.len(), |e| e + 2);
    let head = &message[..end];
    memchr::memmem::find_iter(head, b"\n")
        .map(|i| i + 1)
        .chain(std::iter::once(0))
        .any(|start| {
            head.get(start..start + 15)
                .is_some_and(|n| n.eq_ignore_ascii_case(b"dkim-signature:"))
        })
}

/// `message` (CRLF line ends) without the header fields `DKIM-Signature` whose `d=` and
/// `s=` are one of `ours`.
pub fn strip_signatures(message: &[u8], ours: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    let mut i = 0;
    while i < message.len() {
        // One field: its first line and every continuation line.
        let line_end = |from: usize| {
            message[from..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .map_or(message.len(), |p| from + p + 2)
        };
        if message[i..].starts_with(b"\r\n") {
            break; // the end of the header section
        }
        let mut end = line_end(i);
        while end < message.len() && matches!(message[end], b' ' | b'\t') {
            end = line_end(end);
        }
        let field = &message[i..end];
        let drop = field.iter().position(|&b| b == b':').is_some_and(|colon| {
            field[..colon]
                .trim_ascii()
                .eq_ignore_ascii_case(b"dkim-signature")
                && {
                    let value = &field[colon + 1..];
                    let d = tag(value, "d");
                    let s = tag(value, "s");
                    ours.iter().any(|(od, os)| {
                        d.as_deref().is_some_and(|d| d.eq_ignore_ascii_case(od))
                            && s.as_deref() == Some(*os)
                    })
                }
        });
        if !drop {
            out.extend_from_slice(field);
        }
        i = end;
    }
    out.extend_from_slice(&message[i..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_go_others_stay() {
        let m = b"DKIM-Signature: v=1; a=rsa-sha256; d=Example.com;\r\n\ts=s1; b=abc\r\nDKIM-Signature: v=1; d=esp.example; s=s1; b=x\r\nFrom: a@example.com\r\n\r\nbody\r\nDKIM-Signature: d=example.com; s=s1\r\n";
        let out = strip_signatures(m, &[("example.com", "s1")]);
        assert_eq!(
            out,
            b"DKIM-Signature: v=1; d=esp.example; s=s1; b=x\r\nFrom: a@example.com\r\n\r\nbody\r\nDKIM-Signature: d=example.com; s=s1\r\n"
        );
        assert!(has_signature(m));
        assert!(!has_signature(b"From: a\r\n\r\nDKIM-Signature: d=x\r\n"));
        // Another selector is another signer's (or an older key's): kept.
        assert_eq!(strip_signatures(m, &[("example.com", "s2")]), m.to_vec());
    }

    #[test]
    fn no_body_and_no_blank_line() {
        let m = b"DKIM-Signature: d=a.example; s=x\r\nFrom: b@a.example\r\n";
        assert_eq!(
            strip_signatures(m, &[("a.example", "x")]),
            b"From: b@a.example\r\n".to_vec()
        );
    }
}
