//! The console's wire format, without I/O.
//!
//! The client sends one command per line (`\n`, at most [`MAX_LINE`] bytes). The server
//! answers each with one frame: a header line `STATUS LENGTH\n` and exactly `LENGTH` bytes of
//! body. Length-prefixed frames let the body be anything (multi-line text, JSON, a
//! diagnostic with a caret) with no escaping, and let the client know when an answer ends
//! without a timeout. The first frame, sent on connect, is the greeting: `ok` with the
//! server's name, or `auth` with a challenge when the listener requires authentication.

use std::fmt;

/// Longest request line accepted; a longer one closes the connection.
pub const MAX_LINE: usize = 64 * 1024;
/// Largest answer a client accepts (a `config show` of a very large configuration fits).
pub const MAX_BODY: usize = 64 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The command ran; the body is its output.
    Ok,
    /// The command failed or was not understood; the body says why.
    Error,
    /// Authenticate first; the body is `REALM NONCE`.
    Auth,
    /// The server closes the connection after this frame.
    Bye,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Auth => "auth",
            Status::Bye => "bye",
        }
    }

    fn parse(w: &str) -> Option<Status> {
        Some(match w {
            "ok" => Status::Ok,
            "error" => Status::Error,
            "auth" => Status::Auth,
            "bye" => Status::Bye,
            _ => return None,
        })
    }
}

/// One answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub status: Status,
    pub body: String,
}

impl Frame {
    pub fn new(status: Status, body: impl Into<String>) -> Frame {
        Frame {
            status,
            body: body.into(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("{} {}\n", self.status.word(), self.body.len()).into_bytes();
        out.extend_from_slice(self.body.as_bytes());
        out
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("malformed frame header `{0}`")]
    Header(String),
    #[error("frame of {0} bytes is larger than the limit")]
    TooLarge(usize),
    #[error("request line longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("frame body is not UTF-8")]
    NotUtf8,
}

/// Reads frames from the bytes a client receives.
#[derive(Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let Some(nl) = self.buf.iter().position(|&b| b == b'\n') else {
            if self.buf.len() > 64 {
                return Err(FrameError::Header(
                    String::from_utf8_lossy(&self.buf[..64]).into_owned(),
                ));
            }
            return Ok(None);
        };
        let header = String::from_utf8_lossy(&self.buf[..nl]).into_owned();
        let (status, len) = header
            .split_once(' ')
            .and_then(|(s, n)| Some((Status::parse(s)?, n.parse::<usize>().ok()?)))
            .ok_or_else(|| FrameError::Header(header.clone()))?;
        if len > MAX_BODY {
            return Err(FrameError::TooLarge(len));
        }
        if self.buf.len() < nl + 1 + len {
            return Ok(None);
        }
        let body: Vec<u8> = self.buf.drain(..nl + 1 + len).skip(nl + 1).collect();
        let body = String::from_utf8(body).map_err(|_| FrameError::NotUtf8)?;
        Ok(Some(Frame { status, body }))
    }
}

/// Reads request lines from the bytes a server receives.
#[derive(Default)]
pub struct LineDecoder {
    buf: Vec<u8>,
}

impl LineDecoder {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line without its `\n` (and `\r`). Invalid UTF-8 is replaced, not
    /// refused: the command parser then reports an unknown word.
    pub fn next_line(&mut self) -> Result<Option<String>, FrameError> {
        match self.buf.iter().position(|&b| b == b'\n') {
            Some(nl) if nl > MAX_LINE => Err(FrameError::LineTooLong),
            Some(nl) => {
                let mut line: Vec<u8> = self.buf.drain(..=nl).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Ok(Some(String::from_utf8_lossy(&line).into_owned()))
            }
            None if self.buf.len() > MAX_LINE => Err(FrameError::LineTooLong),
            None => Ok(None),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_any_split() {
        let frames = [
            Frame::new(Status::Ok, "two\nlines\n"),
            Frame::new(Status::Error, ""),
            Frame::new(Status::Auth, "bindery 00ff"),
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        for chunk in 1..bytes.len() {
            let mut d = FrameDecoder::default();
            let mut got = Vec::new();
            for c in bytes.chunks(chunk) {
                d.feed(c);
                while let Some(f) = d.next_frame().expect("valid") {
                    got.push(f);
                }
            }
            assert_eq!(got, frames, "chunks of {chunk}");
        }
    }

    #[test]
    fn bad_headers_and_long_lines_are_errors() {
        let mut d = FrameDecoder::default();
        d.feed(b"maybe 3\nabc");
        assert!(matches!(d.next_frame(), Err(FrameError::Header(_))));
        let mut d = FrameDecoder::default();
        d.feed(b"ok 999999999999\n");
        assert!(d.next_frame().is_err());
        let mut l = LineDecoder::default();
        l.feed(b"summary\r\nbinding summary\nrest");
        assert_eq!(l.next_line(), Ok(Some("summary".into())));
        assert_eq!(l.next_line(), Ok(Some("binding summary".into())));
        assert_eq!(l.next_line(), Ok(None));
        l.feed(&vec![b'x'; MAX_LINE + 1]);
        assert_eq!(l.next_line(), Err(FrameError::LineTooLong));
    }
}
