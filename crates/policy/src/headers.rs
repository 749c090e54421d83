//! Header fields of a received message, for `msg:header(name)`.
//!
//! Only the header section is read and values come back as written (unfolded, leading
//! space trimmed, no MIME decoding), which is what a binding decision compares against.
//! A full MIME parser (mail-parser) would decode and allocate a whole message tree per
//! call; this scan stops at the first empty line.

/// Every value of header field `name` (case-insensitive), in order.
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
    String::from_utf8_lossy(&v).trim().to_string()
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
}
