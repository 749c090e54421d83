//! Momentum's datasources: `Datasource "name" { uri = ( "sqlite:/path" ) cache_size cache_life
//! no_cache max_rows }`, queried from Lua with `msys.db.query`, `fetch_row` and `execute`.
//!
//! - [`Source`] is the seam: one query against one database. [`Sqlite`] is the real one
//!   (rusqlite with its bundled SQLite, so nothing depends on the system's library);
//!   [`MemSource`] answers from a table, for tests.
//! - [`Cache`] is a named datasource: its URIs, used in turn (Momentum's round robin), and
//!   Momentum's result cache (`cache_size` entries kept `cache_life` seconds; `no_cache`,
//!   or a query's `nocache` option, goes around it). Statements that change data
//!   (`execute`) never use it.
//! - [`Datasources`] is every cache of a configuration, by name.
//!
//! Only `sqlite:` URIs are implemented; [`scheme_supported`] says so, and the configuration
//! check refuses the others on their line (ODBC, LDAP, MySQL and PostgreSQL drivers are not
//! built).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A value bound into a query or read from a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Datum {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// The parameters of a query: `?` placeholders by position, or `:name` / `$name` by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Params {
    #[default]
    None,
    Positional(Vec<Datum>),
    Named(Vec<(String, Datum)>),
}

/// One row: its columns in order, by name.
pub type Row = Vec<(String, Datum)>;

#[derive(Debug, thiserror::Error)]
pub enum DsError {
    #[error("no datasource named {0:?} is configured")]
    NoSuchCache(String),
    #[error("datasource URI {0:?}: only sqlite: URIs are implemented by bindery")]
    Scheme(String),
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the query returned more than max_rows ({0}) rows")]
    TooManyRows(usize),
}

/// One database that answers queries.
pub trait Source: Send + Sync {
    fn query(&self, sql: &str, params: &Params, max_rows: usize) -> Result<Vec<Row>, DsError>;
    /// Runs a statement that returns no rows; how many rows it changed.
    fn execute(&self, sql: &str, params: &Params) -> Result<usize, DsError>;
}

/// Whether bindery has a driver for `uri`'s scheme.
pub fn scheme_supported(uri: &str) -> bool {
    uri.starts_with("sqlite:")
}

/// An SQLite database file, opened at first use and kept open. Queries on one file take
/// turns (SQLite serialises writers in any case; readers are quick on a local file).
pub struct Sqlite {
    path: PathBuf,
    conn: Mutex<Option<rusqlite::Connection>>,
}

impl Sqlite {
    pub fn new(path: impl Into<PathBuf>) -> Sqlite {
        Sqlite {
            path: path.into(),
            conn: Mutex::new(None),
        }
    }
}

fn bind(stmt: &mut rusqlite::Statement<'_>, params: &Params) -> Result<(), DsError> {
    let to_sql = |d: &Datum| -> rusqlite::types::Value {
        match d {
            Datum::Null => rusqlite::types::Value::Null,
            Datum::Int(i) => rusqlite::types::Value::Integer(*i),
            Datum::Real(r) => rusqlite::types::Value::Real(*r),
            Datum::Text(t) => rusqlite::types::Value::Text(t.clone()),
            Datum::Blob(b) => rusqlite::types::Value::Blob(b.clone()),
        }
    };
    match params {
        Params::None => {}
        Params::Positional(v) => {
            for (i, d) in v.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, to_sql(d))?;
            }
        }
        Params::Named(v) => {
            for (name, d) in v {
                // The script names `name`; the statement says `:name`, `$name` or `@name`.
                let index = [":", "$", "@"]
                    .iter()
                    .find_map(|p| stmt.parameter_index(&format!("{p}{name}")).ok().flatten());
                if let Some(i) = index {
                    stmt.raw_bind_parameter(i, to_sql(d))?;
                }
            }
        }
    }
    Ok(())
}

impl Sqlite {
    fn with<R>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<R, DsError>,
    ) -> Result<R, DsError> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let conn = match guard.take() {
            Some(c) => c,
            None => {
                let c = rusqlite::Connection::open(&self.path)?;
                c.busy_timeout(Duration::from_secs(5))?;
                c
            }
        };
        let result = f(&conn);
        *guard = Some(conn);
        result
    }
}

