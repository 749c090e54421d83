//! The on-disk spool: plain files in hashed folders, with group commit.
//!
//! Layout under `spoolbase`:
//! ```text
//! queue/00 .. queue/ff/   ID.msg (head line, envelope at acceptance, body: see crate::file)
//!                         ID.env (only after the envelope changed: it stands instead)
//!                         ID.jrn (recipients' changes of state since: see crate::journal)
//! incoming/               bodies being received (crate::Incoming); emptied at open
//! quarantine/             files recovery could not use, moved aside and logged
//! ```
//! A message is durable when its file and folder are flushed. One committer thread takes
//! every store request that is waiting, writes the files, flushes them together (in parallel
//! `fdatasync`s, or one `syncfs`), flushes each folder once, and only then answers all of
//! them. Twenty concurrent transactions cost about one flush round, not twenty.
//! ARCHITECTURE.md has the measurements behind the layout.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::envelope::Envelope;
use crate::file::{self, Head};
use crate::fs::{Fs, FsFile, Open, RealFs};
use crate::id::folder_of;
use crate::journal;
use crate::{Completion, Quarantined, Recovered, Spool, SpoolError};
use crate::{Incoming, incoming};

/// Most messages in one commit.
const MAX_BATCH: usize = 256;
/// Threads that run `fdatasync` in parallel.
const SYNC_THREADS: usize = 16;
/// Consecutive failed writes after which the spool reports itself unhealthy.
const UNHEALTHY_AFTER: u32 = 3;

/// How a batch is made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMethod {
    /// `fdatasync` every file (in parallel), then `fsync` each folder touched.
    Fsync,
    /// One `syncfs` on the spool's file system per batch. Fastest when the spool has a file
    /// system of its own; on a shared one it also flushes other programs' writes.
    Syncfs,
}

/// Counters for benchmarks and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub batches: AtomicU64,
    pub messages: AtomicU64,
    /// Removals that failed (the message stays, and is delivered again after a restart).
    pub remove_failures: AtomicU64,
    /// Bytes written after acceptance: envelope rewrites and journal lines.
    pub envelope_bytes: AtomicU64,
}

struct Job {
    id: String,
    what: Content,
    done: Completion,
}

/// What a store writes.
enum Content {
    /// A message held in memory: the head line and envelope ([`file::head`]), then the body.
    Whole { head: Vec<u8>, body: Vec<u8> },
    /// A body already written to `incoming/` ([`crate::Incoming`]): its envelope goes after
    /// it, its head line is rewritten with the body's length, and it moves into the queue.
    Streamed {
        file: Box<dyn FsFile>,
        from: PathBuf,
        body_len: u64,
        envelope: Vec<u8>,
    },
}

struct Inner {
    /// Where the files are: the real file system, or one that can lose power in a test.
    fs: Arc<dyn Fs>,
    base: PathBuf,
    queue: PathBuf,
    /// Bodies being received ([`crate::Incoming`]); emptied at open.
    incoming: PathBuf,
    quarantine: PathBuf,
    mode: u32,
    method: SyncMethod,
    failures: AtomicU32,
    stats: Stats,
    pool: SyncPool,
}

pub struct DiskSpool {
    inner: Arc<Inner>,
    tx: Mutex<Option<SyncSender<Job>>>,
    committer: Mutex<Option<JoinHandle<()>>>,
}

