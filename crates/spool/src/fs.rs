//! The file-system seam under [`crate::DiskSpool`]: the few operations the spool makes, so
//! that it can run on the real file system ([`RealFs`]) or on [`MemFs`], an in-memory one
//! that can lose power. The spool's durability rests on the order of its writes, flushes,
//! renames and folder flushes; `MemFs` keeps apart what was only written and what a flush
//! made durable, and [`MemFs::crash`] throws away everything that was not, as a power cut
//! does to the page cache. The crash test (`tests/crash.rs`) stores, settles and removes
//! messages on it, cuts the power at random moments and checks that recovery finds every
//! message that was acknowledged.
//!
//! Why not LazyFS, which does this for real file systems: it is a FUSE file system in C++
//! that neither Debian nor crates.io packages, so CI could not build it.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// An open file.
pub trait FsFile: Send + Sync {
    /// Appends at the file position (the end, for files opened to append).
    fn write_all(&self, buf: &[u8]) -> io::Result<()>;
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Reads up to `buf.len()` bytes at `offset`; 0 at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    fn len(&self) -> io::Result<u64>;
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// `fdatasync`: the file's contents (and size) are durable once it returns.
    fn sync_data(&self) -> io::Result<()>;
    /// Starts writing the file's dirty pages without waiting (`sync_file_range` with
    /// `SYNC_FILE_RANGE_WRITE`), so a batch's writes reach the disk queue together before the
    /// flushes that wait for them. Only a hint: durability still comes from [`sync_data`].
    ///
    /// [`sync_data`]: FsFile::sync_data
    fn start_writeback(&self) {}
}

/// How to open a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Open {
    /// Create it; fail if it exists (`O_EXCL`).
    CreateNew,
    /// Create it or empty it.
    Truncate,
    /// Append to it; fail if it does not exist.
    Append,
    /// Create it to append to; fail if it exists.
    AppendNew,
    /// Read it.
    Read,
}

/// A folder entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: OsString,
    pub is_dir: bool,
}

pub trait Fs: Send + Sync {
    /// Opens a regular file; `mode` applies when it is created.
    fn open(&self, path: &Path, how: Open, mode: u32) -> io::Result<Box<dyn FsFile>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    fn list(&self, dir: &Path) -> io::Result<Vec<Entry>>;
    /// `fsync` on a folder: its entries (created, renamed, removed) are durable once it
    /// returns.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Flushes the whole file system `path` is on.
    fn syncfs(&self, path: &Path) -> io::Result<()>;
    /// Bytes an unprivileged writer may still use.
    fn free_bytes(&self, path: &Path) -> Option<u64>;
    /// A hint for a folder whose subfolders should spread over the disk (ext4's `T` flag).
    fn spread_subfolders(&self, _dir: &Path) {}
}

