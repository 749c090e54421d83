//! DNS as delivery needs it: MX records and host addresses, behind a small seam.
//!
//! [`HickoryResolver`] asks real name servers (those of `resolv_conf`, or the system's);
//! [`MemResolver`] answers from a table for tests; [`CachingResolver`] keeps any resolver's
//! answers for their TTL, so a busy domain costs one lookup per TTL, not one per connection.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bindery_queue::Clock;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One MX record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mx {
    pub preference: u16,
    /// The exchange, lower case, without the trailing dot.
    pub host: String,
    /// Addresses of `host` that came in the MX answer's additional section. A resolver that
    /// sends them (most do for in-zone exchanges) saves the address lookups, which were two
    /// of every new domain's three questions; `route` asks anyway when the families it
    /// wants are not all there.
    pub glue: Vec<IpAddr>,
}

impl Mx {
    /// An MX record without glue.
    pub fn new(preference: u16, host: &str) -> Mx {
        Mx {
            preference,
            host: host.to_string(),
            glue: Vec::new(),
        }
    }
}

/// Which address families a host lookup asks for: Momentum's `use_ipv6` (default false)
/// ignores AAAA records, so by default only A is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Families {
    V4,
    V4AndV6,
}

impl Families {
    pub fn from_use_ipv6(use_ipv6: bool) -> Families {
        if use_ipv6 {
            Families::V4AndV6
        } else {
            Families::V4
        }
    }

    pub fn admits(self, ip: &IpAddr) -> bool {
        ip.is_ipv4() || self == Families::V4AndV6
    }

    /// Whether `addrs` answer for every family asked: glue with only A records says
    /// nothing about AAAA, so with IPv6 wanted it is not enough.
    pub fn covered_by(self, addrs: &[IpAddr]) -> bool {
        addrs.iter().any(IpAddr::is_ipv4)
            && (self == Families::V4 || addrs.iter().any(IpAddr::is_ipv6))
    }
}

/// Why a lookup gave no usable answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The name does not exist (NXDOMAIN): a permanent failure for mail to it.
    #[error("{0}: no such domain")]
    NxDomain(String),
    /// The name exists but has no record of the asked type.
    #[error("{0}: no records of that type")]
    NoRecords(String),
    /// Anything else (timeout, SERVFAIL, refused): try again later.
    #[error("DNS lookup of {name} failed: {why}")]
    Failed { name: String, why: String },
}

/// An answer and how long it may be kept, in seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer<T> {
    pub value: T,
    pub ttl: u32,
}

/// The resolver seam.
pub trait Resolver: Send + Sync + 'static {
    /// MX records of `domain`, in no particular order.
    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Answer<Vec<Mx>>, DnsError>>;
    /// The addresses of `host` in `families`.
    fn ips<'a>(
        &'a self,
        host: &'a str,
        families: Families,
    ) -> BoxFuture<'a, Result<Answer<Vec<IpAddr>>, DnsError>>;
}

/// hickory-resolver over the name servers of a resolv.conf (or the system's).
pub struct HickoryResolver {
    inner: hickory_resolver::TokioResolver,
    /// Turns among the lookups in flight: each holds a UDP socket (a descriptor) until its
    /// answer comes, so a burst of thousands of new domains ran the process out of
    /// descriptors and failed lookups that would have answered.
    in_flight: tokio::sync::Semaphore,
}

/// Lookups in flight at once. 64 kept a loopback dnsmasq busy (2,000 lookups took no longer
/// than with 2,000 in flight) and costs 64 descriptors at most.
pub const LOOKUPS_IN_FLIGHT: usize = 64;

