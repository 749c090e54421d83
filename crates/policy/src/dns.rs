//! `msys.dnsLookup(name, recordtype, options)`: a DNS question from a script, through the
//! daemon's resolver ([`Dns`], the seam; the daemon's implementation waits for the answer
//! on the calling connection's thread only, other connections go on). Returns the records
//! as strings (MX records best first, as `{preference, name}` with `priority = true`), an
//! empty table when the name has no record of that type, or `nil` and the error:
//! `"NXDOMAIN"` when the name does not exist (the training policy compares with it),
//! otherwise the resolver's reason. An unknown record type raises, as Momentum's does (the
//! session then gets a 421).
//!
//! The time a lookup waits does not count against the callout's time budget: the script
//! is not running meanwhile.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mlua::{Lua, Table, Value};

/// The record types Momentum's page lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordType {
    A,
    Aaaa,
    Txt,
    Mx,
    Ptr,
    Ns,
}

impl RecordType {
    pub fn parse(s: &str) -> Option<RecordType> {
        Some(match s.to_ascii_uppercase().as_str() {
            "A" => RecordType::A,
            "AAAA" => RecordType::Aaaa,
            "TXT" => RecordType::Txt,
            "MX" => RecordType::Mx,
            "PTR" => RecordType::Ptr,
            "NS" => RecordType::Ns,
            _ => return None,
        })
    }
}

/// One record: its data as text, and an MX record's preference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsRecord {
    pub preference: Option<u16>,
    pub text: String,
}

/// Why a lookup has no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsFailure {
    #[error("NXDOMAIN")]
    NxDomain,
    #[error("{0}")]
    Failed(String),
}

/// The resolver seam. `server`: ask that server instead of the configured ones. An
/// existing name without records of the type is `Ok(vec![])`.
pub trait Dns: Send + Sync {
    fn lookup(
        &self,
        name: &str,
        rtype: RecordType,
        server: Option<SocketAddr>,
    ) -> Result<Vec<DnsRecord>, DnsFailure>;
}

/// A lookup's outcome.
pub type DnsAnswer = Result<Vec<DnsRecord>, DnsFailure>;

/// Answers from a table, for tests. A question it has no entry for is NXDOMAIN.
#[derive(Default)]
pub struct MemDns {
    answers: Mutex<HashMap<(String, RecordType), DnsAnswer>>,
    /// Every question asked, in order: `name/TYPE[@server]`.
    pub asked: Mutex<Vec<String>>,
}

impl MemDns {
    pub fn answer(&self, name: &str, rtype: RecordType, r: Result<Vec<DnsRecord>, DnsFailure>) {
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((name.to_ascii_lowercase(), rtype), r);
    }
}

impl Dns for MemDns {
    fn lookup(
        &self,
        name: &str,
        rtype: RecordType,
        server: Option<SocketAddr>,
    ) -> Result<Vec<DnsRecord>, DnsFailure> {
        let at = server.map(|s| format!("@{s}")).unwrap_or_default();
        self.asked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("{name}/{rtype:?}{at}"));
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(name.trim_end_matches('.').to_ascii_lowercase(), rtype))
            .cloned()
            .unwrap_or(Err(DnsFailure::NxDomain))
    }
}

/// A server given as `ip`, `ip:port` or `[v6]:port`.
fn server_addr(s: &str) -> Option<SocketAddr> {
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    s.parse().ok()
}

/// Installs `msys.dnsLookup`. `waited` is told how long each lookup took (the budget's
/// clock stops meanwhile).
pub fn install(
    lua: &Lua,
    msys: &Table,
    dns: Option<std::sync::Arc<dyn Dns>>,
    waited: impl Fn(Duration) + 'static,
) -> mlua::Result<()> {
    let f = lua.create_function(
        move |lua, (name, rtype, options): (String, Option<String>, Option<Table>)| {
            let rtype_name = rtype.unwrap_or_else(|| "A".into());
            let Some(rtype) = RecordType::parse(&rtype_name) else {
                return Err(mlua::Error::runtime(format!(
                    "msys.dnsLookup: record type {rtype_name:?} is not A, AAAA, TXT, MX, PTR or NS"
                )));
            };
            let (priority, server) = match &options {
                Some(o) => {
                    let server = match o.get::<Option<String>>("server")? {
                        Some(s) => Some(server_addr(&s).ok_or_else(|| {
                            mlua::Error::runtime(format!(
                                "msys.dnsLookup: server {s:?} is not an address"
                            ))
                        })?),
                        None => None,
                    };
                    (o.get::<Option<bool>>("priority")?.unwrap_or(false), server)
                }
                None => (false, None),
            };
            let Some(dns) = &dns else {
                return Ok((
                    Value::Nil,
                    Some("no resolver is available to this policy".to_string()),
                ));
            };
            let start = Instant::now();
            let answer = dns.lookup(&name, rtype, server);
            waited(start.elapsed());
            match answer {
                Ok(records) => {
                    let t = lua.create_table()?;
                    for r in records {
                        match r.preference {
                            Some(p) if priority => {
                                t.push(lua.create_sequence_from([
                                    Value::Integer(i64::from(p)),
                                    Value::String(lua.create_string(&r.text)?),
                                ])?)?;
                            }
                            _ => t.push(r.text)?,
                        }
                    }
                    Ok((Value::Table(t), None))
                }
                Err(e) => Ok((Value::Nil, Some(e.to_string()))),
            }
        },
    )?;
    msys.set("dnsLookup", f)
}
