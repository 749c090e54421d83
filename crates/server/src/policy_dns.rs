//! The resolver behind the policy's `msys.dnsLookup` ([`bindery_policy::dns::Dns`]).
//!
//! A script's callout runs on the connection's own task, synchronously. In the daemon (a
//! multi-threaded runtime) a lookup waits inside `block_in_place`: the runtime moves the
//! other connections off this thread, so only the caller waits, as Momentum suspends only
//! the asking session. Elsewhere (`bindery policy test`, `config check`, a script's
//! `init` before the daemon's resolver exists) the lookup runs on a thread of its own with
//! a resolver of its own, made from the same `Resolv_Conf`.
//!
//! The daemon's resolver for scripts is its own hickory resolver over the servers delivery
//! uses, uncached: a script that asks wants the answer of now (an RBL), and delivery's cache
//! holds MX and address answers only.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use bindery_delivery::resolv_conf::ResolvConf;
use bindery_delivery::resolver::{DnsError, HickoryResolver, Rtype};
use bindery_policy::dns::{Dns, DnsFailure, DnsRecord, RecordType};

#[derive(Default)]
pub struct PolicyDns {
    /// `Resolv_Conf`'s servers; none: the system's.
    conf: Option<ResolvConf>,
    /// The daemon's resolver, once it runs.
    shared: OnceLock<Arc<HickoryResolver>>,
}

impl PolicyDns {
    pub fn new(conf: Option<ResolvConf>) -> PolicyDns {
        PolicyDns {
            conf,
            shared: OnceLock::new(),
        }
    }

    /// `Resolv_Conf` as read when the daemon started (none: the system's).
    pub fn conf(&self) -> Option<&ResolvConf> {
        self.conf.as_ref()
    }

    /// Makes the daemon's resolver (before a chroot: it may read /etc/resolv.conf).
    pub fn start(&self) -> Result<(), DnsError> {
        let r = self.resolver(None)?;
        let _ = self.shared.set(Arc::new(r));
        Ok(())
    }

    fn resolver(&self, server: Option<SocketAddr>) -> Result<HickoryResolver, DnsError> {
        match (server, &self.conf) {
            (Some(s), conf) => HickoryResolver::with_conf(&ResolvConf {
                servers: vec![s],
                timeout: conf.as_ref().and_then(|c| c.timeout),
                attempts: conf.as_ref().and_then(|c| c.attempts),
            }),
            (None, Some(conf)) => HickoryResolver::with_conf(conf),
            (None, None) => HickoryResolver::system(),
        }
    }
}

fn rtype(t: RecordType) -> Rtype {
    match t {
        RecordType::A => Rtype::A,
        RecordType::Aaaa => Rtype::Aaaa,
        RecordType::Txt => Rtype::Txt,
        RecordType::Mx => Rtype::Mx,
        RecordType::Ptr => Rtype::Ptr,
        RecordType::Ns => Rtype::Ns,
    }
}

fn answer(
    r: Result<Vec<bindery_delivery::resolver::Record>, DnsError>,
) -> Result<Vec<DnsRecord>, DnsFailure> {
    match r {
        Ok(v) => Ok(v
            .into_iter()
            .map(|r| DnsRecord {
                preference: r.preference,
                text: r.text,
            })
            .collect()),
        Err(DnsError::NxDomain(_)) => Err(DnsFailure::NxDomain),
        Err(DnsError::NoRecords(_)) => Ok(Vec::new()),
        Err(DnsError::Failed { why, .. }) => Err(DnsFailure::Failed(why)),
    }
}

impl Dns for PolicyDns {
    fn lookup(
        &self,
        name: &str,
        t: RecordType,
        server: Option<SocketAddr>,
    ) -> Result<Vec<DnsRecord>, DnsFailure> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        let here = Handle::try_current()
            .ok()
            .filter(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
        if let (Some(h), Some(r), None) = (&here, self.shared.get(), server) {
            return answer(tokio::task::block_in_place(|| {
                h.block_on(r.records(name, rtype(t)))
            }));
        }
        // A resolver and a runtime of its own, on a thread of its own.
        let alone = || {
            std::thread::scope(|s| {
                s.spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| DnsFailure::Failed(e.to_string()))?;
                    rt.block_on(async {
                        let r = self
                            .resolver(server)
                            .map_err(|e| DnsFailure::Failed(e.to_string()))?;
                        answer(r.records(name, rtype(t)).await)
                    })
                })
                .join()
                .unwrap_or_else(|_| Err(DnsFailure::Failed("the lookup thread failed".into())))
            })
        };
        match here {
            Some(_) => tokio::task::block_in_place(alone),
            None => alone(),
        }
    }
}