impl HickoryResolver {
    /// A resolver that asks exactly the servers of a resolv.conf (UDP, then TCP for truncated
    /// answers), with its `timeout` and `attempts`.
    pub fn with_conf(conf: &crate::resolv_conf::ResolvConf) -> Result<HickoryResolver, DnsError> {
        let servers = &conf.servers;
        use hickory_resolver::config::{
            ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
        };
        let ns = servers
            .iter()
            .map(|s| {
                let mut udp = ConnectionConfig::udp();
                udp.port = s.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = s.port();
                NameServerConfig::new(s.ip(), true, vec![udp, tcp])
            })
            .collect();
        let cfg = ResolverConfig::from_name_servers(ns);
        let mut opts = ResolverOpts::default();
        // Names we are given are complete; never append a search domain.
        opts.ndots = 0;
        if let Some(t) = conf.timeout {
            opts.timeout = t;
        }
        if let Some(a) = conf.attempts {
            opts.attempts = a;
        }
        Self::build(cfg, opts)
    }

    /// The system's resolver configuration (/etc/resolv.conf).
    pub fn system() -> Result<HickoryResolver, DnsError> {
        let (cfg, opts) =
            hickory_resolver::system_conf::read_system_conf().map_err(|e| DnsError::Failed {
                name: "/etc/resolv.conf".into(),
                why: e.to_string(),
            })?;
        Self::build(cfg, opts)
    }

    fn build(
        cfg: hickory_resolver::config::ResolverConfig,
        mut opts: hickory_resolver::config::ResolverOpts,
    ) -> Result<HickoryResolver, DnsError> {
        use hickory_resolver::net::runtime::TokioRuntimeProvider;
        // No cache inside hickory: `CachingResolver` is the one cache (bounded by
        // `min_dns_ttl` / `max_dns_ttl`), and hickory's (a moka cache) cost about 13 µs of the
        // 60 µs of CPU a lookup took against a loopback NSD, for answers never asked twice.
        opts.cache_size = 0;
        let inner = hickory_resolver::TokioResolver::builder_with_config(
            cfg,
            TokioRuntimeProvider::default(),
        )
        .with_options(opts)
        .build()
        .map_err(|e| DnsError::Failed {
            name: "resolver".into(),
            why: e.to_string(),
        })?;
        Ok(HickoryResolver {
            inner,
            in_flight: tokio::sync::Semaphore::new(LOOKUPS_IN_FLIGHT),
        })
    }
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

fn classify(name: &str, e: hickory_resolver::net::NetError) -> DnsError {
    if e.is_nx_domain() {
        DnsError::NxDomain(name.to_string())
    } else if e.is_no_records_found() {
        DnsError::NoRecords(name.to_string())
    } else {
        DnsError::Failed {
            name: name.to_string(),
            why: e.to_string(),
        }
    }
}

fn host_name(n: &hickory_resolver::proto::rr::Name) -> String {
    n.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

impl Resolver for HickoryResolver {
    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Answer<Vec<Mx>>, DnsError>> {
        Box::pin(async move {
            use hickory_resolver::proto::rr::RData;
            let _turn = self.in_flight.acquire().await.ok();
            let lookup = self
                .inner
                .mx_lookup(fqdn(domain).as_str())
                .await
                .map_err(|e| classify(domain, e))?;
            let mut ttl = u32::MAX;
            let mut value = Vec::new();
            for r in lookup.answers() {
                if let RData::MX(mx) = &r.data {
                    ttl = ttl.min(r.ttl);
                    value.push(Mx::new(mx.preference, &host_name(&mx.exchange)));
                }
            }
            if value.is_empty() {
                return Err(DnsError::NoRecords(domain.to_string()));
            }
            // Glue: kept no longer than its own records, so the answer's TTL covers both.
            for r in lookup.additionals() {
                let ip = match &r.data {
                    RData::A(a) => IpAddr::V4(a.0),
                    RData::AAAA(a) => IpAddr::V6(a.0),
                    _ => continue,
                };
                let name = host_name(&r.name);
                for mx in value.iter_mut().filter(|m| m.host == name) {
                    mx.glue.push(ip);
                    ttl = ttl.min(r.ttl);
                }
            }
            Ok(Answer { value, ttl })
        })
    }

    fn ips<'a>(
        &'a self,
        host: &'a str,
        families: Families,
    ) -> BoxFuture<'a, Result<Answer<Vec<IpAddr>>, DnsError>> {
        Box::pin(async move {
            use hickory_resolver::proto::rr::{RData, RecordType};
            let _turn = self.in_flight.acquire().await.ok();
            let name = fqdn(host);
            // One question (A) unless IPv6 is wanted; `lookup_ip` asks A and AAAA at once.
            let lookup = match families {
                Families::V4 => self.inner.lookup(name.as_str(), RecordType::A).await,
                Families::V4AndV6 => self
                    .inner
                    .lookup_ip(name.as_str())
                    .await
                    .map(|l| l.as_lookup().clone()),
            }
            .map_err(|e| classify(host, e))?;
            let mut ttl = u32::MAX;
            let mut value = Vec::new();
            for r in lookup.answers() {
                let ip = match &r.data {
                    RData::A(a) => IpAddr::V4(a.0),
                    RData::AAAA(a) => IpAddr::V6(a.0),
                    _ => continue,
                };
                ttl = ttl.min(r.ttl);
                value.push(ip);
            }
            if value.is_empty() {
                return Err(DnsError::NoRecords(host.to_string()));
            }
            Ok(Answer { value, ttl })
        })
    }
}

