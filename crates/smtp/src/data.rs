//! The DATA phase: un-dot-stuffing and the end-of-data mark.
//!
//! Only `<CRLF>.<CRLF>` ends the data, and a line starts only after a CRLF. A bare LF or a
//! bare CR is remembered; the session then refuses the whole message. Together this closes
//! every SMTP-smuggling variant (`\n.\n`, `\n.\r\n`, `\r.\r\n`, `\r\n.\r`, ...): a second
//! message hidden behind a lone LF stays part of the first one, which is rejected.
//!
//! A NUL byte is remembered too, and refuses the message the same way: a next hop that strips
//! NULs (several do) would turn `\r\n\0.\r\n` into an end-of-data mark and see a smuggled
//! second message where we relayed one.

/// Where the receiver is within the current line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a line (start of data or after CRLF).
    LineStart,
    /// Saw `.` at the start of a line.
    Dot,
    /// Saw `.` CR at the start of a line.
    DotCr,
    /// Inside a line.
    Mid,
    /// Saw CR inside a line.
    Cr,
}

/// Incremental DATA receiver. Feed it bytes; it appends the message (CRLF line ends,
/// dots un-stuffed) to its buffer until the size limit, then only counts.
#[derive(Debug)]
pub struct DataReceiver {
    state: State,
    body: Vec<u8>,
    /// Bytes of message seen, whether kept or not.
    size: u64,
    limit: u64,
    /// A CR or LF that was not part of a CRLF pair was seen.
    pub bare_line_end: bool,
    /// A NUL byte was seen.
    pub nul: bool,
}

impl DataReceiver {
    /// `limit` is the largest message kept, in bytes; 0 means no limit.
    pub fn new(limit: u64, capacity_hint: usize) -> DataReceiver {
        DataReceiver {
            state: State::LineStart,
            body: Vec::with_capacity(capacity_hint.min(1 << 20)),
            size: 0,
            limit: if limit == 0 { u64::MAX } else { limit },
            bare_line_end: false,
            nul: false,
        }
    }

