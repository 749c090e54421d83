//! Who may log in: the password stores behind SMTP AUTH (and the digest hash the console
//! shares), and the failed-login lockout both use.
//!
//! # Layout
//! - [`store`]: password files (`file://`, `digest://`, `crypt://`) parsed into a [`Table`],
//!   and the constant-time check of a password or a CRAM-MD5 answer against it.
//! - [`source`]: Momentum's `Auth*Parameters = [ uri = "..." realm = "..." ]` dictionaries,
//!   read into a [`Source`].
//! - [`lockout`]: failures counted per client address.
//! - [`reread`]: a file parsed again only when it changes.
//!
//! The seam is [`PasswordStore`]: [`FileStore`] reads a file again when it changed (so a new
//! user needs no reload), [`MemoryStore`] holds a table for tests. Checking a bcrypt hash
//! takes milliseconds of CPU, so callers run [`Table::check`] off their event loop.

pub mod lockout;
pub mod reread;
pub mod source;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;

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
    file: reread::Reread<Table>,
    scheme: Scheme,
    realm: String,
}

impl FileStore {
    pub fn new(path: PathBuf, scheme: Scheme, realm: String) -> FileStore {
        FileStore {
            file: reread::Reread::new(path),
            scheme,
            realm,
        }
    }

    pub fn from_source(source: &Source) -> FileStore {
        FileStore::new(source.path.clone(), source.scheme, source.realm.clone())
    }
}

impl PasswordStore for FileStore {
    fn table(&self) -> Result<Arc<Table>, StoreError> {
        let path = || self.file.path().display().to_string();
        self.file
            .get(|text| Table::parse(text, self.scheme, &self.realm))
            .map_err(|e| match e {
                reread::ReadError::Io(source) => StoreError::Io {
                    path: path(),
                    source,
                },
                reread::ReadError::Parse(inner) => StoreError::File {
                    path: path(),
                    inner: Box::new(inner),
                },
            })
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
