//! The JSON-lines log (`Mainlog`): one record per line, written by a thread of its own
//! ([`LogFile`]) so that no SMTP session waits on it.

use std::path::Path;

use serde::Serialize;

use crate::logfile::LogFile;

/// What one accepted message looks like in the log.
#[derive(Serialize)]
pub struct Reception<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'a str,
    /// Seconds since the Unix epoch.
    pub time: u64,
    pub peer: String,
    pub ehlo: &'a str,
    pub sender: &'a str,
    pub recipients: Vec<&'a str>,
    pub size: u64,
    pub binding_group: &'a str,
    pub binding: &'a str,
    pub listener: &'a str,
}

/// A message a policy discarded (`msg:discard`): the client was told it was accepted.
#[derive(Serialize)]
pub struct Discard<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'a str,
    pub time: u64,
    pub peer: String,
    pub sender: &'a str,
    pub recipients: Vec<&'a str>,
    /// The reason the script gave, as Momentum logs it ("550 5.7.0 discarded by policy").
    pub reason: String,
    pub listener: &'a str,
}

pub struct MainLog(LogFile);

impl MainLog {
    pub fn open(path: &Path) -> std::io::Result<MainLog> {
        LogFile::open(path, 0o644, None).map(MainLog)
    }

    pub fn record(&self, rec: &impl Serialize) {
        let Ok(mut line) = serde_json::to_vec(rec) else {
            return;
        };
        line.push(b'\n');
        self.0.line(line);
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Closes the file and opens its path again (after rotation).
    pub fn reopen(&self) {
        self.0.reopen();
    }

    /// Writes what is queued and stops the writer.
    pub fn close(&self) {
        self.0.close();
    }
}