/// Reads a whole file.
pub fn read(fs: &dyn Fs, path: &Path) -> io::Result<Vec<u8>> {
    let f = fs.open(path, Open::Read, 0)?;
    let len = usize::try_from(f.len()?).map_err(io::Error::other)?;
    let mut buf = vec![0; len];
    let mut n = 0;
    while n < len {
        match f.read_at(&mut buf[n..], n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    buf.truncate(n);
    Ok(buf)
}

// ---------------------------------------------------------------- the real file system

/// `std::fs` and a few system calls.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFs;

struct RealFile(std::fs::File);

impl FsFile for RealFile {
    fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        use std::io::Write;
        (&self.0).write_all(buf)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.0.write_all_at(buf, offset)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        loop {
            match self.0.read_at(buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn start_writeback(&self) {
        use std::os::unix::io::AsRawFd;
        // SAFETY: the descriptor is open for the duration of the call; the call only reads it.
        unsafe {
            libc::sync_file_range(self.0.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
}

impl Fs for RealFs {
    fn open(&self, path: &Path, how: Open, mode: u32) -> io::Result<Box<dyn FsFile>> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut o = std::fs::OpenOptions::new();
        match how {
            Open::CreateNew => o.write(true).create_new(true).mode(mode),
            Open::Truncate => o.write(true).create(true).truncate(true).mode(mode),
            Open::Append => o.append(true),
            Open::AppendNew => o.append(true).create_new(true).mode(mode),
            Open::Read => o.read(true),
        };
        Ok(Box::new(RealFile(o.open(path)?)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<Entry>> {
        std::fs::read_dir(dir)?
            .map(|e| {
                let e = e?;
                Ok(Entry {
                    name: e.file_name(),
                    is_dir: e.file_type()?.is_dir(),
                })
            })
            .collect()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }

    fn syncfs(&self, path: &Path) -> io::Result<()> {
        use std::os::unix::io::AsRawFd;
        let f = std::fs::File::open(path)?;
        // SAFETY: `f` is an open descriptor for the duration of the call.
        if unsafe { libc::syncfs(f.as_raw_fd()) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn free_bytes(&self, path: &Path) -> Option<u64> {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        // SAFETY: a zeroed statvfs is a valid out-parameter, and `path` is NUL-terminated.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
            return None;
        }
        Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
    }

    /// Gives `dir` the ext2/3/4 "top of a hierarchy" flag (`chattr +T`), so the file system
    /// spreads the folders made in it over its block groups, as it does for folders at its
    /// root. Without it all 256 queue folders, and so every message file, share one block
    /// group, and on an ext4 without a journal each new file's inode is found by stepping
    /// over every inode freed there in the last minutes: measured on the benchmark machine,
    /// that search was a quarter of bindery's CPU time relaying 100 KB messages. Only folders
    /// made after the flag move; on other file systems the ioctl fails and nothing changes.
    fn spread_subfolders(&self, dir: &Path) {
        use std::os::unix::io::AsRawFd;
        const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;
        let Ok(f) = std::fs::File::open(dir) else {
            return;
        };
        let mut flags: libc::c_int = 0;
        // SAFETY: the descriptor is open for both calls, and both ioctls read or write one
        // int (the kernel's `FS_IOC_*FLAGS` take an int despite their encoded size).
        unsafe {
            if libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) == 0
                && flags & FS_TOPDIR_FL == 0
            {
                flags |= FS_TOPDIR_FL;
                libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags);
            }
        }
    }
}

// ---------------------------------------------------------------- a file system that loses power

/// One file's contents: as written, and as of its last flush.
#[derive(Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
}

/// A folder's entries: as they are, and as of its last flush. A name maps to an inode
/// number, or to `None` for a subfolder.
#[derive(Default, Clone)]
struct Dir {
    entries: BTreeMap<OsString, Option<u64>>,
    durable: BTreeMap<OsString, Option<u64>>,
}

#[derive(Default)]
struct State {
    dirs: BTreeMap<PathBuf, Dir>,
    inodes: BTreeMap<u64, Inode>,
    next: u64,
}

/// How much a power cut keeps of what was not flushed.
#[derive(Clone, Copy, Debug)]
pub enum Cut {
    /// Nothing: every write, create, rename and removal since the last flush of its file or
    /// folder is gone.
    Strict,
    /// Some: as if the kernel had written back a random part of the dirty files and folders
    /// first (each kept whole or not at all, chosen from `seed`).
    Writeback { seed: u64 },
}

/// An in-memory file system that separates written from durable, and can lose power. The
/// handles and views from before a [`MemFs::crash`] fail with `EIO` afterwards: the process
/// that held them is gone.
pub struct MemFs {
    state: Mutex<State>,
    epoch: AtomicU64,
}

/// What a spool sees of a [`MemFs`]: usable until the next crash.
#[derive(Clone)]
pub struct MemView {
    fs: Arc<MemFs>,
    epoch: u64,
}

struct MemFile {
    view: MemView,
    ino: u64,
    append: bool,
    pos: Mutex<u64>,
}

fn gone() -> io::Error {
    io::Error::other("the power went out")
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", p.display()),
    )
}

fn split(path: &Path) -> io::Result<(PathBuf, OsString)> {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    Ok((dir, name.to_os_string()))
}

impl MemFs {
    pub fn new() -> Arc<MemFs> {
        let mut st = State::default();
        st.dirs.insert(PathBuf::from("/"), Dir::default());
        Arc::new(MemFs {
            state: Mutex::new(st),
            epoch: AtomicU64::new(0),
        })
    }

    /// A view for a (new) process.
    pub fn view(self: &Arc<Self>) -> MemView {
        MemView {
            fs: Arc::clone(self),
            epoch: self.epoch.load(Ordering::SeqCst),
        }
    }

    /// Cuts the power: what was not flushed is lost (or, with [`Cut::Writeback`], partly
    /// kept), and every handle and view from before fails from now on.
    pub fn crash(&self, cut: Cut) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let mut rng = match cut {
            Cut::Strict => None,
            Cut::Writeback { seed } => Some(seed | 1),
        };
        let mut keep = || match &mut rng {
            None => false,
            Some(x) => {
                // xorshift64
                *x ^= *x << 13;
                *x ^= *x >> 7;
                *x ^= *x << 17;
                *x & 1 == 1
            }
        };
        for d in st.dirs.values_mut() {
            if keep() {
                d.durable = d.entries.clone();
            }
            d.entries = d.durable.clone();
        }
        for ino in st.inodes.values_mut() {
            if keep() {
                ino.durable = ino.data.clone();
            }
            ino.data = ino.durable.clone();
        }
        // A folder whose entry did not survive is gone with what it held.
        let names: BTreeSet<PathBuf> = st.dirs.keys().cloned().collect();
        for p in names {
            if p == Path::new("/") {
                continue;
            }
            let alive = split(&p).ok().is_some_and(|(parent, name)| {
                st.dirs
                    .get(&parent)
                    .is_some_and(|d| d.entries.get(&name) == Some(&None))
            });
            if !alive {
                st.dirs.remove(&p);
            }
        }
    }

    /// Every file's path and contents now (for a test's own checks).
    pub fn files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for (dir, d) in &st.dirs {
            for (name, ino) in &d.entries {
                if let Some(i) = ino {
                    out.push((dir.join(name), st.inodes[i].data.clone()));
                }
            }
        }
        out
    }
}

impl MemView {
    fn state(&self) -> io::Result<std::sync::MutexGuard<'_, State>> {
        let st = self.fs.state.lock().unwrap_or_else(|p| p.into_inner());
        if self.fs.epoch.load(Ordering::SeqCst) != self.epoch {
            return Err(gone());
        }
        Ok(st)
    }
}

fn dir_mut<'s>(st: &'s mut State, dir: &Path) -> io::Result<&'s mut Dir> {
    st.dirs.get_mut(dir).ok_or_else(|| not_found(dir))
}

impl FsFile for MemFile {
    fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        let mut st = self.view.state()?;
        let ino = st.inodes.get_mut(&self.ino).ok_or_else(gone)?;
        let mut pos = self.pos.lock().unwrap_or_else(|p| p.into_inner());
        let at = if self.append {
            ino.data.len()
        } else {
            *pos as usize
        };
        if ino.data.len() < at + buf.len() {
            ino.data.resize(at + buf.len(), 0);
        }
        ino.data[at..at + buf.len()].copy_from_slice(buf);
        *pos = (at + buf.len()) as u64;
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut st = self.view.state()?;
        let ino = st.inodes.get_mut(&self.ino).ok_or_else(gone)?;
        let at = offset as usize;
        if ino.data.len() < at + buf.len() {
            ino.data.resize(at + buf.len(), 0);
        }
        ino.data[at..at + buf.len()].copy_from_slice(buf);
        Ok(())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let st = self.view.state()?;
        let ino = st.inodes.get(&self.ino).ok_or_else(gone)?;
        let at = (offset as usize).min(ino.data.len());
        let n = buf.len().min(ino.data.len() - at);
        buf[..n].copy_from_slice(&ino.data[at..at + n]);
        Ok(n)
    }

    fn len(&self) -> io::Result<u64> {
        let st = self.view.state()?;
        Ok(st.inodes.get(&self.ino).ok_or_else(gone)?.data.len() as u64)
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut st = self.view.state()?;
        let ino = st.inodes.get_mut(&self.ino).ok_or_else(gone)?;
        ino.durable = ino.data.clone();
        Ok(())
    }
}

