//! `msys.cidr`: named tables keyed by network (Momentum's cidrdb module), filled from an
//! rbldnsd file or a datasource query, or left empty, and asked "which entry holds this
//! address?" (`query`: the longest prefix wins).
//!
//! A table is shared by every thread's Lua state and outlives a reload: each state's `init`
//! defines it again, and a definition equal to the one in force keeps the loaded data
//! instead of reading the file once per state. `refresh` seconds after loading, the next
//! query reads the source again (a failed refresh keeps the old data and logs why);
//! `msys.cidr.reload` does it at once.
//!
//! The rbldnsd reader takes what Momentum documents: `ip[/len]`, partial addresses
//! (`10.1` is `10.1.0.0/16`), IPv4 ranges (`a.b.c.d-e`, `a.b.c.d-a.b.c.e`), `!ip` to
//! exclude, `:A:TXT` default lines, `$` directives and `#` comments; an IPv4 entry may be
//! followed straight by `:value`, an IPv6 one needs a space before its `:` (the colons are
//! the address's own). IPv6 ranges are refused, as Momentum refuses them. `optimize` is
//! accepted and changes nothing: the table is indexed by prefix length whatever the order.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bindery_datasource::{Datasources, Datum, Params};
use ipnet::{IpNet, Ipv4Subnets};

/// What a query gives for a matching entry: the entry's text, or, for a datasource table
/// without a `value_column`, `true`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    Text(String),
    True,
}

/// Entries by prefix length, longest first; `None` is an exclusion (`!ip`).
#[derive(Debug, Default)]
pub struct Table {
    v4: Vec<(u8, HashMap<u32, Option<Found>>)>,
    v6: Vec<(u8, HashMap<u128, Option<Found>>)>,
}

fn mask4(ip: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        ip & (u32::MAX << (32 - u32::from(len)))
    }
}

fn mask6(ip: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        ip & (u128::MAX << (128 - u32::from(len)))
    }
}

fn slot<K, V>(list: &mut Vec<(u8, HashMap<K, V>)>, len: u8) -> &mut HashMap<K, V> {
    let at = match list.iter().position(|(l, _)| *l <= len) {
        Some(i) if list[i].0 == len => i,
        Some(i) => {
            list.insert(i, (len, HashMap::new()));
            i
        }
        None => {
            list.push((len, HashMap::new()));
            list.len() - 1
        }
    };
    &mut list[at].1
}

impl Table {
    /// Adds `net`; a later entry for the same network replaces an earlier one.
    pub fn insert(&mut self, net: IpNet, value: Option<Found>) {
        match net.trunc() {
            IpNet::V4(n) => {
                let len = n.prefix_len();
                slot(&mut self.v4, len).insert(u32::from(n.network()), value);
            }
            IpNet::V6(n) => {
                let len = n.prefix_len();
                slot(&mut self.v6, len).insert(u128::from(n.network()), value);
            }
        }
    }