fn io_err(op: &'static str, path: &Path, source: io::Error) -> SpoolError {
    SpoolError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl DiskSpool {
    /// Opens (creating if needed) the spool under `base`, with files created as `mode`.
    pub fn open(base: &Path, mode: u32, method: SyncMethod) -> Result<DiskSpool, SpoolError> {
        DiskSpool::open_on(Arc::new(RealFs), base, mode, method)
    }

    /// [`DiskSpool::open`] on a given file system (a [`crate::fs::MemFs`] view in the crash
    /// test).
    pub fn open_on(
        fs: Arc<dyn Fs>,
        base: &Path,
        mode: u32,
        method: SyncMethod,
    ) -> Result<DiskSpool, SpoolError> {
        let queue = base.join("queue");
        let quarantine = base.join("quarantine");
        let incoming = base.join("incoming");
        for d in [base, &queue, &quarantine, &incoming] {
            fs.create_dir_all(d)
                .map_err(|e| io_err("create folder", d, e))?;
        }
        // Bodies a crash cut off before their message was stored: never acknowledged.
        if let Ok(entries) = fs.list(&incoming) {
            for e in entries.iter().filter(|e| !e.is_dir) {
                let _ = fs.remove(&incoming.join(&e.name));
            }
        }
        fs.spread_subfolders(&queue);
        for i in 0..=255u8 {
            let d = queue.join(format!("{i:02x}"));
            fs.create_dir_all(&d)
                .map_err(|e| io_err("create folder", &d, e))?;
        }
        sync_dir(&*fs, &queue)?;
        sync_dir(&*fs, base)?;
        let inner = Arc::new(Inner {
            fs,
            base: base.to_path_buf(),
            queue,
            incoming,
            quarantine,
            mode,
            method,
            failures: AtomicU32::new(0),
            stats: Stats::default(),
            pool: SyncPool::new(SYNC_THREADS),
        });
        // A bounded queue: when the disk cannot keep up, senders wait here (back-pressure)
        // instead of piling bodies up in memory.
        let (tx, rx) = mpsc::sync_channel::<Job>(4 * MAX_BATCH);
        let worker = Arc::clone(&inner);
        let committer = std::thread::Builder::new()
            .name("spool-commit".into())
            .spawn(move || committer(worker, rx))
            .map_err(|e| io_err("start committer", base, e))?;
        Ok(DiskSpool {
            inner,
            tx: Mutex::new(Some(tx)),
            committer: Mutex::new(Some(committer)),
        })
    }

    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Bytes an unprivileged writer may still use on the spool's file system (`statvfs`).
    pub fn free_bytes(&self) -> Option<u64> {
        self.inner.fs.free_bytes(&self.inner.base)
    }

    /// Reads the spool without changing it: what `bindery spool list` shows. Problems are
    /// reported as they would be quarantined, but nothing moves.
    pub fn scan_readonly(base: &Path) -> Result<Recovered, SpoolError> {
        scan(&RealFs, &base.join("queue"), None)
    }

    /// Stops the committer after it has answered every request already made.
    pub fn close(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = self
            .committer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = h.join();
        }
    }

    fn paths(&self, id: &str) -> Result<MessagePaths, SpoolError> {
        MessagePaths::of(&self.inner.queue, id)
    }

    /// Hands a store to the committer.
    fn submit(&self, job: Job) {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match tx {
            Some(tx) => {
                if let Err(mpsc::SendError(job)) = tx.send(job) {
                    job.fail(&*self.inner.fs, SpoolError::Closed);
                }
            }
            None => job.fail(&*self.inner.fs, SpoolError::Closed),
        }
    }
}

/// Where one message's files live: `queue/FOLDER/ID.msg`, and after changes `ID.env` and
/// `ID.jrn`.
struct MessagePaths {
    folder: PathBuf,
    env: PathBuf,
    msg: PathBuf,
    jrn: PathBuf,
}

impl MessagePaths {
    fn of(queue: &Path, id: &str) -> Result<MessagePaths, SpoolError> {
        let folder = queue.join(folder_of(id).ok_or_else(|| SpoolError::NotFound(id.to_string()))?);
        Ok(MessagePaths {
            env: folder.join(format!("{id}.env")),
            msg: folder.join(format!("{id}.msg")),
            jrn: folder.join(format!("{id}.jrn")),
            folder,
        })
    }
}

impl Drop for DiskSpool {
    fn drop(&mut self) {
        self.close();
    }
}

impl Spool for DiskSpool {
    fn store(&self, mut env: Envelope, body: Vec<u8>, done: Completion) {
        env.seal(&body);
        self.submit(Job {
            id: env.id.to_string(),
            what: Content::Whole {
                head: file::head(&env.encode()),
                body,
            },
            done,
        });
    }

    /// `incoming/ID.msg`, opened exclusively, with a head line to be rewritten at commit.
    fn incoming(&self, id: &str) -> Result<Incoming, SpoolError> {
        folder_of(id).ok_or_else(|| SpoolError::NotFound(id.to_string()))?;
        let path = self.inner.incoming.join(format!("{id}.msg"));
        let fs = &self.inner.fs;
        let file = create(&**fs, &path, self.inner.mode, true)?;
        if let Err(e) = file.write_all(&file::streamed_head(0)) {
            let _ = fs.remove(&path);
            return Err(io_err("write", &path, e));
        }
        Ok(Incoming::new(
            id,
            incoming::Sink::Disk {
                file,
                path,
                fs: Arc::clone(fs),
            },
        ))
    }

