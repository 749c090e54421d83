//! Where mail for a domain goes: `gateway`, else `routes`, else MX records, else the domain's
//! own address (the implicit MX of RFC 5321 §5.1). The result is an ordered list of
//! addresses to try; a connection failure moves on to the next.

use std::net::{IpAddr, SocketAddr};

use bindery_smtp::client::Response;
use ipnet::IpNet;

use crate::options::DeliveryOptions;
use crate::resolver::{DnsError, Families, Resolver};

/// One address to try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The host name it came from (the MX exchange, gateway or route host), for the log.
    pub host: String,
    pub addr: SocketAddr,
    pub preference: u32,
}

/// Why there is nowhere to send: permanent (bounce) or transient (retry later). Carries the
/// reply logged and put in a bounce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteError {
    Permanent(Response),
    Transient(Response),
}

impl RouteError {
    pub fn response(&self) -> &Response {
        match self {
            RouteError::Permanent(r) | RouteError::Transient(r) => r,
        }
    }
}

/// Splits `host`, `host:port`, `[ipv6]` and `[ipv6]:port`.
fn host_port(s: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let h = h.strip_prefix("IPv6:").unwrap_or(h);
        let port = match after {
            "" => default_port,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        return Some((h.to_string(), port));
    }
    if s.parse::<IpAddr>().is_ok() {
        return Some((s.to_string(), default_port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), p.parse().ok()?)),
        None => Some((s.to_string(), default_port)),
    }
}

/// A `routes` entry: `__mx__`, a host, or `smtp://host[:port][?pref=P&port=O...]`.
#[derive(Debug, PartialEq, Eq)]
enum RouteEntry {
    Mx,
    Host {
        host: String,
        port: u16,
        pref: Option<u32>,
    },
}

fn parse_route(s: &str, default_port: u16) -> Option<RouteEntry> {
    if s.eq_ignore_ascii_case("__mx__") {
        return Some(RouteEntry::Mx);
    }
    let rest = s.strip_prefix("smtp://").unwrap_or(s);
    let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (host, mut port) = host_port(hostport.trim_end_matches('/'), default_port)?;
    let mut pref = None;
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        match kv.split_once('=') {
            Some(("pref", v)) => pref = Some(v.parse().ok()?),
            Some(("port", v)) => port = v.parse().ok()?,
            _ => {} // ttl=, type=: accepted, not used
        }
    }
    Some(RouteEntry::Host { host, port, pref })
}

/// What a destination's route failures add up to: it fails permanently only when every route
/// failed permanently. One temporary failure (a timed-out lookup, a SERVFAIL) among them
/// defers, since the route that could not be asked may be the one that works; the first
/// temporary failure is kept as the reason, else the last permanent one.
#[derive(Default)]
struct Failures(Option<RouteError>);

impl Failures {
    fn add(&mut self, e: RouteError) {
        if !matches!(self.0, Some(RouteError::Transient(_))) {
            self.0 = Some(e);
        }
    }

    fn transient(&self) -> Option<&RouteError> {
        self.0
            .as_ref()
            .filter(|e| matches!(e, RouteError::Transient(_)))
    }
}

fn transient(text: String) -> RouteError {
    RouteError::Transient(Response::local(451, text))
}

fn dns_error(e: DnsError, what: &str) -> RouteError {
    match e {
        DnsError::NxDomain(n) => RouteError::Permanent(Response::local(
            550,
            format!("5.1.2 {what} {n} does not exist (NXDOMAIN)"),
        )),
        DnsError::NoRecords(n) => RouteError::Permanent(Response::local(
            550,
            format!("5.1.2 {what} {n} has no address"),
        )),
        e @ DnsError::Failed { .. } => transient(format!("4.4.3 {e}")),
    }
}

/// Adds the addresses of `host` as targets (a literal IP needs no lookup; glue from the MX
/// answer needs none when it holds every family asked for).
async fn add_host(
    resolver: &dyn Resolver,
    host: &str,
    port: u16,
    preference: u32,
    glue: &[IpAddr],
    families: Families,
    out: &mut Vec<Target>,
) -> Result<(), RouteError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        out.push(Target {
            host: host.to_string(),
            addr: SocketAddr::new(ip, port),
            preference,
        });
        return Ok(());
    }
    let looked_up;
    let ips: &[IpAddr] = if families.covered_by(glue) {
        glue
    } else {
        looked_up = resolver
            .ips(host, families)
            .await
            .map_err(|e| dns_error(e, "host"))?
            .value;
        &looked_up
    };
    for &ip in ips.iter().filter(|ip| families.admits(ip)) {
        out.push(Target {
            host: host.to_string(),
            addr: SocketAddr::new(ip, port),
            preference,
        });
    }
    Ok(())
}

