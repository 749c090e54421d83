//! `msys.db` over the configuration's `Datasource` stanzas (`bindery_datasource`): `query`
//! (an iterator of rows), `fetch_row` (the first row) and `execute`, with Momentum's
//! parameters (`?` by position from a sequence, `:name`/`$name` from string keys) and
//! options (`nocache`, `raise_error`, true by default).
//!
//! The stanzas are read when the policy loads: a `uri` whose driver bindery lacks is a
//! configuration error on its line, never a datasource that fails at the first query.

use std::sync::Arc;
use std::time::Duration;

use bindery_config::diag::Diagnostic;
use bindery_config::schema::{ScopeKind, option_id};
use bindery_config::snapshot::default_value;
use bindery_config::tree::{ConfigTree, ROOT};
use bindery_config::value::Value as ConfValue;
use bindery_datasource::{Cache, CacheOptions, Datasources, Datum, Params, Row};
use mlua::{Lua, Table, Value};

/// Every `Datasource` stanza of `tree`, or the errors of those that cannot be built.
pub fn datasources(tree: &ConfigTree) -> Result<Datasources, Vec<Diagnostic>> {
    let mut out = Datasources::default();
    let mut errors = Vec::new();
    for id in tree.children_of(ROOT, ScopeKind::Datasource) {
        let scope = tree.scope(id);
        let name = scope.name.clone().unwrap_or_default();
        let get = |o: &'static str| {
            let o = option_id(o);
            scope
                .setting(o)
                .map(|s| s.value.clone())
                .or_else(|| default_value(o))
        };
        let int = |o: &'static str| match get(o) {
            Some(ConfValue::Int(n)) => usize::try_from(n).unwrap_or(0),
            _ => 0,
        };
        let options = CacheOptions {
            size: int("Cache_Size"),
            life: Duration::from_secs(match get("Cache_Life") {
                Some(ConfValue::Seconds(s)) => s,
                _ => 0,
            }),
            no_cache: matches!(get("No_Cache"), Some(ConfValue::Bool(true))),
            max_rows: int("Max_Rows"),
        };
        let uri = scope.setting(option_id("Uri"));
        let uris = match uri.map(|s| &s.value) {
            Some(ConfValue::List(l)) => l.clone(),
            Some(ConfValue::Str(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        if uris.is_empty() {
            if let Some(&span) = scope.opened.first() {
                errors.push(
                    Diagnostic::error(span, format!("Datasource `{name}` has no `uri`"))
                        .with_help("write `uri = ( \"sqlite:/path/to/file.db\" )`"),
                );
            }
            continue;
        }
        let mut sources = Vec::new();
        for u in &uris {
            match Datasources::source(u) {
                Ok(s) => sources.push(s),
                Err(e) => {
                    if let Some(setting) = uri {
                        errors.push(
                            Diagnostic::error(setting.span, format!("Datasource `{name}`: {e}"))
                                .with_help("bindery's datasource driver is SQLite (`sqlite:/path`); the ODBC, LDAP, MySQL and PostgreSQL drivers are not built"),
                        );
                    }
                }
            }
        }
        out.insert(&name, Cache::new(sources, options));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// A query's parameters from Lua: a sequence binds `?` in order (a hole is NULL), string
/// keys bind `:name`.
fn params(v: Option<Table>) -> mlua::Result<Params> {
    let Some(t) = v else {
        return Ok(Params::None);
    };
    let datum = |v: Value| -> mlua::Result<Datum> {
        Ok(match v {
            Value::Nil => Datum::Null,
            Value::Boolean(b) => Datum::Int(i64::from(b)),
            Value::Integer(i) => Datum::Int(i),
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Datum::Int(n as i64),
            Value::Number(n) => Datum::Real(n),
            Value::String(s) => Datum::Text(s.to_str()?.to_string()),
            other => {
                return Err(mlua::Error::runtime(format!(
                    "msys.db: a query parameter is a string, number, boolean or nil, not a {}",
                    other.type_name()
                )));
            }
        })
    };
    let mut named = Vec::new();
    let mut max = 0usize;
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, v) = pair?;
        match k {
            Value::String(s) => named.push((s.to_str()?.to_string(), datum(v)?)),
            Value::Integer(i) if i > 0 => max = max.max(i as usize),
            Value::Number(n) if n > 0.0 && n.fract() == 0.0 => max = max.max(n as usize),
            _ => {}
        }
    }
    if max > 0 {
        let mut v = Vec::with_capacity(max);
        for i in 1..=max {
            v.push(datum(t.raw_get(i)?)?);
        }
        return Ok(Params::Positional(v));
    }
    if named.is_empty() {
        Ok(Params::None)
    } else {
        Ok(Params::Named(named))
    }
}

/// A row as a Lua table, by column name (NULL columns absent, as `nil`).
fn row(lua: &Lua, r: &Row) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (name, d) in r {
        let v = match d {
            Datum::Null => Value::Nil,
            Datum::Int(i) => Value::Number(*i as f64),
            Datum::Real(f) => Value::Number(*f),
            Datum::Text(s) => Value::String(lua.create_string(s)?),
            Datum::Blob(b) => Value::String(lua.create_string(b)?),
        };
        t.set(name.as_str(), v)?;
    }
    Ok(t)
}