    pub fn over_limit(&self) -> bool {
        self.size > self.limit
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// The message kept so far, once it has reached `at_least` bytes; receiving goes on into
    /// an empty buffer of the same capacity.
    pub fn take_body(&mut self, at_least: usize) -> Option<Vec<u8>> {
        if self.body.len() < at_least || self.body.is_empty() {
            return None;
        }
        let cap = self.body.capacity();
        Some(std::mem::replace(&mut self.body, Vec::with_capacity(cap)))
    }

    fn emit(&mut self, bytes: &[u8]) {
        if !self.nul && memchr::memchr(0, bytes).is_some() {
            self.nul = true;
        }
        self.size += bytes.len() as u64;
        if self.size <= self.limit {
            self.body.extend_from_slice(bytes);
        }
    }

    /// Consumes from `input`. Returns how many bytes were used and whether the end-of-data
    /// mark was among them; bytes after the mark belong to the next command.
    pub fn feed(&mut self, input: &[u8]) -> (usize, bool) {
        let mut i = 0;
        while i < input.len() {
            // Fast path: inside a line, copy everything up to the next CR or LF at once, and
            // go on across a CRLF whose next line does not start with a dot (after a CRLF, a
            // line start differs from mid-line only for a dot). One copy per run, not per line.
            if self.state == State::Mid {
                let start = i;
                i = loop {
                    let Some(k) = memchr::memchr2(b'\r', b'\n', &input[i..]) else {
                        break input.len();
                    };
                    let at = i + k;
                    match input.get(at..at + 3) {
                        Some([b'\r', b'\n', next]) if *next != b'.' => i = at + 2,
                        _ => break at,
                    }
                };
                if i > start {
                    self.emit(&input[start..i]);
                    continue;
                }
            }
            let c = input[i];
            i += 1;
            self.state = match (self.state, c) {
                (State::LineStart, b'.') => State::Dot,
                (State::LineStart | State::Mid, b'\r') => State::Cr,
                (State::LineStart | State::Mid, b'\n') => {
                    self.bare_line_end = true;
                    self.emit(b"\n");
                    State::Mid
                }
                (State::LineStart | State::Mid, _) => {
                    self.emit(&[c]);
                    State::Mid
                }
                (State::Dot, b'\r') => State::DotCr,
                (State::Dot, b'\n') => {
                    self.bare_line_end = true;
                    self.emit(b".\n");
                    State::Mid
                }
                // A stuffed dot: drop it, keep what follows.
                (State::Dot, _) => {
                    self.emit(&[c]);
                    State::Mid
                }
                (State::DotCr, b'\n') => {
                    self.state = State::LineStart;
                    return (i, true);
                }
                (State::DotCr, _) => {
                    // `.` CR x: a bare CR after a stuffed-looking dot; keep both, look at x again.
                    self.bare_line_end = true;
                    self.emit(b".\r");
                    i -= 1;
                    State::Mid
                }
                (State::Cr, b'\n') => {
                    self.emit(b"\r\n");
                    State::LineStart
                }
                (State::Cr, b'\r') => {
                    self.bare_line_end = true;
                    self.emit(b"\r");
                    State::Cr
                }
                (State::Cr, _) => {
                    self.bare_line_end = true;
                    self.emit(b"\r");
                    i -= 1;
                    State::Mid
                }
            };
        }
        (i, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` one byte at a time and all at once; both must agree.
    fn run(input: &[u8]) -> (Option<usize>, Vec<u8>, bool) {
        let mut whole = DataReceiver::new(0, 0);
        let (used, done) = whole.feed(input);
        let mut bytewise = DataReceiver::new(0, 0);
        let mut end = None;
        for (k, b) in input.iter().enumerate() {
            let (_, d) = bytewise.feed(std::slice::from_ref(b));
            if d {
                end = Some(k + 1);
                break;
            }
        }
        assert_eq!(done.then_some(used), end, "chunking changed the end");
        assert_eq!(whole.bare_line_end, bytewise.bare_line_end);
        assert_eq!(whole.nul, bytewise.nul);
        let bare = whole.bare_line_end;
        let body = whole.into_body();
        assert_eq!(body, bytewise.into_body());
        (end, body, bare)
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf() {
        let (end, body, bare) = run(b"a\r\n..b\r\n.\r\nQUIT\r\n");
        assert_eq!(end, Some(11));
        assert_eq!(body, b"a\r\n.b\r\n");
        assert!(!bare);
        let (end, body, _) = run(b".\r\n");
        assert_eq!(end, Some(3));
        assert!(body.is_empty());
    }

    #[test]
    fn smuggling_variants_do_not_end_data() {
        for v in [
            &b"a\n.\nMAIL FROM:<x@y>\r\n"[..],
            b"a\n.\r\nMAIL FROM:<x@y>\r\n",
            b"a\r.\r\nMAIL FROM:<x@y>\r\n",
            b"a\r\n.\rMAIL FROM:<x@y>\r\n",
            b"a\r\n.\nMAIL FROM:<x@y>\r\n",
            b"a\r.\rMAIL\r\n",
            b"a\r\r\n.\n\r\n",
        ] {
            let (end, _, bare) = run(v);
            assert_eq!(end, None, "{:?}", String::from_utf8_lossy(v));
            assert!(bare, "{:?}", String::from_utf8_lossy(v));
        }
    }

    #[test]
    fn a_nul_anywhere_is_remembered() {
        for v in [
            &b"a\r\n\0.\r\nMAIL\r\n.\r\n"[..],
            b"\0\r\n.\r\n",
            b"ab\0c\r\n.\r\n",
        ] {
            let mut d = DataReceiver::new(0, 0);
            let (_, done) = d.feed(v);
            assert!(done && d.nul, "{v:?}");
        }
        let mut d = DataReceiver::new(0, 0);
        d.feed(b"clean\r\n.\r\n");
        assert!(!d.nul);
    }

    #[test]
    fn size_limit_counts_but_drops() {
        let mut d = DataReceiver::new(4, 0);
        let (_, done) = d.feed(b"abcdef\r\n.\r\n");
        assert!(done);
        assert!(d.over_limit());
        assert_eq!(d.size(), 8);
    }
}