    fn store_incoming(&self, mut env: Envelope, mut body: Incoming, done: Completion) {
        let (len, crc) = body.seal();
        env.body_len = len;
        env.body_crc = crc;
        let incoming::Sink::Disk { file, path, .. } = body.take() else {
            return done(Err(SpoolError::Closed));
        };
        self.submit(Job {
            id: env.id.to_string(),
            what: Content::Streamed {
                file,
                from: path,
                body_len: len,
                envelope: env.encode(),
            },
            done,
        });
    }

    fn update(&self, env: &Envelope) -> Result<(), SpoolError> {
        let paths = self.paths(&env.id)?;
        let (path, tmp) = (&paths.env, paths.env.with_extension("env.tmp"));
        let bytes = env.encode();
        let fs = &*self.inner.fs;
        let r = (|| {
            let f = create(fs, &tmp, self.inner.mode, false)?;
            f.write_all(&bytes)
                .and_then(|_| f.sync_data())
                .map_err(|e| io_err("write", &tmp, e))?;
            fs.rename(&tmp, path)
                .map_err(|e| io_err("rename", &tmp, e))?;
            sync_dir(fs, &paths.folder)
        })();
        if r.is_err() {
            let _ = fs.remove(&tmp);
            return r;
        }
        self.inner
            .stats
            .envelope_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        // The new envelope holds every state the journal did. If this unlink is lost in a
        // crash, replaying the journal onto it changes nothing.
        let _ = fs.remove(&paths.jrn);
        r
    }