/// The record types a policy script may ask for (`msys.dnsLookup`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rtype {
    A,
    Aaaa,
    Txt,
    Mx,
    Ptr,
    Ns,
}

impl Rtype {
    /// Momentum's names, in any case.
    pub fn parse(s: &str) -> Option<Rtype> {
        Some(match s.to_ascii_uppercase().as_str() {
            "A" => Rtype::A,
            "AAAA" => Rtype::Aaaa,
            "TXT" => Rtype::Txt,
            "MX" => Rtype::Mx,
            "PTR" => Rtype::Ptr,
            "NS" => Rtype::Ns,
            _ => return None,
        })
    }
}

/// One record's data as text; MX records keep their preference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub preference: Option<u16>,
    pub text: String,
}

/// The name a PTR question asks: an address becomes its `in-addr.arpa` / `ip6.arpa` name,
/// anything else is taken as the name itself.
pub fn ptr_name(name: &str) -> String {
    match name.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        Ok(IpAddr::V6(a)) => {
            let mut s = String::new();
            for b in a.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s + "ip6.arpa"
        }
        Err(_) => name.to_string(),
    }
}

impl HickoryResolver {
    /// Any record type, as a script asks: TXT strings joined, names without their trailing
    /// dot, MX records best first.
    pub async fn records(&self, name: &str, rtype: Rtype) -> Result<Vec<Record>, DnsError> {
        use hickory_resolver::proto::rr::{RData, RecordType};
        let _turn = self.in_flight.acquire().await.ok();
        let (asked, t) = match rtype {
            Rtype::A => (fqdn(name), RecordType::A),
            Rtype::Aaaa => (fqdn(name), RecordType::AAAA),
            Rtype::Txt => (fqdn(name), RecordType::TXT),
            Rtype::Mx => (fqdn(name), RecordType::MX),
            Rtype::Ns => (fqdn(name), RecordType::NS),
            Rtype::Ptr => (fqdn(&ptr_name(name)), RecordType::PTR),
        };
        let lookup = self
            .inner
            .lookup(asked.as_str(), t)
            .await
            .map_err(|e| classify(name, e))?;
        let mut out = Vec::new();
        for r in lookup.answers() {
            let (preference, text) = match &r.data {
                RData::A(a) if t == RecordType::A => (None, a.0.to_string()),
                RData::AAAA(a) if t == RecordType::AAAA => (None, a.0.to_string()),
                RData::TXT(txt) if t == RecordType::TXT => (
                    None,
                    txt.txt_data
                        .iter()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .collect::<String>(),
                ),
                RData::MX(mx) if t == RecordType::MX => {
                    (Some(mx.preference), host_name(&mx.exchange))
                }
                RData::PTR(p) if t == RecordType::PTR => (None, host_name(&p.0)),
                RData::NS(n) if t == RecordType::NS => (None, host_name(&n.0)),
                _ => continue,
            };
            out.push(Record { preference, text });
        }
        // Best first; equal preferences keep the answer's order.
        out.sort_by_key(|r| r.preference.unwrap_or(0));
        Ok(out)
    }
}