    /// The entry of the longest prefix holding `ip`: `None` when there is none, or when
    /// it is an exclusion.
    pub fn lookup(&self, ip: IpAddr) -> Option<&Found> {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            v4 => v4,
        };
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4
                    .iter()
                    .find_map(|(len, m)| m.get(&mask4(a, *len)))?
                    .as_ref()
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6
                    .iter()
                    .find_map(|(len, m)| m.get(&mask6(a, *len)))?
                    .as_ref()
            }
        }
    }

    pub fn len(&self) -> usize {
        self.v4.iter().map(|(_, m)| m.len()).sum::<usize>()
            + self.v6.iter().map(|(_, m)| m.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which half of an rbldnsd value a table keeps (`value = "a"` or `"txt"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    A,
    Txt,
}

/// rbldnsd's `A` value: a whole address, or a number `n` meaning `127.0.0.n`.
fn a_value(s: &str) -> Result<String, String> {
    if s.parse::<Ipv4Addr>().is_ok() {
        return Ok(s.to_string());
    }
    match s.parse::<u8>() {
        Ok(n) => Ok(format!("127.0.0.{n}")),
        Err(_) => Err(format!("{s:?} is not an address or a number for 127.0.0.N")),
    }
}

/// An IPv4 entry: whole, `/len`, partial (`10.1`), or a range.
fn v4_nets(entry: &str) -> Result<Vec<IpNet>, String> {
    let bad = || format!("{entry:?} is not an IPv4 address, network or range");
    if let Some((from, to)) = entry.split_once('-') {
        let start: Ipv4Addr = from.parse().map_err(|_| bad())?;
        let end: Ipv4Addr = if to.contains('.') {
            to.parse().map_err(|_| bad())?
        } else {
            let last: u8 = to.parse().map_err(|_| bad())?;
            let o = start.octets();
            Ipv4Addr::new(o[0], o[1], o[2], last)
        };
        if end < start {
            return Err(format!("{entry:?}: the range ends before it starts"));
        }
        return Ok(Ipv4Subnets::new(start, end, 0).map(IpNet::V4).collect());
    }
    let (addr, len) = match entry.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
        None => (entry, None),
    };
    let parts: Vec<&str> = addr.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return Err(bad());
    }
    let mut octets = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        octets[i] = p.parse().map_err(|_| bad())?;
    }
    let len = len.unwrap_or(8 * parts.len() as u8);
    let net = ipnet::Ipv4Net::new(Ipv4Addr::from(octets), len).map_err(|_| bad())?;
    Ok(vec![IpNet::V4(net)])
}

fn v6_net(entry: &str) -> Result<IpNet, String> {
    if entry.contains('-') {
        return Err(format!(
            "{entry:?}: IPv6 ranges are not supported (as in Momentum); write a network with /len"
        ));
    }
    let net = match entry.split_once('/') {
        Some(_) => entry.parse::<IpNet>().ok(),
        None => entry.parse::<IpAddr>().ok().map(IpNet::from),
    };
    net.ok_or_else(|| format!("{entry:?} is not an IPv6 address or network"))
}

/// Reads an rbldnsd data file. `interpolate` is applied at query time, not here.
pub fn parse_rbldnsd(text: &str, column: Column) -> Result<Table, String> {
    let mut table = Table::default();
    // rbldnsd's defaults until a `:A:TXT` line changes them.
    let mut default_a = "127.0.0.2".to_string();
    let mut default_txt = String::new();
    for (n, raw) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}", n + 1);
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('$') {
            continue;
        }
        if let Some(rest) = line.strip_prefix(':') {
            let (a, txt) = rest.split_once(':').unwrap_or((rest, ""));
            if !a.is_empty() {
                default_a = a_value(a).map_err(at)?;
            }
            default_txt = txt.to_string();
            continue;
        }
        let (excluded, line) = match line.strip_prefix('!') {
            Some(l) => (true, l.trim_start()),
            None => (false, line),
        };
        // The entry ends at white space, or, for IPv4, at its value's colon.
        let end = line.find(char::is_whitespace).unwrap_or(line.len());
        let first = &line[..end];
        let (entry, rest) = if first.contains('.') && !first.contains("::") {
            match first.find(':') {
                Some(c) => (&first[..c], &line[c..]),
                None => (first, &line[end..]),
            }
        } else {
            (first, &line[end..])
        };
        let nets = if entry.contains(':') {
            vec![v6_net(entry).map_err(at)?]
        } else {
            v4_nets(entry).map_err(at)?
        };
        let value = if excluded {
            None
        } else {
            let rest = rest.trim();
            let (a, txt) = match rest.strip_prefix(':') {
                Some(v) => {
                    let (a, t) = v.split_once(':').unwrap_or((v, ""));
                    let a = if a.is_empty() {
                        default_a.clone()
                    } else {
                        a_value(a).map_err(at)?
                    };
                    let t = if t.is_empty() { &default_txt } else { t };
                    (a, t.to_string())
                }
                None if !rest.is_empty() => (default_a.clone(), rest.to_string()),
                None => (default_a.clone(), default_txt.clone()),
            };
            Some(Found::Text(match column {
                Column::A => a,
                Column::Txt => txt,
            }))
        };
        for net in nets {
            table.insert(net, value.clone());
        }
    }
    Ok(table)
}

/// Where a table's entries come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Empty,
    Rbldnsd {
        source: String,
        column: Column,
    },
    Datasource {
        cache: String,
        query: String,
        cidr_column: ColumnRef,
        value_column: Option<ColumnRef>,
    },
}

/// A result column, by name or by position (1 is the first).
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnRef {
    Name(String),
    Position(usize),
}

/// A definition: `msys.cidr.define`'s options.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub kind: Kind,
    /// Seconds between refreshes; 0: only `msys.cidr.reload`.
    pub refresh: u64,
    pub interpolate: bool,
    pub default_value: Option<String>,
}

struct Defined {
    options: Options,
    /// For a datasource table, the configuration's datasources when it was defined.
    sources: Arc<Datasources>,
    table: Arc<Table>,
    loaded: Instant,
}

/// Every table, by name.
#[derive(Default)]
pub struct Cidrs(Mutex<HashMap<String, Defined>>);

impl std::fmt::Debug for Cidrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cidrs").finish_non_exhaustive()
    }
}

fn read_source(uri: &str) -> Result<String, String> {
    let path = match uri.split_once("://") {
        Some(("file", p)) => p,
        Some((scheme, _)) => {
            return Err(format!(
                "source {uri:?}: only files are read by bindery (a path or file://), not {scheme}:"
            ));
        }
        None => uri,
    };
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
}

fn datum_text(d: &Datum) -> String {
    match d {
        Datum::Null => String::new(),
        Datum::Int(i) => i.to_string(),
        Datum::Real(r) => r.to_string(),
        Datum::Text(t) => t.clone(),
        Datum::Blob(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

fn column<'r>(row: &'r [(String, Datum)], c: &ColumnRef) -> Option<&'r Datum> {
    match c {
        ColumnRef::Name(n) => row.iter().find(|(k, _)| k == n).map(|(_, v)| v),
        ColumnRef::Position(p) => row.get(p.checked_sub(1)?).map(|(_, v)| v),
    }
}

fn load(options: &Options, sources: &Datasources) -> Result<Table, String> {
    match &options.kind {
        Kind::Empty => Ok(Table::default()),
        Kind::Rbldnsd { source, column } => {
            let text = read_source(source)?;
            parse_rbldnsd(&text, *column).map_err(|e| format!("{source}: {e}"))
        }
        Kind::Datasource {
            cache,
            query,
            cidr_column,
            value_column,
        } => {
            let rows = sources
                .get(cache)
                .and_then(|c| c.query(query, &Params::None, true))
                .map_err(|e| e.to_string())?;
            let mut table = Table::default();
            for (i, row) in rows.iter().enumerate() {
                let net = column(row, cidr_column)
                    .map(datum_text)
                    .ok_or_else(|| format!("row {}: no CIDR column {cidr_column:?}", i + 1))?;
                let net: IpNet = net
                    .parse()
                    .or_else(|_| net.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("row {}: {net:?} is not a network", i + 1))?;
                let value = match value_column {
                    None => Found::True,
                    Some(c) => Found::Text(column(row, c).map(datum_text).unwrap_or_default()),
                };
                table.insert(net, Some(value));
            }
            Ok(table)
        }
    }
}

impl Cidrs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Defined>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Defines `name` and loads it; a definition equal to the one in force keeps its data.
    pub fn define(
        &self,
        name: &str,
        options: Options,
        sources: &Arc<Datasources>,
    ) -> Result<(), String> {
        if self.lock().get(name).is_some_and(|d| d.options == options) {
            return Ok(());
        }
        let table = Arc::new(load(&options, sources)?);
        self.lock().insert(
            name.to_string(),
            Defined {
                options,
                sources: Arc::clone(sources),
                table,
                loaded: Instant::now(),
            },
        );
        Ok(())
    }

    /// Reads `name`'s source again.
    pub fn reload(&self, name: &str) -> Result<(), String> {
        let (options, sources) = {
            let all = self.lock();
            let d = all.get(name).ok_or_else(|| no_such(name))?;
            (d.options.clone(), Arc::clone(&d.sources))
        };
        let table = Arc::new(load(&options, &sources)?);
        if let Some(d) = self.lock().get_mut(name) {
            d.table = table;
            d.loaded = Instant::now();
        }
        Ok(())
    }

    /// What `ip` finds in `name`: its entry (with `$` replaced by `ip` when the table
    /// interpolates), or the table's `default_value`.
    pub fn query(&self, name: &str, ip: IpAddr) -> Result<Option<Found>, String> {
        // Only what the answer needs leaves the lock: the table, and the two options.
        let (table, interpolate, default_value, stale) = {
            let all = self.lock();
            let d = all.get(name).ok_or_else(|| no_such(name))?;
            let stale = d.options.refresh > 0
                && d.loaded.elapsed() >= Duration::from_secs(d.options.refresh);
            let o = &d.options;
            (
                Arc::clone(&d.table),
                o.interpolate,
                o.default_value.clone(),
                stale,
            )
        };
        let table = if stale {
            match self.reload(name) {
                Ok(()) => self
                    .lock()
                    .get(name)
                    .map_or(table, |d| Arc::clone(&d.table)),
                Err(e) => {
                    tracing::warn!(cidr = name, error = %e, "msys.cidr refresh failed; the old entries stay");
                    if let Some(d) = self.lock().get_mut(name) {
                        d.loaded = Instant::now();
                    }
                    table
                }
            }
        } else {
            table
        };
        Ok(match table.lookup(ip) {
            Some(Found::Text(t)) if interpolate => {
                Some(Found::Text(t.replace('$', &ip.to_string())))
            }
            Some(found) => Some(found.clone()),
            None => default_value.map(Found::Text),
        })
    }
}

fn no_such(name: &str) -> String {
    format!("no CIDR named {name:?} (define it with msys.cidr.define)")
}

/// An address as scripts give it: `ip`, `ip:port`, `[v6]:port`.
pub fn parse_addr(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    s.rsplit_once(':').and_then(|(ip, _)| ip.parse().ok())
}

fn options_of(lua_opts: mlua::Value) -> mlua::Result<Options> {
    use mlua::Value;
    let err = |m: String| mlua::Error::runtime(format!("msys.cidr.define: {m}"));
    let t = match lua_opts {
        // A bare string is the type, which only `empty` can do without more.
        Value::String(s) => {
            let kind = s.to_str()?.to_string();
            if kind != "empty" {
                return Err(err(format!(
                    "type {kind:?} needs an options table (source, or cachename and query)"
                )));
            }
            return Ok(Options {
                kind: Kind::Empty,
                refresh: 1800,
                interpolate: false,
                default_value: None,
            });
        }
        Value::Table(t) => t,
        _ => return Err(err("options must be a table or a type name".into())),
    };
    let s = |k: &str| t.get::<Option<String>>(k);
    let col = |k: &str| -> mlua::Result<Option<ColumnRef>> {
        Ok(match t.get::<Value>(k)? {
            Value::Nil => None,
            Value::Integer(i) if i > 0 => Some(ColumnRef::Position(i as usize)),
            Value::Number(n) if n >= 1.0 => Some(ColumnRef::Position(n as usize)),
            Value::String(s) => Some(ColumnRef::Name(s.to_str()?.to_string())),
            _ => return Err(err(format!("{k} must be a column name or position"))),
        })
    };
    let kind = match s("type")?.as_deref() {
        Some("empty") => Kind::Empty,
        Some("rbldnsd") => Kind::Rbldnsd {
            source: s("source")?.ok_or_else(|| err("an rbldnsd CIDR needs a source".into()))?,
            column: match s("value")?.map(|v| v.to_ascii_lowercase()).as_deref() {
                None | Some("a") => Column::A,
                Some("txt") => Column::Txt,
                Some(other) => return Err(err(format!("value {other:?} is not a or txt"))),
            },
        },
        Some("datasource") => Kind::Datasource {
            cache: s("cachename")?
                .ok_or_else(|| err("a datasource CIDR needs a cachename".into()))?,
            query: s("query")?.ok_or_else(|| err("a datasource CIDR needs a query".into()))?,
            cidr_column: col("cidr_column")?.unwrap_or(ColumnRef::Position(1)),
            value_column: col("value_column")?,
        },
        Some(other) => {
            return Err(err(format!(
                "type {other:?} is not datasource, rbldnsd or empty"
            )));
        }
        None => {
            return Err(err(
                "options need a type (datasource, rbldnsd or empty)".into()
            ));
        }
    };
    Ok(Options {
        kind,
        refresh: t
            .get::<Option<f64>>("refresh")?
            .map_or(1800, |r| r.max(0.0) as u64),
        interpolate: t.get::<Option<bool>>("interpolate")?.unwrap_or(false),
        default_value: s("default_value")?,
    })
}

/// Installs `msys.cidr`. A query without an address asks for the connected client's.
pub fn install(
    lua: &mlua::Lua,
    msys: &mlua::Table,
    call: &std::rc::Rc<std::cell::RefCell<crate::handles::Call>>,
    cidrs: Arc<Cidrs>,
    sources: Arc<Datasources>,
) -> mlua::Result<()> {
    use mlua::Value;
    let t = lua.create_table()?;
    let c = Arc::clone(&cidrs);
    t.set(
        "define",
        lua.create_function(move |_, (name, o): (String, Value)| {
            let options = options_of(o)?;
            c.define(&name, options, &sources)
                .map_err(|e| mlua::Error::runtime(format!("msys.cidr.define({name:?}): {e}")))?;
            Ok(true)
        })?,
    )?;
    let c = Arc::clone(&cidrs);
    let call = std::rc::Rc::clone(call);
    t.set(
        "query",
        lua.create_function(move |lua, (name, addr): (String, Option<String>)| {
            let fail = |e: String| mlua::Error::runtime(format!("msys.cidr.query: {e}"));
            let ip = match addr {
                Some(a) => {
                    parse_addr(&a).ok_or_else(|| fail(format!("{a:?} is not an address")))?
                }
                None => call
                    .borrow()
                    .conn
                    .peer
                    .ok_or_else(|| fail("no address given and no connected client".into()))?,
            };
            Ok(match c.query(&name, ip).map_err(fail)? {
                Some(Found::Text(s)) => Value::String(lua.create_string(&s)?),
                Some(Found::True) => Value::Boolean(true),
                None => Value::Nil,
            })
        })?,
    )?;
    let c = cidrs;
    t.set(
        "reload",
        lua.create_function(move |_, name: String| {
            c.reload(&name)
                .map_err(|e| mlua::Error::runtime(format!("msys.cidr.reload({name:?}): {e}")))?;
            Ok(true)
        })?,
    )?;
    msys.set("cidr", t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn text(t: &Table, a: &str) -> Option<String> {
        match t.lookup(ip(a)) {
            Some(Found::Text(s)) => Some(s.clone()),
            Some(Found::True) => Some("true".into()),
            None => None,
        }
    }

    #[test]
    fn rbldnsd_entries_defaults_and_exclusions() {
        let file = "\
# a comment
$TTL 3600
:127.0.0.2:Listed: see http://rbl.example/?$
10.0.0.0/8
10.1.2.3 :4:Spam source $
10.9.9.9:127.0.0.5:Direct colon
10.1
!10.1.2.4
192.0.2.10-20
198.51.100.7-198.51.100.8
2001:db8::/32 :3:Six
";
        let a = parse_rbldnsd(file, Column::A).unwrap();
        assert_eq!(text(&a, "10.200.0.1").as_deref(), Some("127.0.0.2"));
        assert_eq!(text(&a, "10.1.2.3").as_deref(), Some("127.0.0.4"));
        assert_eq!(text(&a, "10.9.9.9").as_deref(), Some("127.0.0.5"));
        assert_eq!(text(&a, "10.1.2.4"), None, "excluded");
        assert_eq!(text(&a, "10.1.2.5").as_deref(), Some("127.0.0.2"));
        assert_eq!(text(&a, "192.0.2.15").as_deref(), Some("127.0.0.2"));
        assert_eq!(text(&a, "192.0.2.21"), None);
        assert_eq!(text(&a, "198.51.100.8").as_deref(), Some("127.0.0.2"));
        assert_eq!(text(&a, "2001:db8::1").as_deref(), Some("127.0.0.3"));
        assert_eq!(text(&a, "::ffff:10.1.2.3").as_deref(), Some("127.0.0.4"));
        assert_eq!(text(&a, "11.0.0.1"), None);
        let t = parse_rbldnsd(file, Column::Txt).unwrap();
        assert_eq!(
            text(&t, "10.200.0.1").as_deref(),
            Some("Listed: see http://rbl.example/?$")
        );
        assert_eq!(text(&t, "10.1.2.3").as_deref(), Some("Spam source $"));
        assert_eq!(text(&t, "2001:db8:1::").as_deref(), Some("Six"));
    }

    #[test]
    fn rbldnsd_errors_name_their_line() {
        let e = parse_rbldnsd("10.0.0.1\n300.1.1.1\n", Column::A).unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = parse_rbldnsd("2001:db8::1-2001:db8::9\n", Column::A).unwrap_err();
        assert!(e.contains("IPv6 ranges"), "{e}");
    }

    #[test]
    fn query_interpolates_defaults_and_refreshes_on_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rbl.txt");
        std::fs::write(&path, "192.0.2.0/24 :2:Blocked $\n").unwrap();
        let cidrs = Cidrs::default();
        let options = Options {
            kind: Kind::Rbldnsd {
                source: path.display().to_string(),
                column: Column::Txt,
            },
            refresh: 0,
            interpolate: true,
            default_value: Some("127.0.0.0".into()),
        };
        let none = Arc::new(Datasources::default());
        cidrs.define("rbl", options.clone(), &none).unwrap();
        assert_eq!(
            cidrs.query("rbl", ip("192.0.2.9")).unwrap(),
            Some(Found::Text("Blocked 192.0.2.9".into()))
        );
        assert_eq!(
            cidrs.query("rbl", ip("203.0.113.1")).unwrap(),
            Some(Found::Text("127.0.0.0".into()))
        );
        std::fs::write(&path, "203.0.113.0/24 :2:Now\n").unwrap();
        // Defining it again the same way keeps what was loaded...
        cidrs.define("rbl", options, &none).unwrap();
        assert_eq!(
            cidrs.query("rbl", ip("203.0.113.1")).unwrap(),
            Some(Found::Text("127.0.0.0".into()))
        );
        // ...until it is reloaded.
        cidrs.reload("rbl").unwrap();
        assert_eq!(
            cidrs.query("rbl", ip("203.0.113.1")).unwrap(),
            Some(Found::Text("Now".into()))
        );
        assert!(cidrs.query("nope", ip("1.2.3.4")).is_err());
    }
}
