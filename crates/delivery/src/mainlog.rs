//! The JSON-lines log (`Mainlog`): one record per line, written by a thread of its own so that
//! no SMTP session waits on it.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;

use serde::Serialize;

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

pub struct MainLog {
    tx: Mutex<Option<Sender<Vec<u8>>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl MainLog {
    pub fn open(path: &Path) -> std::io::Result<MainLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let writer = std::thread::Builder::new()
            .name("mainlog".into())
            .spawn(move || {
                let mut out = BufWriter::new(file);
                while let Ok(line) = rx.recv() {
                    let _ = out.write_all(&line);
                    // Batch what is already queued, then flush so `tail -f` sees it.
                    while let Ok(more) = rx.try_recv() {
                        let _ = out.write_all(&more);
                    }
                    let _ = out.flush();
                }
            })?;
        Ok(MainLog {
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    pub fn record(&self, rec: &impl Serialize) {
        let Ok(mut line) = serde_json::to_vec(rec) else {
            return;
        };
        line.push(b'\n');
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = tx.send(line);
        }
    }

    /// Writes what is queued and stops the writer.
    pub fn close(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = h.join();
        }
    }
}

impl Drop for MainLog {
    fn drop(&mut self) {
        self.close();
    }
}
