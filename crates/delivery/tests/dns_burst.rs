//! A burst of new domains must not turn into DNS failures. 2,000 MX lookups at once (a
//! campaign's first seconds, or a restart with a spool of new domains) against a real
//! dnsmasq, in a process with 256 descriptors: every lookup answers. Unbounded, each query
//! held a UDP socket of its own until its answer came, and the burst ran the process out of
//! descriptors (hickory's "no connections available", then timeouts): each such failure would
//! have deferred a message for `retry_interval`, and the same descriptors are the ones
//! outbound connections and accepted sessions need.
//!
//! Skipped (with a line saying so) where dnsmasq is not installed; `.ci/run` installs it.

use std::sync::Arc;

use bindery_delivery::resolver::{Families, HickoryResolver, Resolver};

mod support;
use support::dnsmasq::Dnsmasq;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_lookups_at_once_all_answer_within_256_descriptors() {
    let mut text = String::from("host-record=mx.burst.test,127.0.0.20\n");
    for i in 0..2000 {
        text.push_str(&format!("mx-host=d{i}.test,mx.burst.test,10\n"));
    }
    let Some(dns) = Dnsmasq::start(&text) else {
        return;
    };

    // 256 descriptors for the whole test process, as a daemon near its limit would have.
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write one rlimit we own.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur = 256.min(r.rlim_max);
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
    }

    let conf = dns.resolv_conf();
    let resolver = Arc::new(HickoryResolver::with_conf(&conf).expect("resolver"));
    let lookups: Vec<_> = (0..2000)
        .map(|i| {
            let r = Arc::clone(&resolver);
            tokio::spawn(async move {
                let domain = format!("d{i}.test");
                let mx = r.mx(&domain).await.map_err(|e| e.to_string())?;
                let host = mx.value[0].host.clone();
                r.ips(&host, Families::V4)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<(), String>(())
            })
        })
        .collect();
    let mut failed = Vec::new();
    for l in lookups {
        if let Err(e) = l.await.expect("lookup task") {
            failed.push(e);
        }
    }
    drop(dns);
    assert!(
        failed.is_empty(),
        "{} of 2,000 lookups failed, first: {}",
        failed.len(),
        failed[0]
    );
}
