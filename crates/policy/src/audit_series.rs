//! `msys.audit_series`: named counts in time windows, by client address (`cidr`,
//! `cidr_ipv6`) or by string, as Momentum's reference pages describe them. A series has
//! `num_windows` buckets of `interval` seconds; `add` counts into the current one, `count`
//! sums the current one, or the windows `startv` to `endv` back from it, for one key or,
//! for an address series, every address inside `ip/mask`. Series are shared by every
//! thread's Lua state and outlive a reload, as Momentum's do; `persist`, `serialize` and
//! `replicate` are Momentum's cluster and disk options, not built here, and refused when
//! asked for.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use ipnet::IpNet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Cidr,
    CidrV6,
    Str,
}

#[derive(Debug)]
struct Series {
    kind: Kind,
    interval: u64,
    windows: u64,
    /// Per key: (window number, count), newest last, at most `windows` of them.
    data: HashMap<String, Vec<(u64, i64)>>,
}

/// Every series, by name.
#[derive(Debug, Default)]
pub struct AuditSeries(Mutex<HashMap<String, Series>>);

impl AuditSeries {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Series>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Defines `name`; defining it again with the same shape keeps its counts.
    pub fn define(
        &self,
        name: &str,
        kind: Kind,
        interval: u64,
        windows: u64,
    ) -> Result<(), String> {
        if interval == 0 || windows == 0 {
            return Err(
                "msys.audit_series.define: interval and num_windows must be positive".into(),
            );
        }
        let mut all = self.lock();
        match all.get(name) {
            Some(s) if s.kind == kind && s.interval == interval && s.windows == windows => {}
            _ => {
                all.insert(
                    name.to_string(),
                    Series {
                        kind,
                        interval,
                        windows,
                        data: HashMap::new(),
                    },
                );
            }
        }
        Ok(())
    }

    /// The kind of `name`, if it is defined.
    pub fn kind(&self, name: &str) -> Option<Kind> {
        self.lock().get(name).map(|s| s.kind)
    }

    /// Adds `count` to `key`'s current window at time `now` (seconds).
    pub fn add(&self, name: &str, key: &str, count: i64, now: u64) -> Result<(), String> {
        let mut all = self.lock();
        let s = all
            .get_mut(name)
            .ok_or_else(|| format!("msys.audit_series: no series named {name:?} is defined"))?;
        let w = now / s.interval;
        let oldest = w.saturating_sub(s.windows - 1);
        let v = s.data.entry(key.to_string()).or_default();
        v.retain(|(x, _)| *x >= oldest);
        match v.last_mut() {
            Some((x, c)) if *x == w => *c += count,
            _ => v.push((w, count)),
        }
        Ok(())
    }

    /// The sum over windows `startv..=endv` back from the current one, for `key`, or for
    /// every address inside it when it is a network.
    pub fn count(
        &self,
        name: &str,
        key: &str,
        startv: u64,
        endv: u64,
        now: u64,
    ) -> Result<i64, String> {
        let all = self.lock();
        let s = all
            .get(name)
            .ok_or_else(|| format!("msys.audit_series: no series named {name:?} is defined"))?;
        let w = now / s.interval;
        let (lo, hi) = (startv.min(endv), startv.max(endv).min(s.windows - 1));
        let in_range = |x: u64| x <= w.saturating_sub(lo) && x + hi >= w;
        let sum = |v: &Vec<(u64, i64)>| -> i64 {
            v.iter().filter(|(x, _)| in_range(*x)).map(|(_, c)| c).sum()
        };
        if s.kind != Kind::Str && key.contains('/') {
            let net: IpNet = key
                .parse()
                .map_err(|_| format!("msys.audit_series: {key:?} is not an address/mask"))?;
            return Ok(s
                .data
                .iter()
                .filter(|(k, _)| k.parse::<IpAddr>().is_ok_and(|ip| net.contains(&ip)))
                .map(|(_, v)| sum(v))
                .sum());
        }
        Ok(s.data.get(key).map_or(0, sum))
    }

    /// Whether `name` is defined.
    pub fn has(&self, name: &str) -> bool {
        self.lock().contains_key(name)
    }

    /// The names defined, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// Drops every key whose windows are all past its series' reach at `now`: what keeps a
    /// series of client addresses from growing with every address ever seen.
    pub fn sweep(&self, now: u64) {
        for s in self.lock().values_mut() {
            let oldest = (now / s.interval).saturating_sub(s.windows - 1);
            s.data.retain(|_, v| {
                v.retain(|(x, _)| *x >= oldest);
                !v.is_empty()
            });
        }
    }

    /// Forgets `key` in `name`.
    pub fn remove_item(&self, name: &str, key: &str) {
        if let Some(s) = self.lock().get_mut(name) {
            s.data.remove(key);
        }
    }
}

