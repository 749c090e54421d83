//! Replies from a remote server, read incrementally from whatever bytes arrived.

use std::fmt;

/// Longest reply line we accept, CRLF included. RFC 5321 says 512; real servers send longer
/// EHLO lines and banners, so allow some room before calling it a protocol error.
pub const MAX_REPLY_LINE: usize = 4096;

/// Most lines in one reply (a multi-line EHLO answer has a dozen or so).
pub const MAX_REPLY_LINES: usize = 256;

/// One complete reply from the remote server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub code: u16,
    /// The text of each line after the code and separator, as sent.
    pub lines: Vec<String>,
}

impl Response {
    /// A reply we make up ourselves for something that happened without one (a timeout, a
    /// dropped connection, a refused connect): it goes to the same log fields and DSNs as a
    /// real one, so it reads like one.
    pub fn local(code: u16, text: impl Into<String>) -> Response {
        Response {
            code,
            lines: vec![text.into()],
        }
    }

    pub fn is_positive_completion(&self) -> bool {
        (200..300).contains(&self.code)
    }

    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The RFC 3463 enhanced status code at the start of the first line, when present and
    /// consistent with the reply's class.
    pub fn enhanced(&self) -> Option<&str> {
        let first = self.lines.first()?;
        let word = first.split(' ').next()?;
        let mut parts = word.split('.');
        let class = parts.next()?;
        let subject = parts.next()?;
        let detail = parts.next()?;
        let ok = parts.next().is_none()
            && matches!(class, "2" | "4" | "5")
            && class.as_bytes()[0] - b'0' == (self.code / 100) as u8
            && (1..=3).contains(&subject.len())
            && (1..=3).contains(&detail.len())
            && subject
                .bytes()
                .chain(detail.bytes())
                .all(|b| b.is_ascii_digit());
        ok.then_some(word)
    }

    /// The status code for a DSN: the enhanced code if the server sent one, else one derived
    /// from the reply's class (RFC 3463 §3.1's "other undefined status").
    pub fn status(&self) -> String {
        match self.enhanced() {
            Some(s) => s.to_string(),
            None => format!("{}.0.0", self.code / 100),
        }
    }

    /// The whole reply as one line: `550 5.1.1 <a@b>: unknown user`. Lines of a multi-line
    /// reply are joined by a space.
    pub fn one_line(&self) -> String {
        let mut s = self.code.to_string();
        for l in &self.lines {
            s.push(' ');
            s.push_str(l);
        }
        s
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.one_line())
    }
}

/// Why the remote's bytes are not SMTP replies.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("reply line too long")]
    TooLong,
    #[error("reply has too many lines")]
    TooManyLines,
    #[error("malformed reply line: {0:?}")]
    Malformed(String),
    #[error("multi-line reply changed code from {0} to {1}")]
    CodeChanged(u16, u16),
}

/// Collects bytes and hands out complete replies.
#[derive(Debug, Default)]
pub struct ResponseReader {
    buf: Vec<u8>,
    /// Lines of the reply being read (code, text).
    partial: Vec<String>,
    partial_code: u16,
}

impl ResponseReader {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet part of a complete reply.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete reply, if one has arrived. Lines may end in CRLF or a bare LF (some
    /// servers send LF; being lenient in what we read costs nothing here).
    pub fn next_response(&mut self) -> Result<Option<Response>, ResponseError> {
        loop {
            let Some(nl) = self.buf.iter().position(|&b| b == b'\n') else {
                if self.buf.len() > MAX_REPLY_LINE {
                    return Err(ResponseError::TooLong);
                }
                return Ok(None);
            };
            if nl + 1 > MAX_REPLY_LINE {
                return Err(ResponseError::TooLong);
            }
            let mut line: Vec<u8> = self.buf.drain(..=nl).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let text = String::from_utf8_lossy(&line).into_owned();
            let b = text.as_bytes();
            let code_ok = b.len() >= 3
                && b[..3].iter().all(u8::is_ascii_digit)
                && (b'2'..=b'5').contains(&b[0])
                && (b.len() == 3 || b[3] == b' ' || b[3] == b'-');
            if !code_ok {
                return Err(ResponseError::Malformed(text));
            }
            let code: u16 = text[..3].parse().unwrap_or(0);
            if !self.partial.is_empty() && code != self.partial_code {
                return Err(ResponseError::CodeChanged(self.partial_code, code));
            }
            self.partial_code = code;
            let more = b.len() > 3 && b[3] == b'-';
            let rest = if b.len() > 4 { &text[4..] } else { "" };
            self.partial.push(rest.to_string());
            if self.partial.len() > MAX_REPLY_LINES {
                return Err(ResponseError::TooManyLines);
            }
            if !more {
                return Ok(Some(Response {
                    code,
                    lines: std::mem::take(&mut self.partial),
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_reply_in_pieces() {
        let mut r = ResponseReader::default();
        r.push(b"250-mx.example\r\n250-PIPE");
        assert_eq!(r.next_response(), Ok(None));
        r.push(b"LINING\r\n250 SIZE 100\r\n220");
        let resp = r.next_response().unwrap().unwrap();
        assert_eq!(resp.code, 250);
        assert_eq!(resp.lines, vec!["mx.example", "PIPELINING", "SIZE 100"]);
        assert_eq!(r.next_response(), Ok(None));
        assert_eq!(r.pending(), 3);
    }

    #[test]
    fn enhanced_code_must_match_the_class() {
        let ok = Response::local(550, "5.1.1 no such user");
        assert_eq!(ok.enhanced(), Some("5.1.1"));
        assert_eq!(ok.status(), "5.1.1");
        let wrong = Response::local(550, "4.1.1 odd");
        assert_eq!(wrong.enhanced(), None);
        assert_eq!(wrong.status(), "5.0.0");
        assert_eq!(Response::local(250, "").one_line(), "250 ");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [&b"hello\r\n"[..], b"25\r\n", b"2500 x\r\n", b"650 x\r\n"] {
            let mut r = ResponseReader::default();
            r.push(bad);
            assert!(r.next_response().is_err(), "{bad:?}");
        }
        let mut r = ResponseReader::default();
        r.push(b"250-a\r\n251 b\r\n");
        assert_eq!(r.next_response(), Err(ResponseError::CodeChanged(250, 251)));
        let mut r = ResponseReader::default();
        r.push(&[b'2'; MAX_REPLY_LINE + 1]);
        assert_eq!(r.next_response(), Err(ResponseError::TooLong));
        let mut r = ResponseReader::default();
        r.push(b"220\n");
        assert_eq!(
            r.next_response().unwrap().unwrap().lines,
            vec![String::new()]
        );
    }
}
