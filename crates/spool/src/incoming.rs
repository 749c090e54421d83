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
