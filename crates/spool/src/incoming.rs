//! A message body written to the spool as it arrives, before the message can be stored: what
//! the listener switches to once a message outgrows the memory it may hold (`Incoming`). The
//! disk spool writes it to `incoming/ID.msg` (a streamed file, [`crate::file::streamed_head`])
//! and moves it into the queue when it is stored; until then it is nobody's mail, so a crash
//! or a refusal leaves nothing in the queue, and recovery empties `incoming/`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::SpoolError;
use crate::fs::{Fs, FsFile};

/// Where an incoming body is being written.
pub(crate) enum Sink {
    /// A streamed message file in the disk spool's `incoming/` folder.
    Disk {
        file: Box<dyn FsFile>,
        path: PathBuf,
        fs: Arc<dyn Fs>,
    },
    /// Memory, for spools without files.
    Memory(Vec<u8>),
    /// Handed to `store_incoming`.
    Taken,
}

/// A body being written as it arrives. Dropped without being stored, it leaves nothing.
pub struct Incoming {
    pub(crate) id: String,
    pub(crate) sink: Sink,
    len: u64,
    crc: crc32fast::Hasher,
}

impl Incoming {
    pub(crate) fn new(id: &str, sink: Sink) -> Incoming {
        Incoming {
            id: id.to_string(),
            sink,
            len: 0,
            crc: crc32fast::Hasher::new(),
        }
    }

    /// An incoming body held in memory (the default for a spool without files).
    pub fn memory(id: &str) -> Incoming {
        Incoming::new(id, Sink::Memory(Vec::new()))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends to the body. Blocking file I/O: call it off the async threads.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), SpoolError> {
        match &mut self.sink {
            Sink::Disk { file, path, .. } => {
                file.write_all(bytes).map_err(|e| SpoolError::Io {
                    op: "write",
                    path: path.clone(),
                    source: e,
                })?;
            }
            Sink::Memory(v) => v.extend_from_slice(bytes),
            Sink::Taken => return Err(SpoolError::Closed),
        }
        self.len += bytes.len() as u64;
        self.crc.update(bytes);
        Ok(())
    }

    /// Hands what was written so far to `each`, in chunks of at most 256 KiB, in order:
    /// for signing a message too large to hold in memory. Blocking file I/O (from the page
    /// cache, as it was just written): call it off the async threads.
    pub fn read_body(&self, each: &mut dyn FnMut(&[u8])) -> Result<(), SpoolError> {
        match &self.sink {
            Sink::Disk { path, fs, .. } => {
                // The writing handle is write-only: read through one of our own.
                let file = fs
                    .open(path, crate::fs::Open::Read, 0)
                    .map_err(|e| SpoolError::Io {
                        op: "open",
                        path: path.clone(),
                        source: e,
                    })?;
                let mut buf = vec![0u8; 256 * 1024];
                let mut at = 0u64;
                while at < self.len {
                    let want = buf
                        .len()
                        .min(usize::try_from(self.len - at).unwrap_or(buf.len()));
                    let n = file
                        .read_at(&mut buf[..want], crate::file::STREAMED_HEAD_LEN as u64 + at)
                        .map_err(|e| SpoolError::Io {
                            op: "read",
                            path: path.clone(),
                            source: e,
                        })?;
                    if n == 0 {
                        return Err(SpoolError::Io {
                            op: "read",
                            path: path.clone(),
                            source: std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "the file is shorter than what was written",
                            ),
                        });
                    }
                    each(&buf[..n]);
                    at += n as u64;
                }
                Ok(())
            }
            Sink::Memory(v) => {
                for chunk in v.chunks(256 * 1024) {
                    each(chunk);
                }
                Ok(())
            }
            Sink::Taken => Err(SpoolError::Closed),
        }
    }

    /// The body's length and CRC-32, as `Envelope::seal` records them.
    pub fn seal(&self) -> (u64, u32) {
        (self.len, self.crc.clone().finalize())
    }

    /// Takes the sink out for storing; the drop then removes nothing.
    pub(crate) fn take(&mut self) -> Sink {
        std::mem::replace(&mut self.sink, Sink::Taken)
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Sink::Disk { path, fs, .. } = &self.sink {
            let _ = fs.remove(path);
        }
    }
}