/// Adds the domain's MX hosts, or its own address when it has no MX. A host whose addresses
/// cannot be had is recorded in `failed` and skipped; the call fails only when the domain
/// itself gives no MX answer, or no host gave an address.
async fn add_mx(
    resolver: &dyn Resolver,
    domain: &str,
    port: u16,
    base: u32,
    families: Families,
    out: &mut Vec<Target>,
    failed: &mut Failures,
) -> Result<(), RouteError> {
    match resolver.mx(domain).await {
        Ok(answer) => {
            let mut mxs = answer.value;
            // RFC 7505 null MX: the domain accepts no mail.
            if mxs.len() == 1 && (mxs[0].host.is_empty() || mxs[0].host == ".") {
                return Err(RouteError::Permanent(Response::local(
                    556,
                    format!("5.1.10 {domain} does not accept mail (null MX)"),
                )));
            }
            mxs.sort_by_key(|m| m.preference);
            let before = out.len();
            let mut mine = Failures::default();
            for mx in mxs {
                let pref = base + u32::from(mx.preference);
                let added = add_host(resolver, &mx.host, port, pref, &mx.glue, families, out);
                if let Err(e) = added.await {
                    mine.add(e);
                }
            }
            match mine.0 {
                Some(e) if out.len() == before => Err(e),
                Some(e) => {
                    failed.add(e);
                    Ok(())
                }
                None => Ok(()),
            }
        }
        Err(DnsError::NoRecords(_)) => {
            add_host(resolver, domain, port, base, &[], families, out).await
        }
        Err(e) => Err(dns_error(e, "domain")),
    }
}