impl Source for Sqlite {
    fn query(&self, sql: &str, params: &Params, max_rows: usize) -> Result<Vec<Row>, DsError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(sql)?;
            bind(&mut stmt, params)?;
            let names: Vec<String> = stmt.column_names().map(str::to_string).collect();
            let mut rows = stmt.raw_query();
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                if max_rows > 0 && out.len() >= max_rows {
                    return Err(DsError::TooManyRows(max_rows));
                }
                let mut row = Vec::with_capacity(names.len());
                for (i, n) in names.iter().enumerate() {
                    let d = match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => Datum::Null,
                        rusqlite::types::ValueRef::Integer(v) => Datum::Int(v),
                        rusqlite::types::ValueRef::Real(v) => Datum::Real(v),
                        rusqlite::types::ValueRef::Text(t) => {
                            Datum::Text(String::from_utf8_lossy(t).into_owned())
                        }
                        rusqlite::types::ValueRef::Blob(b) => Datum::Blob(b.to_vec()),
                    };
                    row.push((n.clone(), d));
                }
                out.push(row);
            }
            Ok(out)
        })
    }

    fn execute(&self, sql: &str, params: &Params) -> Result<usize, DsError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(sql)?;
            bind(&mut stmt, params)?;
            Ok(stmt.raw_execute()?)
        })
    }
}

/// Answers from a table of (SQL, rows), for tests; `execute` records what it was given.
#[derive(Default)]
pub struct MemSource {
    pub answers: HashMap<String, Vec<Row>>,
    pub executed: Mutex<Vec<(String, Params)>>,
    pub queries: AtomicUsize,
}

impl Source for MemSource {
    fn query(&self, sql: &str, _: &Params, _: usize) -> Result<Vec<Row>, DsError> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        Ok(self.answers.get(sql).cloned().unwrap_or_default())
    }

    fn execute(&self, sql: &str, params: &Params) -> Result<usize, DsError> {
        self.executed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((sql.to_string(), params.clone()));
        Ok(1)
    }
}

/// Momentum's per-datasource options.
#[derive(Clone, Copy, Debug)]
pub struct CacheOptions {
    /// `cache_size`: results kept (1000).
    pub size: usize,
    /// `cache_life`: how long a result is kept (3600 s).
    pub life: Duration,
    /// `no_cache`: every query goes to the database.
    pub no_cache: bool,
    /// `max_rows`: a query returning more fails (0: no limit).
    pub max_rows: usize,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            size: 1000,
            life: Duration::from_secs(3600),
            no_cache: false,
            max_rows: 0,
        }
    }
}

type Key = (String, String);
/// A cached result: when it was fetched, and the rows.
type Entry = (Instant, Arc<Vec<Row>>);

/// A named datasource: its sources in turn, and its result cache.
pub struct Cache {
    sources: Vec<Arc<dyn Source>>,
    next: AtomicUsize,
    options: CacheOptions,
    results: Mutex<HashMap<Key, Entry>>,
}

impl Cache {
    pub fn new(sources: Vec<Arc<dyn Source>>, options: CacheOptions) -> Cache {
        Cache {
            sources,
            next: AtomicUsize::new(0),
            options,
            results: Mutex::new(HashMap::new()),
        }
    }

    fn source(&self) -> Option<&Arc<dyn Source>> {
        if self.sources.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.sources.len();
        self.sources.get(i)
    }

    /// The rows of `sql`, from the cache while they are younger than `cache_life`.
    pub fn query(
        &self,
        sql: &str,
        params: &Params,
        nocache: bool,
    ) -> Result<Arc<Vec<Row>>, DsError> {
        let key = (sql.to_string(), format!("{params:?}"));
        let cached = !nocache && !self.options.no_cache;
        if cached {
            let results = self.results.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, rows)) = results.get(&key)
                && at.elapsed() < self.options.life
            {
                return Ok(Arc::clone(rows));
            }
        }
        let Some(src) = self.source() else {
            return Ok(Arc::default());
        };
        let rows = Arc::new(src.query(sql, params, self.options.max_rows)?);
        if cached {
            let mut results = self.results.lock().unwrap_or_else(|p| p.into_inner());
            if results.len() >= self.options.size {
                // Oldest out first, down to the size (Momentum's cache maintenance).
                let life = self.options.life;
                results.retain(|_, (at, _)| at.elapsed() < life);
                while results.len() >= self.options.size.max(1) {
                    let oldest = results
                        .iter()
                        .min_by_key(|(_, (at, _))| *at)
                        .map(|(k, _)| k.clone());
                    match oldest {
                        Some(k) => results.remove(&k),
                        None => break,
                    };
                }
            }
            results.insert(key, (Instant::now(), Arc::clone(&rows)));
        }
        Ok(rows)
    }

    /// Runs a statement that returns no rows; the cache is not consulted, and is emptied
    /// (what it held may be stale now).
    pub fn execute(&self, sql: &str, params: &Params) -> Result<usize, DsError> {
        let Some(src) = self.source() else {
            return Ok(0);
        };
        let n = src.execute(sql, params)?;
        self.results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(n)
    }
}