impl Fs for MemView {
    fn open(&self, path: &Path, how: Open, _mode: u32) -> io::Result<Box<dyn FsFile>> {
        let mut st = self.state()?;
        let (dir, name) = split(path)?;
        let existing = dir_mut(&mut st, &dir)?.entries.get(&name).copied();
        let ino = match (how, existing) {
            (_, Some(None)) => {
                return Err(io::Error::new(io::ErrorKind::IsADirectory, "a folder"));
            }
            (Open::CreateNew | Open::AppendNew, Some(_)) => {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
            }
            (Open::Append | Open::Read, None) => return Err(not_found(path)),
            (Open::Append | Open::Read, Some(Some(i))) => i,
            (Open::Truncate, Some(Some(i))) => {
                if let Some(ino) = st.inodes.get_mut(&i) {
                    ino.data.clear();
                }
                i
            }
            (Open::CreateNew | Open::AppendNew | Open::Truncate, None) => {
                st.next += 1;
                let i = st.next;
                st.inodes.insert(i, Inode::default());
                dir_mut(&mut st, &dir)?.entries.insert(name, Some(i));
                i
            }
        };
        Ok(Box::new(MemFile {
            view: self.clone(),
            ino,
            append: matches!(how, Open::Append | Open::AppendNew),
            pos: Mutex::new(0),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.state()?;
        let (fd, fname) = split(from)?;
        let (td, tname) = split(to)?;
        let ino = dir_mut(&mut st, &fd)?
            .entries
            .remove(&fname)
            .ok_or_else(|| not_found(from))?;
        match dir_mut(&mut st, &td) {
            Ok(d) => {
                d.entries.insert(tname, ino);
                Ok(())
            }
            Err(e) => {
                dir_mut(&mut st, &fd)?.entries.insert(fname, ino);
                Err(e)
            }
        }
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state()?;
        let (dir, name) = split(path)?;
        let d = dir_mut(&mut st, &dir)?;
        match d.entries.get(&name) {
            Some(Some(_)) => {
                d.entries.remove(&name);
                Ok(())
            }
            Some(None) => Err(io::Error::new(io::ErrorKind::IsADirectory, "a folder")),
            None => Err(not_found(path)),
        }
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state()?;
        let mut at = PathBuf::from("/");
        for part in path.components().skip(1) {
            let name = part.as_os_str().to_os_string();
            let next = at.join(&name);
            if !st.dirs.contains_key(&next) {
                dir_mut(&mut st, &at)?.entries.insert(name, None);
                st.dirs.insert(next.clone(), Dir::default());
            }
            at = next;
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<Entry>> {
        let st = self.state()?;
        let d = st.dirs.get(dir).ok_or_else(|| not_found(dir))?;
        Ok(d.entries
            .iter()
            .map(|(name, ino)| Entry {
                name: name.clone(),
                is_dir: ino.is_none(),
            })
            .collect())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state()?;
        let d = dir_mut(&mut st, dir)?;
        d.durable = d.entries.clone();
        Ok(())
    }

    fn syncfs(&self, _path: &Path) -> io::Result<()> {
        let mut st = self.state()?;
        for d in st.dirs.values_mut() {
            d.durable = d.entries.clone();
        }
        for i in st.inodes.values_mut() {
            i.durable = i.data.clone();
        }
        Ok(())
    }

    fn free_bytes(&self, _path: &Path) -> Option<u64> {
        Some(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_keeps_only_what_was_flushed() {
        let fs = MemFs::new();
        let v = fs.view();
        v.create_dir_all(Path::new("/s/q")).unwrap();
        v.sync_dir(Path::new("/")).unwrap();
        v.sync_dir(Path::new("/s")).unwrap();
        let a = v.open(Path::new("/s/q/a"), Open::CreateNew, 0).unwrap();
        a.write_all(b"durable").unwrap();
        a.sync_data().unwrap();
        v.sync_dir(Path::new("/s/q")).unwrap();
        a.write_all(b" and not").unwrap();
        let b = v.open(Path::new("/s/q/b"), Open::CreateNew, 0).unwrap();
        b.write_all(b"written, flushed, but its folder not")
            .unwrap();
        b.sync_data().unwrap();
        fs.crash(Cut::Strict);
        assert!(a.write_all(b"x").is_err(), "old handles are dead");
        let v = fs.view();
        assert_eq!(read(&v, Path::new("/s/q/a")).unwrap(), b"durable");
        assert!(v.open(Path::new("/s/q/b"), Open::Read, 0).is_err());
    }

    #[test]
    fn an_unflushed_folder_loses_its_entries() {
        let fs = MemFs::new();
        let v = fs.view();
        v.create_dir_all(Path::new("/s")).unwrap();
        let f = v.open(Path::new("/s/x"), Open::CreateNew, 0).unwrap();
        f.sync_data().unwrap();
        fs.crash(Cut::Strict);
        let v = fs.view();
        assert!(
            v.list(Path::new("/s")).is_err(),
            "/s was never made durable"
        );
    }
}