/// Answers from a table: for tests and for fixed routing.
#[derive(Default)]
pub struct MemResolver {
    mx: Mutex<HashMap<String, Result<Vec<Mx>, DnsError>>>,
    ips: Mutex<HashMap<String, Result<Vec<IpAddr>, DnsError>>>,
    /// How many questions were asked, to test caching.
    pub asked: std::sync::atomic::AtomicUsize,
}

impl MemResolver {
    pub fn add_mx(&self, domain: &str, preference: u16, host: &str) {
        let mut m = self.mx.lock().unwrap_or_else(|p| p.into_inner());
        let e = m
            .entry(domain.to_string())
            .or_insert_with(|| Ok(Vec::new()));
        if let Ok(list) = e {
            list.push(Mx::new(preference, host));
        }
    }

    /// Makes the MX answer of `domain` carry `ip` for `host` in its additional section.
    pub fn add_glue(&self, domain: &str, host: &str, ip: IpAddr) {
        let mut m = self.mx.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Ok(list)) = m.get_mut(domain) {
            for mx in list.iter_mut().filter(|m| m.host == host) {
                mx.glue.push(ip);
            }
        }
    }

    pub fn fail_mx(&self, domain: &str, err: DnsError) {
        let mut m = self.mx.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(domain.to_string(), Err(err));
    }

    pub fn add_ip(&self, host: &str, ip: IpAddr) {
        let mut m = self.ips.lock().unwrap_or_else(|p| p.into_inner());
        let e = m.entry(host.to_string()).or_insert_with(|| Ok(Vec::new()));
        if let Ok(list) = e {
            list.push(ip);
        }
    }

    /// Makes every address lookup of `host` fail with `err` (a SERVFAIL or timeout is
    /// `DnsError::Failed`).
    pub fn fail_ip(&self, host: &str, err: DnsError) {
        let mut m = self.ips.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(host.to_string(), Err(err));
    }
}

impl Resolver for MemResolver {
    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Answer<Vec<Mx>>, DnsError>> {
        self.asked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let r = match self
            .mx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(domain)
        {
            Some(Ok(v)) => Ok(Answer {
                value: v.clone(),
                ttl: 300,
            }),
            Some(Err(e)) => Err(e.clone()),
            None if self
                .ips
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(domain) =>
            {
                Err(DnsError::NoRecords(domain.to_string()))
            }
            None => Err(DnsError::NxDomain(domain.to_string())),
        };
        Box::pin(std::future::ready(r))
    }

    fn ips<'a>(
        &'a self,
        host: &'a str,
        families: Families,
    ) -> BoxFuture<'a, Result<Answer<Vec<IpAddr>>, DnsError>> {
        self.asked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let r = match self.ips.lock().unwrap_or_else(|p| p.into_inner()).get(host) {
            Some(Ok(v)) => {
                let value: Vec<IpAddr> =
                    v.iter().copied().filter(|ip| families.admits(ip)).collect();
                if value.is_empty() {
                    Err(DnsError::NoRecords(host.to_string()))
                } else {
                    Ok(Answer { value, ttl: 300 })
                }
            }
            Some(Err(e)) => Err(e.clone()),
            None => Err(DnsError::NxDomain(host.to_string())),
        };
        Box::pin(std::future::ready(r))
    }
}

type Cached<T> = HashMap<String, (u64, Result<Answer<T>, DnsError>)>;