/// Every address to try for `domain`, best first, without prohibited ones. Equal preferences
/// are rotated by `spread` so connections spread evenly over them. With `mx_as_a` (Momentum's
/// `mx_failures_fallback_to_a` reached), the domain's MX lookups are replaced by its A
/// lookup, as if it had no MX.
pub async fn route(
    resolver: &dyn Resolver,
    domain: &str,
    opts: &DeliveryOptions,
    prohibited: &[IpNet],
    spread: usize,
    mx_as_a: bool,
) -> Result<Vec<Target>, RouteError> {
    let mut out = Vec::new();
    let mut failed = Failures::default();
    let families = opts.families;
    if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        let ip = literal.strip_prefix("IPv6:").unwrap_or(literal);
        add_host(resolver, ip, opts.port, 0, &[], families, &mut out).await?;
    } else if let Some(gw) = opts
        .gateway
        .as_ref()
        // `#name` routes by that domain stanza, whose queue this part is in (engine's
        // enqueue put it there): its routes or MX below, not a host called `#name`.
        .filter(|g| !g.starts_with('#'))
    {
        let (host, port) = host_port(gw, opts.port)
            .ok_or_else(|| transient(format!("4.4.0 bad gateway {gw:?}")))?;
        add_host(resolver, &host, port, 0, &[], families, &mut out).await?;
    } else if let Some(routes) = &opts.routes {
        for (i, r) in routes.iter().enumerate() {
            // Without `pref`, list order is the preference.
            let step = (i as u32) * 100_000;
            let added = match parse_route(r, opts.port) {
                Some(RouteEntry::Mx) if mx_as_a => {
                    add_host(resolver, domain, opts.port, step, &[], families, &mut out).await
                }
                Some(RouteEntry::Mx) => {
                    let mx = add_mx(
                        resolver,
                        domain,
                        opts.port,
                        step,
                        families,
                        &mut out,
                        &mut failed,
                    );
                    mx.await
                }
                Some(RouteEntry::Host { host, port, pref }) => {
                    let pref = pref.unwrap_or(step);
                    add_host(resolver, &host, port, pref, &[], families, &mut out).await
                }
                None => Err(transient(format!("4.4.0 bad route {r:?}"))),
            };
            if let Err(e) = added {
                failed.add(e);
            }
        }
        if out.is_empty() {
            return Err(failed
                .0
                .unwrap_or_else(|| transient("4.4.0 empty routes".into())));
        }
    } else if domain.starts_with('#') {
        return Err(transient(format!(
            "4.4.0 {domain} is a gateway's domain stanza without routes: set routes = ( \"smtp://host:port\" ) in domain \"{domain}\""
        )));
    } else if mx_as_a {
        add_host(resolver, domain, opts.port, 0, &[], families, &mut out).await?;
    } else {
        add_mx(
            resolver,
            domain,
            opts.port,
            0,
            families,
            &mut out,
            &mut failed,
        )
        .await?;
    }
    let before = out.len();
    out.retain(|t| !prohibited.iter().any(|n| n.contains(&t.addr.ip())));
    if out.is_empty() {
        // A host we could not look up may not be prohibited: defer rather than bounce.
        if let Some(e) = failed.transient() {
            return Err(e.clone());
        }
        let text = if before > 0 {
            format!("5.4.4 every host for {domain} is in prohibited_hosts")
        } else {
            format!("5.4.4 no host for {domain}")
        };
        return Err(RouteError::Permanent(Response::local(554, text)));
    }
    // `prefer_ipv6_mxs`: within a preference, IPv6 addresses first (and rotated among
    // themselves), IPv4 after them.
    let rank = |t: &Target| (t.preference, opts.prefer_ipv6_mxs && t.addr.is_ipv4());
    out.sort_by_key(rank);
    // Rotate each run of equal rank.
    let mut start = 0;
    while start < out.len() {
        let end = out[start..]
            .iter()
            .position(|t| rank(t) != rank(&out[start]))
            .map_or(out.len(), |n| start + n);
        let len = end - start;
        if len > 1 {
            out[start..end].rotate_left(spread % len);
        }
        start = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolver::MemResolver;

    fn opts(extra: &str) -> DeliveryOptions {
        let snap = bindery_config::snapshot_from_str("t.conf", extra).unwrap();
        let key = snap.domain_key("a.test");
        let b = snap.binding_id("default").unwrap();
        DeliveryOptions::resolve(&snap, b, &key)
    }

    fn zone() -> MemResolver {
        let z = MemResolver::default();
        z.add_mx("a.test", 20, "mx2.a.test");
        z.add_mx("a.test", 10, "mx1.a.test");
        z.add_ip("mx1.a.test", "127.0.0.21".parse().unwrap());
        z.add_ip("mx1.a.test", "127.0.0.22".parse().unwrap());
        z.add_ip("mx2.a.test", "127.0.0.23".parse().unwrap());
        z.add_ip("nomx.test", "127.0.0.24".parse().unwrap());
        z
    }

    fn addrs(t: &[Target]) -> Vec<String> {
        t.iter().map(|t| t.addr.to_string()).collect()
    }

    #[tokio::test]
    async fn mx_order_rotation_and_implicit_mx() {
        let z = zone();
        let o = opts("");
        let t = route(&z, "a.test", &o, &[], 0, false).await.unwrap();
        assert_eq!(
            addrs(&t),
            ["127.0.0.21:25", "127.0.0.22:25", "127.0.0.23:25"]
        );
        let t = route(&z, "a.test", &o, &[], 1, false).await.unwrap();
        assert_eq!(
            addrs(&t),
            ["127.0.0.22:25", "127.0.0.21:25", "127.0.0.23:25"]
        );
        let t = route(&z, "nomx.test", &o, &[], 0, false).await.unwrap();
        assert_eq!(addrs(&t), ["127.0.0.24:25"]);
        let e = route(&z, "nowhere.test", &o, &[], 0, false)
            .await
            .unwrap_err();
        assert!(matches!(e, RouteError::Permanent(_)), "{e:?}");
        let prohibited: Vec<IpNet> = vec![
            "127.0.0.20/31".parse().unwrap(),
            "127.0.0.22/32".parse().unwrap(),
        ];
        let t = route(&z, "a.test", &o, &prohibited, 0, false)
            .await
            .unwrap();
        assert_eq!(addrs(&t), ["127.0.0.23:25"]);
        let all: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        let e = route(&z, "a.test", &o, &all, 0, false).await.unwrap_err();
        assert_eq!(e.response().code, 554);
    }

    /// Issue 16, finding 1: a temporary failure of one MX host's lookup must defer, whatever
    /// the order of the hosts and whatever the others answered.
    #[tokio::test]
    async fn a_temporary_failure_among_mx_hosts_defers_in_either_order() {
        let servfail = |n: &str| DnsError::Failed {
            name: n.into(),
            why: "SERVFAIL".into(),
        };
        for (temp, gone) in [(10, 20), (20, 10)] {
            let z = MemResolver::default();
            z.add_mx("split.test", temp, "mx1.split.test");
            z.add_mx("split.test", gone, "mx2.split.test");
            z.fail_ip("mx1.split.test", servfail("mx1.split.test"));
            // mx2.split.test is not in the table: NXDOMAIN.
            let e = route(&z, "split.test", &opts(""), &[], 0, false)
                .await
                .unwrap_err();
            assert!(
                matches!(&e, RouteError::Transient(r) if r.code == 451),
                "MX {temp} timing out, MX {gone} NXDOMAIN: {e:?}"
            );
        }
        // Every host permanently gone: the domain bounces.
        let z = MemResolver::default();
        z.add_mx("gone.test", 10, "mx1.gone.test");
        z.add_mx("gone.test", 20, "mx2.gone.test");
        let e = route(&z, "gone.test", &opts(""), &[], 0, false)
            .await
            .unwrap_err();
        assert!(matches!(e, RouteError::Permanent(_)), "{e:?}");
        // A temporary failure and a working host: the working one is used.
        let z = MemResolver::default();
        z.add_mx("half.test", 10, "mx1.half.test");
        z.add_mx("half.test", 20, "mx2.half.test");
        z.fail_ip("mx1.half.test", servfail("mx1.half.test"));
        z.add_ip("mx2.half.test", "127.0.0.25".parse().unwrap());
        let t = route(&z, "half.test", &opts(""), &[], 0, false)
            .await
            .unwrap();
        assert_eq!(addrs(&t), ["127.0.0.25:25"]);
        // ...unless the working one is prohibited: then the unknown one may still work.
        let p: Vec<IpNet> = vec!["127.0.0.25/32".parse().unwrap()];
        let e = route(&z, "half.test", &opts(""), &p, 0, false)
            .await
            .unwrap_err();
        assert!(matches!(e, RouteError::Transient(_)), "{e:?}");
        // Routes: a permanent route failure and a temporary one defer too.
        let z = MemResolver::default();
        z.fail_ip("tmp.route.test", servfail("tmp.route.test"));
        for routes in [
            r#"routes = ("smtp://gone.route.test", "smtp://tmp.route.test")"#,
            r#"routes = ("smtp://tmp.route.test", "smtp://gone.route.test")"#,
        ] {
            let e = route(&z, "a.test", &opts(routes), &[], 0, false)
                .await
                .unwrap_err();
            assert!(matches!(e, RouteError::Transient(_)), "{routes}: {e:?}");
        }
    }

    #[tokio::test]
    async fn gateway_routes_and_port() {
        let z = zone();
        let o = opts("remote_smtp_port = 2525\ngateway = \"127.0.0.9\"");
        let t = route(&z, "a.test", &o, &[], 0, false).await.unwrap();
        assert_eq!(addrs(&t), ["127.0.0.9:2525"]);
        let o = opts("routes = (\"smtp://127.0.0.30:26\", \"__mx__\", \"[::1]:27\")");
        let t = route(&z, "a.test", &o, &[], 0, false).await.unwrap();
        assert_eq!(
            addrs(&t),
            [
                "127.0.0.30:26",
                "127.0.0.21:25",
                "127.0.0.22:25",
                "127.0.0.23:25",
                "[::1]:27"
            ]
        );
        let o = opts(
            "routes = (\"smtp://127.0.0.31?pref=5&port=28\", \"smtp://127.0.0.32:29?pref=1\")",
        );
        let t = route(&z, "a.test", &o, &[], 0, false).await.unwrap();
        assert_eq!(addrs(&t), ["127.0.0.32:29", "127.0.0.31:28"]);
        let t = route(&z, "[127.0.0.40]", &opts(""), &[], 0, false)
            .await
            .unwrap();
        assert_eq!(addrs(&t), ["127.0.0.40:25"]);
    }
}
