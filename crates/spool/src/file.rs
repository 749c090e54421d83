//! The message file, `ID.msg`: one file per accepted message, so accepting, delivering and
//! forgetting a message creates, flushes and unlinks one inode, not two.
//!
//! ```text
//! bindery-spool 2 LEN\n     the head line: format and the envelope's length in bytes
//! ENVELOPE                  LEN bytes, as Envelope::encode wrote them at acceptance
//! BODY                      the message (Received header first), to the end of the file
//! ```
//! The envelope in the file is the one at acceptance. A later change (an attempt, a
//! recipient's new state) goes to `ID.env`, which then stands instead of it: a retry rewrites a
//! few hundred bytes, never the body.
//!
//! A message too large to hold in memory is written as it arrives (see [`crate::Incoming`]),
//! before its envelope exists, so its file puts the envelope after the body:
//!
//! ```text
//! bindery-spool 3 BODYLEN\n  the head line: the body's length, 20 digits (rewritten at commit)
//! BODY                      BODYLEN bytes
//! ENVELOPE                  to the end of the file
//! ```
//!
//! Spools written before this format have a `.msg` holding only the body and always an
//! `.env`; [`Head::read`] tells them apart by the head line, so they are still delivered.

use std::io;

use crate::fs::FsFile;

/// The head line's start. A body of the old format starts with a header field (our own
/// `Received:` or a report's fields), never with this.
const MAGIC: &[u8] = b"bindery-spool 2 ";
/// The head line of a streamed message (envelope after the body).
const MAGIC_STREAMED: &[u8] = b"bindery-spool 3 ";
/// A streamed message's head line: magic, 20 digits, newline.
pub const STREAMED_HEAD_LEN: usize = MAGIC_STREAMED.len() + 20 + 1;
/// The head line is at most this long (magic, 20 digits, newline).
const HEAD_MAX: usize = 40;

/// The head line and envelope to write before the body.
pub fn head(envelope: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEAD_MAX + envelope.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(envelope.len().to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(envelope);
    out
}

/// The head line of a streamed message whose body is `body_len` bytes.
pub fn streamed_head(body_len: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(STREAMED_HEAD_LEN);
    out.extend_from_slice(MAGIC_STREAMED);
    out.extend_from_slice(format!("{body_len:020}\n").as_bytes());
    out
}

/// Where the parts of one message file are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The envelope written at acceptance: (offset, length). `None` in an old-format file.
    pub envelope: Option<(u64, u64)>,
    /// Where the body starts.
    pub body_start: u64,
    /// The body's length.
    body_len: u64,
    /// The file's length.
    pub file_len: u64,
}

impl Head {
    /// Reads the head line of an open message file. `Err` with `InvalidData` when the head
    /// line promises an envelope longer than the file (a torn write).
    pub fn read(file: &dyn FsFile) -> io::Result<Head> {
        let file_len = file.len()?;
        let mut buf = [0u8; HEAD_MAX];
        let n = read_at_most(file, &mut buf, 0)?;
        let torn = || io::Error::new(io::ErrorKind::InvalidData, "torn head line");
        let number = |rest: &[u8]| -> io::Result<(u64, usize)> {
            let digits = rest.iter().position(|&b| b == b'\n').ok_or_else(torn)?;
            let n = std::str::from_utf8(&rest[..digits])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(torn)?;
            Ok((n, digits))
        };
        if let Some(rest) = buf[..n].strip_prefix(MAGIC_STREAMED) {
            let (body_len, digits) = number(rest)?;
            let body_start = (MAGIC_STREAMED.len() + digits + 1) as u64;
            let env_start = body_start.checked_add(body_len).ok_or_else(torn)?;
            if env_start >= file_len {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("torn message: the file ends at {file_len}, the body at {env_start}"),
                ));
            }
            return Ok(Head {
                envelope: Some((env_start, file_len - env_start)),
                body_start,
                body_len,
                file_len,
            });
        }
        let Some(rest) = buf[..n].strip_prefix(MAGIC) else {
            return Ok(Head {
                envelope: None,
                body_start: 0,
                body_len: file_len,
                file_len,
            });
        };
        let (env_len, digits) = number(rest)?;
        let env_start = (MAGIC.len() + digits + 1) as u64;
        let body_start = env_start.checked_add(env_len).ok_or_else(torn)?;
        if body_start > file_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("torn envelope: the file ends at {file_len}, the envelope at {body_start}"),
            ));
        }
        Ok(Head {
            envelope: Some((env_start, env_len)),
            body_start,
            body_len: file_len - body_start,
            file_len,
        })
    }

    /// The envelope written at acceptance, if the file has one.
    pub fn envelope(&self, file: &dyn FsFile) -> io::Result<Option<Vec<u8>>> {
        let Some((start, len)) = self.envelope else {
            return Ok(None);
        };
        let mut buf = vec![0; usize::try_from(len).map_err(io::Error::other)?];
        read_exact_at(file, &mut buf, start)?;
        Ok(Some(buf))
    }

    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// The body, read in one call into a buffer of its exact size.
    pub fn body(&self, file: &dyn FsFile) -> io::Result<Vec<u8>> {
        self.body_after(file, b"")
    }

    /// `prefix` then the body, read into one buffer of their exact size (a large message's
    /// signatures before it: no second copy of the body).
    pub fn body_after(&self, file: &dyn FsFile, prefix: &[u8]) -> io::Result<Vec<u8>> {
        let len = usize::try_from(self.body_len()).map_err(io::Error::other)?;
        let mut buf = vec![0; prefix.len() + len];
        buf[..prefix.len()].copy_from_slice(prefix);
        read_exact_at(file, &mut buf[prefix.len()..], self.body_start)?;
        Ok(buf)
    }
}