/// Keeps answers (and definite negative answers) for their TTL, within `min_dns_ttl` and
/// `max_dns_ttl`. Temporary failures are not kept: the next connection asks again.
pub struct CachingResolver {
    inner: Arc<dyn Resolver>,
    clock: Arc<dyn Clock>,
    mx: Mutex<Cached<Vec<Mx>>>,
    /// A answers (`use_ipv6 = false`) and A + AAAA answers, apart: one is not the other.
    ips_v4: Mutex<Cached<Vec<IpAddr>>>,
    ips_all: Mutex<Cached<Vec<IpAddr>>>,
    /// How long a negative answer is kept, in seconds.
    negative_ttl: u32,
    /// Momentum's `min_dns_ttl` and `max_dns_ttl`: a positive answer's TTL is raised to the
    /// first and lowered to the second. Set from the configuration on every load.
    min_ttl: AtomicU32,
    max_ttl: AtomicU32,
}

impl CachingResolver {
    pub fn new(inner: Arc<dyn Resolver>, clock: Arc<dyn Clock>) -> CachingResolver {
        CachingResolver {
            inner,
            clock,
            mx: Mutex::new(HashMap::new()),
            ips_v4: Mutex::new(HashMap::new()),
            ips_all: Mutex::new(HashMap::new()),
            negative_ttl: 60,
            min_ttl: AtomicU32::new(0),
            max_ttl: AtomicU32::new(u32::MAX),
        }
    }

    /// `min_dns_ttl` and `max_dns_ttl` (seconds). A bound holds for answers cached from now
    /// on; what is cached already keeps its time.
    pub fn set_ttl_bounds(&self, min: u32, max: u32) {
        self.min_ttl.store(min, Ordering::Relaxed);
        self.max_ttl.store(max, Ordering::Relaxed);
    }

    fn ips_map(&self, families: Families) -> &Mutex<Cached<Vec<IpAddr>>> {
        match families {
            Families::V4 => &self.ips_v4,
            Families::V4AndV6 => &self.ips_all,
        }
    }

    /// What the cache holds for a domain, without asking anyone: each MX with the seconds
    /// its record has left and the cached addresses of its host (`domain NAME`).
    pub fn cached_routes(&self, domain: &str) -> Vec<(Mx, u32, Vec<IpAddr>)> {
        let Some(Ok(mx)) = self.get(&self.mx, domain) else {
            return Vec::new();
        };
        let mut hosts = mx.value;
        hosts.sort_by(|a, b| (a.preference, &a.host).cmp(&(b.preference, &b.host)));
        hosts
            .into_iter()
            .map(|m| {
                let cached = [&self.ips_all, &self.ips_v4].into_iter().find_map(|map| {
                    match self.get(map, &m.host) {
                        Some(Ok(a)) => Some(a.value),
                        _ => None,
                    }
                });
                let ips = cached.unwrap_or_else(|| m.glue.clone());
                (m, mx.ttl, ips)
            })
            .collect()
    }

    fn get<T: Clone>(
        &self,
        map: &Mutex<Cached<T>>,
        name: &str,
    ) -> Option<Result<Answer<T>, DnsError>> {
        let now = self.clock.now_ms();
        let m = map.lock().unwrap_or_else(|p| p.into_inner());
        let (until, r) = m.get(name)?;
        if now >= *until {
            return None;
        }
        // The TTL left, so a consumer caching further never outlives the record.
        Some(match r {
            Ok(a) => Ok(Answer {
                value: a.value.clone(),
                ttl: ((until - now) / 1000) as u32,
            }),
            Err(e) => Err(e.clone()),
        })
    }

    fn put<T>(&self, map: &Mutex<Cached<T>>, name: &str, r: &Result<Answer<T>, DnsError>)
    where
        T: Clone,
    {
        let ttl = match r {
            Ok(a) => a
                .ttl
                .max(self.min_ttl.load(Ordering::Relaxed))
                .min(self.max_ttl.load(Ordering::Relaxed)),
            Err(DnsError::NxDomain(_) | DnsError::NoRecords(_)) => self.negative_ttl,
            Err(DnsError::Failed { .. }) => return,
        };
        if ttl == 0 {
            return;
        }
        let until = self.clock.now_ms() + u64::from(ttl) * 1000;
        let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(name.to_string(), (until, r.clone()));
    }
}

