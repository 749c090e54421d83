//! A file parsed once and parsed again only when its modification time or size changes, so
//! that an edited password or key file takes effect at the next login with no reload, and an
//! unchanged one costs a `stat`. SMTP AUTH's password files and the Transmissions API's key
//! files both use it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Why the file could not be had.
#[derive(Debug)]
pub enum ReadError<E> {
    Io(std::io::Error),
    Parse(E),
}

pub struct Reread<T> {
    path: PathBuf,
    cache: Mutex<Option<(SystemTime, u64, Arc<T>)>>,
}

impl<T> Reread<T> {
    pub fn new(path: PathBuf) -> Reread<T> {
        Reread {
            path,
            cache: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The parsed file as it is now; `parse` runs only when the file changed.
    pub fn get<E>(&self, parse: impl FnOnce(&str) -> Result<T, E>) -> Result<Arc<T>, ReadError<E>> {
        let meta = std::fs::metadata(&self.path).map_err(ReadError::Io)?;
        let stamp = (meta.modified().map_err(ReadError::Io)?, meta.len());
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((m, l, v)) = cache.as_ref()
            && (*m, *l) == stamp
        {
            return Ok(Arc::clone(v));
        }
        let text = std::fs::read_to_string(&self.path).map_err(ReadError::Io)?;
        let value = Arc::new(parse(&text).map_err(ReadError::Parse)?);
        *cache = Some((stamp.0, stamp.1, Arc::clone(&value)));
        Ok(value)
    }
}