/// Fills `buf` from `offset`, or fails with `UnexpectedEof`.
fn read_exact_at(file: &dyn FsFile, buf: &mut [u8], offset: u64) -> io::Result<()> {
    if read_at_most(file, buf, offset)? < buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the file ends early",
        ));
    }
    Ok(())
}

/// Reads up to `buf.len()` bytes at `offset`; fewer only at the end of the file.
fn read_at_most(file: &dyn FsFile, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{Fs, Open, RealFs};

    fn file_with(bytes: &[u8]) -> (tempfile::TempDir, Box<dyn FsFile>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        std::fs::write(&path, bytes).unwrap();
        let f = RealFs.open(&path, Open::Read, 0).unwrap();
        (dir, f)
    }

    #[test]
    fn head_envelope_and_body_round_trip() {
        let mut bytes = head(b"{\"id\":1}\ncrc32 0\n");
        bytes.extend_from_slice(b"Received: x\r\n\r\nbody\r\n");
        let (_d, f) = file_with(&bytes);
        let h = Head::read(&*f).unwrap();
        assert_eq!(h.envelope, Some((19, 17)));
        assert_eq!(h.envelope(&*f).unwrap().unwrap(), b"{\"id\":1}\ncrc32 0\n");
        assert_eq!(h.body(&*f).unwrap(), b"Received: x\r\n\r\nbody\r\n");
    }

    #[test]
    fn a_streamed_file_has_its_envelope_after_the_body() {
        let mut bytes = streamed_head(21);
        assert_eq!(bytes.len(), STREAMED_HEAD_LEN);
        bytes.extend_from_slice(b"Received: x\r\n\r\nbody\r\n");
        bytes.extend_from_slice(b"{\"id\":1}\ncrc32 0\n");
        let (_d, f) = file_with(&bytes);
        let h = Head::read(&*f).unwrap();
        assert_eq!(h.body_len(), 21);
        assert_eq!(h.body(&*f).unwrap(), b"Received: x\r\n\r\nbody\r\n");
        assert_eq!(h.envelope(&*f).unwrap().unwrap(), b"{\"id\":1}\ncrc32 0\n");
        // Cut before the envelope: torn.
        let (_d, f) = file_with(&bytes[..STREAMED_HEAD_LEN + 21]);
        assert_eq!(
            Head::read(&*f).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn an_old_format_file_is_all_body() {
        let (_d, f) = file_with(b"Received: x\r\n\r\nbody\r\n");
        let h = Head::read(&*f).unwrap();
        assert_eq!((h.envelope, h.body_start, h.body_len()), (None, 0, 21));
    }

    #[test]
    fn torn_heads_are_errors_not_panics() {
        for bytes in [
            &b"bindery-spool 2 "[..],
            b"bindery-spool 2 12",
            b"bindery-spool 2 x\n",
            b"bindery-spool 2 99\n{}",
            b"bindery-spool 2 99999999999999999999999\n",
            b"bindery-spool 3 00000000000000000099\nshort",
            b"bindery-spool 3 18446744073709551615\n",
        ] {
            let (_d, f) = file_with(bytes);
            let e = Head::read(&*f).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{bytes:?}");
        }
    }
}
