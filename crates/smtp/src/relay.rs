//! Relay control: which recipients a client may send to.

use std::sync::Arc;

use crate::address::{Domain, Mailbox};

/// `relay_domains`: exact names and `*.example.com` patterns (every subdomain, not the apex).
/// Built once per configuration; cloning it for each connection only bumps reference counts.
#[derive(Clone, Debug, Default)]
pub struct DomainSet {
    exact: Arc<[String]>,
    suffixes: Arc<[String]>,
}

impl DomainSet {
    /// Entries as the configuration holds them (lower-case; `*.` for subdomain globs).
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(entries: I) -> DomainSet {
        let (mut exact, mut suffixes) = (Vec::new(), Vec::new());
        for e in entries {
            let e = e.as_ref().to_ascii_lowercase();
            match e.strip_prefix("*.") {
                Some(rest) => suffixes.push(format!(".{rest}")),
                None => exact.push(e),
            }
        }
        DomainSet {
            exact: exact.into(),
            suffixes: suffixes.into(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.suffixes.is_empty()
    }

    pub fn contains(&self, domain: &str) -> bool {
        let d = domain.to_ascii_lowercase();
        self.exact.contains(&d) || self.suffixes.iter().any(|s| d.ends_with(s.as_str()))
    }
}

/// Why a recipient may not be relayed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// The domain is not one we relay for.
    Domain,
    /// The local part carries routing (`@`, `%`, `!`), which a later hop could act on.
    Routing,
    /// An address literal: no relay domain can name one.
    Literal,
}

/// May a client outside `relay_hosts` send to `rcpt`? Clients inside `relay_hosts` are not
/// asked. Sender-specified routing is refused even for relay domains, as Postfix does with
/// `allow_untrusted_routing = no`: `"u@evil"@relay.example` and `u%evil@relay.example` would
/// otherwise make us a relay for whatever the next hop does with them.
pub fn check(rcpt: &Mailbox, domains: &DomainSet, hostname: &str) -> Result<(), Denied> {
    let local = rcpt.local_unquoted();
    if local.contains(['@', '%', '!']) {
        return Err(Denied::Routing);
    }
    match &rcpt.domain {
        None => {
            // `<Postmaster>` is ours: it goes to postmaster at our host name.
            if domains.contains(hostname) {
                Ok(())
            } else {
                Err(Denied::Domain)
            }
        }
        Some(Domain::Literal(_)) => Err(Denied::Literal),
        Some(Domain::Name(d)) if domains.contains(d) => Ok(()),
        Some(Domain::Name(_)) => Err(Denied::Domain),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::parse_mailbox;

    #[test]
    fn globs_match_subdomains_only() {
        let s = DomainSet::new(["example.com", "*.example.net"]);
        assert!(s.contains("EXAMPLE.com"));
        assert!(!s.contains("sub.example.com"));
        assert!(s.contains("a.b.example.net"));
        assert!(!s.contains("example.net"));
        assert!(!s.contains("badexample.net"));
    }

    #[test]
    fn routing_is_refused() {
        let s = DomainSet::new(["relay.example"]);
        let c = |a: &str| check(&parse_mailbox(a).unwrap(), &s, "mx.example");
        assert_eq!(c("u@relay.example"), Ok(()));
        assert_eq!(c("u%evil.example@relay.example"), Err(Denied::Routing));
        assert_eq!(c("evil!u@relay.example"), Err(Denied::Routing));
        assert_eq!(c("\"u@evil.example\"@relay.example"), Err(Denied::Routing));
        assert_eq!(c("u@[127.0.0.1]"), Err(Denied::Literal));
        assert_eq!(c("u@evil.example"), Err(Denied::Domain));
        assert_eq!(c("Postmaster"), Err(Denied::Domain));
    }
}