/// Every datasource of a configuration, by name.
#[derive(Default)]
pub struct Datasources(HashMap<String, Arc<Cache>>);

impl Datasources {
    pub fn insert(&mut self, name: &str, cache: Cache) {
        self.0.insert(name.to_string(), Arc::new(cache));
    }

    pub fn get(&self, name: &str) -> Result<&Arc<Cache>, DsError> {
        self.0
            .get(name)
            .ok_or_else(|| DsError::NoSuchCache(name.to_string()))
    }

    /// A source for `uri`: `sqlite:PATH`; other schemes are refused.
    pub fn source(uri: &str) -> Result<Arc<dyn Source>, DsError> {
        match uri.strip_prefix("sqlite:") {
            Some(path) => Ok(Arc::new(Sqlite::new(path))),
            None => Err(DsError::Scheme(uri.to_string())),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Arc<dyn Source>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prefs.sqlite");
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "create table blacklist (address text, reason text);
             insert into blacklist values ('a@x.test', 'bounced'), ('b@x.test', null);",
        )
        .unwrap();
        (
            dir,
            Datasources::source(&format!("sqlite:{}", path.display())).unwrap(),
        )
    }

    #[test]
    fn sqlite_answers_with_positional_and_named_parameters() {
        let (_d, src) = db();
        let rows = src
            .query(
                "select address, reason from blacklist where address = ?",
                &Params::Positional(vec![Datum::Text("a@x.test".into())]),
                0,
            )
            .unwrap();
        assert_eq!(
            rows,
            [vec![
                ("address".to_string(), Datum::Text("a@x.test".into())),
                ("reason".to_string(), Datum::Text("bounced".into()))
            ]]
        );
        let rows = src
            .query(
                "select reason from blacklist where address = :who",
                &Params::Named(vec![("who".into(), Datum::Text("b@x.test".into()))]),
                0,
            )
            .unwrap();
        assert_eq!(rows, [vec![("reason".to_string(), Datum::Null)]]);
        assert!(matches!(
            src.query("select * from blacklist", &Params::None, 1),
            Err(DsError::TooManyRows(1))
        ));
        assert!(src.query("select nonsense from", &Params::None, 0).is_err());
        assert_eq!(
            src.execute(
                "delete from blacklist where address = ?",
                &Params::Positional(vec![Datum::Text("a@x.test".into())])
            )
            .unwrap(),
            1
        );
    }

    #[test]
    fn the_cache_keeps_results_for_their_life_and_execute_empties_it() {
        let mem = Arc::new(MemSource {
            answers: HashMap::from([("q".to_string(), vec![vec![("c".into(), Datum::Int(1))]])]),
            ..MemSource::default()
        });
        let cache = Cache::new(vec![mem.clone()], CacheOptions::default());
        for _ in 0..3 {
            assert_eq!(cache.query("q", &Params::None, false).unwrap().len(), 1);
        }
        assert_eq!(mem.queries.load(Ordering::Relaxed), 1, "cached");
        cache.query("q", &Params::None, true).unwrap();
        assert_eq!(
            mem.queries.load(Ordering::Relaxed),
            2,
            "nocache goes around it"
        );
        cache.execute("update", &Params::None).unwrap();
        cache.query("q", &Params::None, false).unwrap();
        assert_eq!(mem.queries.load(Ordering::Relaxed), 3, "emptied by execute");
        let small = Cache::new(
            vec![mem.clone()],
            CacheOptions {
                size: 2,
                ..CacheOptions::default()
            },
        );
        for p in 0..5 {
            small
                .query("q", &Params::Positional(vec![Datum::Int(p)]), false)
                .unwrap();
        }
        assert!(small.results.lock().unwrap().len() <= 2);
        assert!(matches!(
            Datasources::source("odbc:DSN=x"),
            Err(DsError::Scheme(_))
        ));
    }
}