/// `{ nocache = .., raise_error = .. }`.
fn options(o: Option<Table>) -> mlua::Result<(bool, bool)> {
    let Some(o) = o else {
        return Ok((false, true));
    };
    let nocache = o.get::<Option<bool>>("nocache")?.unwrap_or(false);
    let raise = o.get::<Option<bool>>("raise_error")?.unwrap_or(true);
    Ok((nocache, raise))
}

/// The rows of a `query` or `fetch_row` (`what`): a failure raises, or with
/// `raise_error = false` is the inner `Err` with its message.
fn rows_of(
    sources: &Datasources,
    what: &str,
    cache: &str,
    sql: &str,
    p: Option<Table>,
    o: Option<Table>,
) -> mlua::Result<Result<Arc<Vec<Row>>, String>> {
    let (nocache, raise) = options(o)?;
    let p = params(p)?;
    match sources.get(cache).and_then(|c| c.query(sql, &p, nocache)) {
        Ok(rows) => Ok(Ok(rows)),
        Err(e) if raise => Err(mlua::Error::runtime(format!("msys.db.{what}: {e}"))),
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// Installs `msys.db` and the `msys.datasource` namespace.
pub fn install(lua: &Lua, msys: &Table, sources: Arc<Datasources>) -> mlua::Result<()> {
    let db = lua.create_table()?;
    type Args = (String, String, Option<Table>, Option<Table>);
    let s = Arc::clone(&sources);
    db.set(
        "query",
        lua.create_function(move |lua, (cache, sql, p, o): Args| {
            let rows = match rows_of(&s, "query", &cache, &sql, p, o)? {
                Ok(r) => r,
                Err(e) => return Ok((Value::Nil, Some(e))),
            };
            let mut next = 0usize;
            let iter = lua.create_function_mut(move |lua, _: mlua::Variadic<Value>| {
                let Some(r) = rows.get(next) else {
                    return Ok(Value::Nil);
                };
                next += 1;
                Ok(Value::Table(row(lua, r)?))
            })?;
            Ok((Value::Function(iter), None))
        })?,
    )?;
    let s = Arc::clone(&sources);
    db.set(
        "fetch_row",
        lua.create_function(move |lua, (cache, sql, p, o): Args| {
            match rows_of(&s, "fetch_row", &cache, &sql, p, o)? {
                Ok(rows) => match rows.first() {
                    Some(r) => Ok((Value::Table(row(lua, r)?), None)),
                    None => Ok((Value::Nil, None)),
                },
                Err(e) => Ok((Value::Nil, Some(e))),
            }
        })?,
    )?;
    let s = sources;
    db.set(
        "execute",
        lua.create_function(move |_, (cache, sql, p, o): Args| {
            let (_, raise) = options(o)?;
            let p = params(p)?;
            match s.get(&cache).and_then(|c| c.execute(&sql, &p)) {
                Ok(_) => Ok((true, None)),
                Err(e) if raise => Err(mlua::Error::runtime(format!("msys.db.execute: {e}"))),
                Err(e) => Ok((false, Some(e.to_string()))),
            }
        })?,
    )?;
    msys.set("db", db)?;
    msys.set("datasource", lua.create_table()?)
}