    /// Appends one [`journal`] line and flushes it; the first append also flushes the folder,
    /// which now names the journal.
    fn settle_recipients(&self, env: &Envelope, changed: &[u32]) -> Result<(), SpoolError> {
        let paths = self.paths(&env.id)?;
        let line = journal::line(env, changed);
        let path = &paths.jrn;
        let fs = &*self.inner.fs;
        let (file, created) = match fs.open(path, Open::Append, self.inner.mode) {
            Ok(f) => (f, false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let f = fs
                    .open(path, Open::AppendNew, self.inner.mode)
                    .map_err(|e| io_err("create", path, e))?;
                (f, true)
            }
            Err(e) => return Err(io_err("open", path, e)),
        };
        file.write_all(&line)
            .and_then(|_| file.sync_data())
            .map_err(|e| io_err("write", path, e))?;
        if created {
            sync_dir(fs, &paths.folder)?;
        }
        self.inner
            .stats
            .envelope_bytes
            .fetch_add(line.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn remove(&self, id: &str) -> Result<(), SpoolError> {
        let r = self.inner.remove(id);
        if r.is_err() {
            self.inner
                .stats
                .remove_failures
                .fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    fn body(&self, id: &str) -> Result<Vec<u8>, SpoolError> {
        let msg = self.paths(id)?.msg;
        self.inner
            .fs
            .open(&msg, Open::Read, 0)
            .and_then(|f| Head::read(&*f)?.body(&*f))
            .map_err(|e| io_err("read", &msg, e))
    }

    fn message(&self, env: &Envelope) -> Result<Vec<u8>, SpoolError> {
        let msg = self.paths(&env.id)?.msg;
        let prefix = env.prefix.as_deref().unwrap_or_default().as_bytes();
        self.inner
            .fs
            .open(&msg, Open::Read, 0)
            .and_then(|f| Head::read(&*f)?.body_after(&*f, prefix))
            .map_err(|e| io_err("read", &msg, e))
    }

    fn recover(&self) -> Result<Recovered, SpoolError> {
        scan(
            &*self.inner.fs,
            &self.inner.queue,
            Some(&self.inner.quarantine),
        )
    }

    fn healthy(&self) -> bool {
        self.inner.failures.load(Ordering::Relaxed) < UNHEALTHY_AFTER
    }

    fn probe(&self) -> bool {
        let path = self.inner.base.join(".probe");
        let fs = &*self.inner.fs;
        let ok = (|| -> io::Result<()> {
            let f = fs.open(&path, Open::Truncate, 0o600)?;
            f.write_all(&[0u8; 4096])?;
            f.sync_data()
        })()
        .is_ok();
        let _ = fs.remove(&path);
        if ok {
            self.inner.failures.store(0, Ordering::Relaxed);
        }
        ok
    }
}

fn create(
    fs: &dyn Fs,
    path: &Path,
    mode: u32,
    exclusive: bool,
) -> Result<Box<dyn FsFile>, SpoolError> {
    let how = if exclusive {
        Open::CreateNew
    } else {
        Open::Truncate
    };
    fs.open(path, how, mode)
        .map_err(|e| io_err("create", path, e))
}

fn sync_dir(fs: &dyn Fs, dir: &Path) -> Result<(), SpoolError> {
    fs.sync_dir(dir).map_err(|e| io_err("sync folder", dir, e))
}

impl Job {
    /// Completes the job with an error, leaving nothing of it behind.
    fn fail(self, fs: &dyn Fs, e: SpoolError) {
        if let Content::Streamed { from, .. } = &self.what {
            let _ = fs.remove(from);
        }
        (self.done)(Err(e));
    }
}

/// A job whose files are written and waiting to be flushed.
struct Written {
    id: String,
    done: Completion,
    folder: PathBuf,
    files: Vec<(PathBuf, Arc<dyn FsFile>)>,
    /// A streamed message's move into the queue, made once it is flushed: (from, to).
    rename: Option<(PathBuf, PathBuf)>,
    error: Option<SpoolError>,
}

impl Written {
    fn fail(&mut self, e: SpoolError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// Moves a flushed streamed message into the queue; its folder is flushed after.
    fn move_into_queue(&mut self, fs: &dyn Fs) {
        let Some((from, to)) = self.rename.take() else {
            return;
        };
        match fs.rename(&from, &to) {
            Ok(()) => {
                for (path, _) in &mut self.files {
                    if *path == from {
                        path.clone_from(&to);
                    }
                }
            }
            Err(e) => self.fail(io_err("rename", &from, e)),
        }
    }
}

fn committer(inner: Arc<Inner>, rx: Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        inner.commit(batch);
    }
}

impl Inner {
    fn remove(&self, id: &str) -> Result<(), SpoolError> {
        let MessagePaths { env, msg, jrn, .. } = MessagePaths::of(&self.queue, id)?;
        // The message file first: without it the message is gone, and an `.env` or `.jrn`
        // left behind by a crash here is cleared by recovery. (The other order could leave the
        // envelope of acceptance standing, and the message would go again to recipients that
        // had it.)
        self.fs
            .remove(&msg)
            .map_err(|e| io_err("remove", &msg, e))?;
        for path in [env, jrn] {
            match self.fs.remove(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(io_err("remove", &path, e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn write(&self, job: Job) -> Written {
        let Job { id, what, done } = job;
        let mut w = Written {
            id,
            done,
            folder: PathBuf::new(),
            files: Vec::with_capacity(1),
            rename: None,
            error: None,
        };
        let paths = match MessagePaths::of(&self.queue, &w.id) {
            Ok(p) => p,
            Err(e) => {
                if let Content::Streamed { from, .. } = &what {
                    let _ = self.fs.remove(from);
                }
                w.fail(e);
                return w;
            }
        };
        w.folder = paths.folder;
        let path = paths.msg;
        match what {
            Content::Whole { head, body } => {
                let r = create(&*self.fs, &path, self.mode, true).and_then(|f| {
                    let r = f
                        .write_all(&head)
                        .and_then(|_| f.write_all(&body))
                        .map_err(|e| io_err("write", &path, e));
                    w.files.push((path.clone(), Arc::from(f)));
                    r
                });
                if let Err(e) = r {
                    w.error = Some(e);
                }
            }
            Content::Streamed {
                file,
                from,
                body_len,
                envelope,
            } => {
                let at = file::STREAMED_HEAD_LEN as u64 + body_len;
                let r = file
                    .write_all_at(&envelope, at)
                    .and_then(|_| file.write_all_at(&file::streamed_head(body_len), 0))
                    .map_err(|e| io_err("write", &from, e));
                w.files.push((from.clone(), Arc::from(file)));
                w.rename = Some((from, path));
                if let Err(e) = r {
                    w.error = Some(e);
                }
            }
        }
        w
    }

    fn commit(&self, batch: Vec<Job>) {
        let mut written: Vec<Written> = batch.into_iter().map(|j| self.write(j)).collect();
        match self.method {
            SyncMethod::Fsync => {
                // Every file's writes go to the disk queue first, so they are merged and
                // dispatched together; the flushes then mostly wait. On this machine's ext4 this
                // took 100-recipient API requests from 2.5x to 3.3x SMTP injection
                // (`bench/http-inject.sh`).
                for (_, f) in written.iter().flat_map(|w| &w.files) {
                    f.start_writeback();
                }
                let files: Vec<(usize, Arc<dyn FsFile>)> = written
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| w.error.is_none())
                    .flat_map(|(i, w)| w.files.iter().map(move |(_, f)| (i, Arc::clone(f))))
                    .collect();
                for (i, r) in self.pool.sync_all(files) {
                    if let Err(e) = r {
                        let path = written[i].folder.clone();
                        written[i].fail(io_err("sync", &path, e));
                    }
                }
            }
            SyncMethod::Syncfs => {
                if written.iter().any(|w| w.error.is_none())
                    && let Err(e) = self.fs.syncfs(&self.queue)
                {
                    for w in written.iter_mut() {
                        w.fail(io_err(
                            "syncfs",
                            &self.queue,
                            io::Error::new(e.kind(), e.to_string()),
                        ));
                    }
                }
            }
        }
        for w in written.iter_mut().filter(|w| w.error.is_none()) {
            w.move_into_queue(&*self.fs);
        }
        // Each folder once, however many messages landed in it.
        let folders: BTreeSet<PathBuf> = written
            .iter()
            .filter(|w| w.error.is_none())
            .map(|w| w.folder.clone())
            .collect();
        for folder in folders {
            if let Err(e) = sync_dir(&*self.fs, &folder) {
                for w in written.iter_mut().filter(|w| w.folder == folder) {
                    w.fail(SpoolError::Io {
                        op: "sync folder",
                        path: folder.clone(),
                        source: io::Error::other(e.to_string()),
                    });
                }
            }
        }
        // Counted before any completion runs, so a caller that saw its store complete also
        // sees it counted (a test reading the figures once all stores returned raced this).
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats
            .messages
            .fetch_add(written.len() as u64, Ordering::Relaxed);
        for w in written {
            match w.error {
                None => {
                    self.failures.store(0, Ordering::Relaxed);
                    (w.done)(Ok(()));
                }
                Some(e) => {
                    // Nothing half-written stays behind.
                    for (path, _) in &w.files {
                        let _ = self.fs.remove(path);
                    }
                    if let Some((from, _)) = &w.rename {
                        let _ = self.fs.remove(from);
                    }
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    (w.done)(Err(e));
                }
            }
        }
    }
}

/// A fixed set of threads that flush files in parallel. File systems merge concurrent flushes
/// into one journal commit, so N parallel `fdatasync`s cost little more than one.
struct SyncPool {
    tx: Mutex<Sender<SyncJob>>,
}

type SyncJob = (usize, Arc<dyn FsFile>, Sender<(usize, io::Result<()>)>);

impl SyncPool {
    fn new(threads: usize) -> SyncPool {
        let (tx, rx) = mpsc::channel::<SyncJob>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            let _ = std::thread::Builder::new()
                .name(format!("spool-sync-{i}"))
                .spawn(move || {
                    loop {
                        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok((idx, file, reply)) = job else { return };
                        let _ = reply.send((idx, file.sync_data()));
                    }
                });
        }
        SyncPool { tx: Mutex::new(tx) }
    }

    /// Flushes every file; returns each file's owner index with its result.
    fn sync_all(&self, files: Vec<(usize, Arc<dyn FsFile>)>) -> Vec<(usize, io::Result<()>)> {
        let n = files.len();
        let (rtx, rrx) = mpsc::channel();
        {
            let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
            for (idx, f) in files {
                if let Err(mpsc::SendError((idx, f, _))) = tx.send((idx, f, rtx.clone())) {
                    // No workers (they could not start): flush here.
                    let _ = rtx.send((idx, f.sync_data()));
                }
            }
        }
        drop(rtx);
        rrx.iter().take(n).collect()
    }
}

/// Reads every folder of `queue`. With `quarantine`, unusable files are moved there; without,
/// they are only reported.
fn scan(fs: &dyn Fs, queue: &Path, quarantine: Option<&Path>) -> Result<Recovered, SpoolError> {
    let mut out = Recovered::default();
    let mut folders: Vec<PathBuf> = fs
        .list(queue)
        .map_err(|e| io_err("read folder", queue, e))?
        .into_iter()
        .filter(|e| e.is_dir)
        .map(|e| queue.join(e.name))
        .collect();
    folders.sort();
    for folder in folders {
        let mut by_id: BTreeMap<String, Files> = BTreeMap::new();
        let entries = match fs.list(&folder) {
            Ok(e) => e,
            Err(e) => {
                out.quarantined.push(Quarantined {
                    path: folder.clone(),
                    reason: format!("cannot read folder: {e}"),
                });
                continue;
            }
        };
        for entry in entries.into_iter().filter(|e| !e.is_dir) {
            let path = folder.join(&entry.name);
            let name = entry.name.to_string_lossy().into_owned();
            if name.ends_with(".env.tmp") {
                // An envelope rewrite that did not finish: the old envelope still stands.
                if quarantine.is_some() {
                    let _ = fs.remove(&path);
                }
                out.removed_unfinished += 1;
                continue;
            }
            match name.rsplit_once('.') {
                Some((id, "env")) => by_id.entry(id.to_string()).or_default().env = Some(path),
                Some((id, "msg")) => by_id.entry(id.to_string()).or_default().msg = Some(path),
                Some((id, "jrn")) => by_id.entry(id.to_string()).or_default().jrn = Some(path),
                _ => out
                    .quarantined
                    .push(set_aside(fs, quarantine, &path, "not a spool file")),
            }
        }
        for (id, files) in by_id {
            let Files { env, msg, jrn } = files;
            match msg {
                // An envelope rewrite or a journal whose message file is gone: a removal that
                // a crash interrupted (the message file goes first).
                None => {
                    for p in [env, jrn].into_iter().flatten() {
                        if quarantine.is_some() {
                            let _ = fs.remove(&p);
                        }
                        out.removed_unfinished += 1;
                    }
                }
                Some(msg) => match check(fs, &id, env.as_deref(), &msg, jrn.as_deref()) {
                    Ok(e) => out.messages.push(e),
                    Err(reason) => {
                        for p in [env, Some(msg), jrn].into_iter().flatten() {
                            out.quarantined.push(set_aside(fs, quarantine, &p, &reason));
                        }
                    }
                },
            }
        }
    }
    out.messages
        .sort_by(|a, b| (a.received, &a.id).cmp(&(b.received, &b.id)));
    Ok(out)
}

/// One message's files as a scan finds them.
#[derive(Default)]
struct Files {
    env: Option<PathBuf>,
    msg: Option<PathBuf>,
    jrn: Option<PathBuf>,
}

/// A usable message has an envelope that decodes and names itself (`ID.env` if there is one,
/// else the one in the message file), and a body of the length that envelope recorded. (The
/// body's CRC is checked when it is read for delivery.) Its journal, if any, is replayed onto
/// it.
fn check(
    fs: &dyn Fs,
    id: &str,
    env_path: Option<&Path>,
    msg_path: &Path,
    jrn_path: Option<&Path>,
) -> Result<Envelope, String> {
    let msg = fs
        .open(msg_path, Open::Read, 0)
        .map_err(|e| format!("cannot read message file: {e}"))?;
    let head = Head::read(&*msg).map_err(|e| format!("cannot read message file: {e}"))?;
    let bytes = match env_path {
        Some(p) => crate::fs::read(fs, p).map_err(|e| format!("cannot read envelope: {e}"))?,
        None => head
            .envelope(&*msg)
            .map_err(|e| format!("cannot read message file: {e}"))?
            .ok_or("body without envelope")?,
    };
    let mut env = Envelope::decode(&bytes)?;
    if let Some(p) = jrn_path {
        let lines = crate::fs::read(fs, p).map_err(|e| format!("cannot read journal: {e}"))?;
        journal::replay(&mut env, &lines);
    }
    if *env.id != *id {
        return Err(format!("envelope names message {}", env.id));
    }
    if head.body_len() != env.body_len {
        return Err(format!(
            "torn body: {} bytes on disk, {} expected",
            head.body_len(),
            env.body_len
        ));
    }
    Ok(env)
}

fn set_aside(fs: &dyn Fs, quarantine: Option<&Path>, path: &Path, reason: &str) -> Quarantined {
    let mut q = Quarantined {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if let Some(dir) = quarantine {
        let folder = path
            .parent()
            .and_then(|p| p.file_name())
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dest = dir.join(format!("{folder}-{name}"));
        match fs.rename(path, &dest) {
            Ok(()) => q.path = dest,
            Err(e) => q.reason = format!("{reason}; could not move it to quarantine: {e}"),
        }
    }
    q
}
