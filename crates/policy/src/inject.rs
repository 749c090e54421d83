//! What scripts reach of the daemon beyond the message in hand: new messages
//! (`msg:inject`, of a `msg:copy()` or a `msys.core.ec_message_new()` built with
//! `msg:build`) and the count of live inbound sessions (`msys.audit.inbound_session_count`,
//! `ac:inbound_session_count`).
//!
//! Both are seams with a daemon implementation (bindery-server) and an in-memory one here.
//! An injected message is handed over, never received inside the callout that made it: the
//! daemon receives it afterwards, on its own task, as a message with `recv_method`
//! `P_INTERNAL` (its callouts run, so a script can tell its own messages apart, as
//! Momentum's sample `secondary_delivery.lua` does). `depth` counts how many injected
//! messages led to this one; past [`MAX_DEPTH`] an injection is refused, so a script that
//! injects from every message cannot loop forever.

use std::net::IpAddr;
use std::sync::Mutex;

use ipnet::IpNet;

use crate::Context;

/// Injected messages may lead to injected messages this many times.
pub const MAX_DEPTH: u8 = 4;

/// How a message came in (`msg.recv_method`, compared with `msys.core.P_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecvMethod {
    Smtp,
    #[default]
    Esmtp,
    /// Made by a script (`msg:inject`) or by the daemon itself.
    Internal,
    /// The HTTP injection API.
    Http,
}

impl RecvMethod {
    /// The number scripts see. Momentum's sample policy says ESMTP is 2; the others are
    /// bindery's, and scripts compare with the `msys.core.P_*` names.
    pub fn number(self) -> i64 {
        match self {
            RecvMethod::Smtp => 1,
            RecvMethod::Esmtp => 2,
            RecvMethod::Internal => 3,
            RecvMethod::Http => 4,
        }
    }

    pub const CONSTANTS: [(&'static str, RecvMethod); 4] = [
        ("P_SMTP", RecvMethod::Smtp),
        ("P_ESMTP", RecvMethod::Esmtp),
        ("P_INTERNAL", RecvMethod::Internal),
        ("P_HTTP", RecvMethod::Http),
    ];

    /// `msys.core.protocol_string`'s answer.
    pub fn name(self) -> &'static str {
        match self {
            RecvMethod::Smtp => "SMTP",
            RecvMethod::Esmtp => "ESMTP",
            RecvMethod::Internal => "INTERNAL",
            RecvMethod::Http => "HTTP",
        }
    }
}

/// A message a script injects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injected {
    pub sender: String,
    pub recipients: Vec<String>,
    /// Header and body, CRLF line ends.
    pub body: Vec<u8>,
    /// The message context it carries (a copy's context is its original's).
    pub context: Context,
    /// How many injected messages led to this one (1: injected from a received message).
    pub depth: u8,
}

/// Where injected messages go.
pub trait Injector: Send + Sync {
    /// Takes the message for reception, or says why it cannot.
    fn inject(&self, m: Injected) -> Result<(), String>;
}

/// Keeps injected messages, for tests and `bindery policy test`.
#[derive(Default)]
pub struct MemInjector {
    pub taken: Mutex<Vec<Injected>>,
}

impl Injector for MemInjector {
    fn inject(&self, m: Injected) -> Result<(), String> {
        self.taken.lock().unwrap_or_else(|p| p.into_inner()).push(m);
        Ok(())
    }
}

/// Which sessions a count asks about: bindery counts its SMTP sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Smtp,
}

impl Service {
    /// Momentum's service names (case-sensitive, as its page says); those bindery does not
    /// count are `Err` with their name.
    pub fn parse(s: &str) -> Result<Service, String> {
        match s {
            "SMTP" => Ok(Service::Smtp),
            "Control" => Err(
                "service \"Control\" is not counted by bindery (console sessions are not audited)"
                    .into(),
            ),
            "ECStream" | "ECmmove2" | "ECCluster" | "inbound_cidr" => Err(format!(
                "service {s:?} is not implemented by bindery (no ECStream or cluster listeners)"
            )),
            other => Err(format!(
                "service {other:?} is not SMTP, Control, ECStream, ECmmove2, ECCluster or inbound_cidr"
            )),
        }
    }
}