impl Resolver for CachingResolver {
    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Answer<Vec<Mx>>, DnsError>> {
        Box::pin(async move {
            if let Some(r) = self.get(&self.mx, domain) {
                return r;
            }
            let r = self.inner.mx(domain).await;
            self.put(&self.mx, domain, &r);
            r
        })
    }

    fn ips<'a>(
        &'a self,
        host: &'a str,
        families: Families,
    ) -> BoxFuture<'a, Result<Answer<Vec<IpAddr>>, DnsError>> {
        Box::pin(async move {
            let map = self.ips_map(families);
            if let Some(r) = self.get(map, host) {
                return r;
            }
            let r = self.inner.ips(host, families).await;
            self.put(map, host, &r);
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bindery_queue::ManualClock;
    use std::sync::atomic::Ordering;

    #[tokio::test]
    async fn answers_are_kept_for_their_ttl() {
        let mem = Arc::new(MemResolver::default());
        mem.add_mx("a.test", 10, "mx.a.test");
        let clock = Arc::new(ManualClock::new(1_000_000));
        let c = CachingResolver::new(mem.clone(), clock.clone());
        let first = c.mx("a.test").await.unwrap();
        assert_eq!(first.value[0].host, "mx.a.test");
        c.mx("a.test").await.unwrap();
        assert_eq!(mem.asked.load(Ordering::Relaxed), 1);
        clock.advance_ms(299_000);
        assert_eq!(c.mx("a.test").await.unwrap().ttl, 1);
        clock.advance_ms(1_000);
        c.mx("a.test").await.unwrap();
        assert_eq!(mem.asked.load(Ordering::Relaxed), 2);
        // Negative answers are kept too, temporary failures are not.
        assert!(matches!(
            c.mx("none.test").await,
            Err(DnsError::NxDomain(_))
        ));
        c.mx("none.test").await.unwrap_err();
        assert_eq!(mem.asked.load(Ordering::Relaxed), 3);
        mem.fail_mx(
            "flaky.test",
            DnsError::Failed {
                name: "flaky.test".into(),
                why: "timeout".into(),
            },
        );
        c.mx("flaky.test").await.unwrap_err();
        c.mx("flaky.test").await.unwrap_err();
        assert_eq!(mem.asked.load(Ordering::Relaxed), 5);
    }

    /// `max_dns_ttl` shortens what a record's TTL allows; `min_dns_ttl` lengthens it. A and
    /// A + AAAA answers are kept apart, so turning `use_ipv6` on asks again.
    #[tokio::test]
    async fn ttl_bounds_and_families() {
        let mem = Arc::new(MemResolver::default());
        mem.add_ip("mx.a.test", "127.0.0.1".parse().unwrap());
        mem.add_ip("mx.a.test", "::1".parse().unwrap());
        let clock = Arc::new(ManualClock::new(1_000_000));
        let c = CachingResolver::new(mem.clone(), clock.clone());
        c.set_ttl_bounds(0, 10);
        let v4 = c.ips("mx.a.test", Families::V4).await.unwrap();
        assert_eq!(v4.value, ["127.0.0.1".parse::<IpAddr>().unwrap()]);
        let both = c.ips("mx.a.test", Families::V4AndV6).await.unwrap();
        assert_eq!(both.value.len(), 2);
        assert_eq!(mem.asked.load(Ordering::Relaxed), 2);
        clock.advance_ms(10_000);
        c.ips("mx.a.test", Families::V4).await.unwrap();
        assert_eq!(
            mem.asked.load(Ordering::Relaxed),
            3,
            "kept past max_dns_ttl"
        );
        c.set_ttl_bounds(3600, u32::MAX);
        clock.advance_ms(10_000);
        c.ips("mx.a.test", Families::V4).await.unwrap();
        clock.advance_ms(3_000_000);
        c.ips("mx.a.test", Families::V4).await.unwrap();
        assert_eq!(
            mem.asked.load(Ordering::Relaxed),
            4,
            "not kept for min_dns_ttl"
        );
    }
}