/// `msys.audit.connections`, `receptions` and `rejections(monitor, options)`: the inbound_audit
/// module's counts (the daemon counts into series `connections:MONITOR` and so on) for the
/// connected client, or `options.cidr` (or `options` itself as a string), summed over
/// windows `startv` to `endv`. A monitor the module does not have, or the module not
/// loaded, raises, as Momentum's does; `cluster = true` asks for cluster-wide counts, which
/// a single node does not have (issue 23), and raises too.
pub fn install_inbound(
    lua: &mlua::Lua,
    audit: &mlua::Table,
    call: &std::rc::Rc<std::cell::RefCell<crate::handles::Call>>,
    series: std::sync::Arc<AuditSeries>,
) -> mlua::Result<()> {
    use mlua::Value;
    for what in ["connections", "receptions", "rejections"] {
        let (series, call) = (std::sync::Arc::clone(&series), std::rc::Rc::clone(call));
        audit.set(
            what,
            lua.create_function(move |_, (monitor, options): (String, Value)| {
                let fail = |e: String| mlua::Error::runtime(format!("msys.audit.{what}: {e}"));
                let monitor: String = monitor.chars().filter(|c| !c.is_whitespace()).collect();
                let name = format!("{what}:{monitor}");
                if !series.has(&name) {
                    let have: Vec<String> = series
                        .names()
                        .into_iter()
                        .filter_map(|n| n.strip_prefix("connections:").map(str::to_string))
                        .collect();
                    return Err(fail(if have.is_empty() {
                        "the inbound_audit module is not loaded (add `inbound_audit { monitors = ( \"300,6\" ) }`)".into()
                    } else {
                        format!("no monitor {monitor:?}; inbound_audit has {}", have.join(", "))
                    }));
                }
                let (mut startv, mut endv, mut cidr) = (0u64, 0u64, None);
                match &options {
                    Value::Table(t) => {
                        if t.get::<Option<bool>>("cluster")? == Some(true) {
                            return Err(fail(
                                "cluster-wide counts are not implemented by bindery (one node's counts; issue 23)".into(),
                            ));
                        }
                        startv = t.get::<Option<f64>>("startv")?.unwrap_or(0.0).max(0.0) as u64;
                        endv = t.get::<Option<f64>>("endv")?.unwrap_or(0.0).max(0.0) as u64;
                        cidr = t.get::<Option<String>>("cidr")?;
                    }
                    Value::String(s) => cidr = Some(s.to_str()?.to_string()),
                    _ => {}
                }
                let key = match cidr {
                    Some(c) => c,
                    None => call
                        .borrow()
                        .conn
                        .peer
                        .map(|p| p.to_string())
                        .ok_or_else(|| fail("no cidr given and no connected client".into()))?,
                };
                series
                    .count(&name, &key, startv, endv, crate::unix_now())
                    .map_err(fail)
            })?,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_fall_in_windows_and_networks_sum_their_addresses() {
        let a = AuditSeries::default();
        a.define("conns", Kind::Cidr, 60, 3).unwrap();
        a.add("conns", "192.0.2.1", 1, 0).unwrap();
        a.add("conns", "192.0.2.1", 2, 59).unwrap();
        a.add("conns", "192.0.2.9", 5, 59).unwrap();
        a.add("conns", "198.51.100.1", 7, 59).unwrap();
        assert_eq!(a.count("conns", "192.0.2.1", 0, 0, 59), Ok(3));
        assert_eq!(a.count("conns", "192.0.2.0/24", 0, 0, 59), Ok(8));
        a.add("conns", "192.0.2.1", 10, 61).unwrap();
        assert_eq!(
            a.count("conns", "192.0.2.1", 0, 0, 61),
            Ok(10),
            "a new window"
        );
        assert_eq!(
            a.count("conns", "192.0.2.1", 0, 1, 61),
            Ok(13),
            "this and the last"
        );
        assert_eq!(
            a.count("conns", "192.0.2.1", 0, 2, 300),
            Ok(0),
            "all old now"
        );
        a.remove_item("conns", "192.0.2.9");
        assert_eq!(a.count("conns", "192.0.2.0/24", 0, 1, 61), Ok(13));
        assert!(a.count("nope", "x", 0, 0, 0).is_err());
        // Defining it again with the same shape keeps the counts.
        a.define("conns", Kind::Cidr, 60, 3).unwrap();
        assert_eq!(a.count("conns", "192.0.2.1", 0, 0, 61), Ok(10));
        // A sweep drops what no window reaches any more.
        a.sweep(61);
        assert_eq!(a.count("conns", "192.0.2.0/24", 0, 2, 61), Ok(13));
        a.sweep(400);
        assert_eq!(a.count("conns", "192.0.2.0/24", 0, 2, 400), Ok(0));
        assert!(a.has("conns") && a.names() == vec!["conns".to_string()]);
    }
}