/// Live inbound sessions.
pub trait LiveSessions: Send + Sync {
    /// Sessions of `service` open now from an address inside `net`; with `listener`, only
    /// those on that listener.
    fn count(&self, net: IpNet, service: Service, listener: Option<&str>) -> u64;
}

/// A fixed list of sessions (listener, address): for tests, and for `bindery policy test`,
/// whose one simulated session is the only one.
#[derive(Default)]
pub struct MemSessions(pub Vec<(Service, String, IpAddr)>);

impl LiveSessions for MemSessions {
    fn count(&self, net: IpNet, service: Service, listener: Option<&str>) -> u64 {
        self.0
            .iter()
            .filter(|(s, l, ip)| {
                *s == service && net.contains(ip) && listener.is_none_or(|w| w == l)
            })
            .count() as u64
    }
}

/// The network a count names: `/len` is the client's own address with that mask, `addr`
/// one address, `addr/len` a network.
pub fn count_net(spec: &str, client: Option<IpAddr>) -> Result<IpNet, String> {
    let spec = spec.trim();
    if let Some(len) = spec.strip_prefix('/') {
        let ip = client.ok_or("a count relative to the client needs a connected client")?;
        let len: u8 = len
            .parse()
            .map_err(|_| format!("{spec:?}: the mask is not a number"))?;
        return IpNet::new(ip, len)
            .map(|n| n.trunc())
            .map_err(|_| format!("{spec:?}: the mask is too long for {ip}"));
    }
    let spec = spec.trim_start_matches('[').replace(']', "");
    if let Ok(ip) = spec.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    if let Some((host, len)) = spec.split_once('/')
        && host == "localhost"
    {
        let len: u8 = len.parse().map_err(|_| format!("{spec:?}: bad mask"))?;
        return IpNet::new(IpAddr::from([127, 0, 0, 1]), len)
            .map(|n| n.trunc())
            .map_err(|_| format!("{spec:?}: bad mask"));
    }
    spec.parse::<IpNet>()
        .map(|n| n.trunc())
        .map_err(|_| format!("{spec:?} is not /len, an address or address/len"))
}

/// A count as `msys.audit.inbound_session_count` and `ac:inbound_session_count` ask it.
pub fn session_count(
    live: Option<&dyn LiveSessions>,
    cidr: &str,
    service: &str,
    client: Option<IpAddr>,
    listener: Option<&str>,
) -> Result<u64, String> {
    let net = count_net(cidr, client)?;
    let service = Service::parse(service)?;
    let live = live.ok_or("no daemon to count sessions in")?;
    Ok(live.count(net, service, listener))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_specs() {
        let c = Some("192.0.2.9".parse().unwrap());
        assert_eq!(count_net("/24", c).unwrap().to_string(), "192.0.2.0/24");
        assert_eq!(count_net("/32", c).unwrap().to_string(), "192.0.2.9/32");
        assert_eq!(count_net("10.1.2.3", c).unwrap().to_string(), "10.1.2.3/32");
        assert_eq!(
            count_net("10.1.2.3/8", c).unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            count_net("localhost/32", c).unwrap().to_string(),
            "127.0.0.1/32"
        );
        assert_eq!(
            count_net("[2001:db8::1]", c).unwrap().to_string(),
            "2001:db8::1/128"
        );
        assert!(count_net("/40", c).is_err());
        assert!(count_net("/24", None).is_err());
        assert!(count_net("nonsense", c).is_err());
    }

    #[test]
    fn mem_sessions_count_by_net_service_and_listener() {
        let s = MemSessions(vec![
            (Service::Smtp, "a".into(), "192.0.2.9".parse().unwrap()),
            (Service::Smtp, "b".into(), "192.0.2.10".parse().unwrap()),
        ]);
        let net: IpNet = "192.0.2.0/24".parse().unwrap();
        assert_eq!(s.count(net, Service::Smtp, None), 2);
        assert_eq!(s.count(net, Service::Smtp, Some("a")), 1);
        assert!(Service::parse("Control").is_err());
        assert!(Service::parse("smtp").is_err(), "case-sensitive");
    }
}
