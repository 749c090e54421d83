//! Who may log in: the password stores behind SMTP AUTH (and the digest hash the console
//! shares), and the failed-login lockout both use.
//!
//! # Layout
//! - [`store`]: password files (`file://`, `digest://`, `crypt://`) parsed into a [`Table`],
//!   and the constant-time check of a password or a CRAM-MD5 answer against it.
//! - [`source`]: Momentum's `Auth*Parameters = [ uri = "..." realm = "..." ]` dictionaries,
//!   read into a [`Source`].
//! - [`lockout`]: failures counted per client address.
//!
//! The seam is [`PasswordStore`]: [`FileStore`] reads a file again when it changed (so a new
//! user needs no reload), [`MemoryStore`] holds a table for tests. Checking a bcrypt hash
//! takes milliseconds of CPU, so callers run [`Table::check`] off their event loop.

pub mod lockout;
pub mod source;
pub mod store;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub use source::Source;
pub use store::{Proof, Scheme, Secret, Table, ha1};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("line {line}: {why}")]
    Line { line: usize, why: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {inner}")]
    File {
        path: String,
        #[source]
        inner: Box<StoreError>,
    },
}

/// Where logins are checked.
pub trait PasswordStore: Send + Sync {
    /// The users as they are now.
    fn table(&self) -> Result<Arc<Table>, StoreError>;
}

/// The users in memory, for tests and for stores built by code.
pub struct MemoryStore(pub Arc<Table>);

impl PasswordStore for MemoryStore {
    fn table(&self) -> Result<Arc<Table>, StoreError> {
        Ok(Arc::clone(&self.0))
    }
}

/// A password file, read again whenever its modification time or size changes.
pub struct FileStore {
    path: PathBuf,
    scheme: Scheme,
    realm: String,
    cache: Mutex<Option<(SystemTime, u64, Arc<Table>)>>,
}

impl FileStore {
    pub fn new(path: PathBuf, scheme: Scheme, realm: String) -> FileStore {
        FileStore {
            path,
            scheme,
            realm,
            cache: Mutex::new(None),
        }
    }

    pub fn from_source(source: &Source) -> FileStore {
        FileStore::new(source.path.clone(), source.scheme, source.realm.clone())
    }
}

impl PasswordStore for FileStore {
    fn table(&self) -> Result<Arc<Table>, StoreError> {
        let io = |e| StoreError::Io {
            path: self.path.display().to_string(),
            source: e,
        };
        let meta = std::fs::metadata(&self.path).map_err(io)?;
        let stamp = (meta.modified().map_err(io)?, meta.len());
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((m, l, t)) = cache.as_ref()
            && (*m, *l) == stamp
        {
            return Ok(Arc::clone(t));
        }
        let text = std::fs::read_to_string(&self.path).map_err(io)?;
        let table = Arc::new(Table::parse(&text, self.scheme, &self.realm).map_err(|e| {
            StoreError::File {
                path: self.path.display().to_string(),
                inner: Box::new(e),
            }
        })?);
        *cache = Some((stamp.0, stamp.1, Arc::clone(&table)));
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_store_reads_its_file_again_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        std::fs::write(&path, "alice:one\n").unwrap();
        let store = FileStore::new(path.clone(), Scheme::Cleartext, String::new());
        let t = store.table().unwrap();
        assert!(t.check("alice", "", Proof::Password("one")));
        std::fs::write(&path, "alice:two\nbob:three\n").unwrap();
        let t = store.table().unwrap();
        assert!(t.check("alice", "", Proof::Password("two")));
        assert!(t.check("bob", "", Proof::Password("three")));
        std::fs::write(&path, "broken line\n").unwrap();
        let err = store.table().expect_err("a malformed file is an error");
        assert!(err.to_string().contains("passwd: line 1"), "{err}");
        std::fs::remove_file(&path).unwrap();
        assert!(store.table().is_err());
    }
}
