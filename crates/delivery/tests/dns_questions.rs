//! How many questions a new domain costs, asked of a real dnsmasq and counted in its query
//! log. Momentum's `use_ipv6` defaults to false (AAAA records are ignored), so by default
//! no AAAA question is asked; addresses the MX answer carries in its additional section
//! (dnsmasq, like most servers, sends them for exchanges it knows) save the A question; and
//! `min_dns_ttl` keeps answers whose TTL is shorter. Before this, every new domain cost
//! three questions (MX, A, AAAA), and the AAAA one was the slowest dnsmasq answered.

use std::sync::Arc;

use bindery_delivery::options::DeliveryOptions;
use bindery_delivery::resolver::{CachingResolver, HickoryResolver, Resolver};
use bindery_delivery::route::route;
use bindery_queue::SystemClock;

mod support;
use support::dnsmasq::Dnsmasq;

const ZONE: &str = "\
host-record=mx4.q.test,127.0.0.31
host-record=mx46.q.test,127.0.0.32,::1
mx-host=four.test,mx4.q.test,10
mx-host=dual.test,mx46.q.test,10
mx-host=away.test,mx.elsewhere.test,10
host-record=mx.elsewhere.test,127.0.0.33
";

fn options(conf: &str, domain: &str) -> DeliveryOptions {
    let snap = bindery_config::snapshot_from_str("t.conf", conf).expect("config");
    let key = snap.domain_key(domain);
    let b = snap.binding_id("default").expect("default binding");
    DeliveryOptions::resolve(&snap, b, &key)
}

struct Case {
    resolver: Arc<CachingResolver>,
    dns: Dnsmasq,
    conf: &'static str,
}

impl Case {
    fn new(conf: &'static str) -> Option<Case> {
        let dns = Dnsmasq::start(ZONE)?;
        let inner = HickoryResolver::with_conf(&dns.resolv_conf()).expect("resolver");
        let resolver = Arc::new(CachingResolver::new(
            Arc::new(inner) as Arc<dyn Resolver>,
            Arc::new(SystemClock),
        ));
        let snap = bindery_config::snapshot_from_str("t.conf", conf).expect("config");
        DeliveryOptions::apply_dns_ttl(&snap, &resolver);
        Some(Case {
            resolver,
            dns,
            conf,
        })
    }

    /// The addresses of `domain`'s route and the questions asked for it.
    async fn route(&self, domain: &str) -> (Vec<String>, Vec<String>) {
        let before = self.dns.questions().len();
        let opts = options(self.conf, domain);
        let targets = route(self.resolver.as_ref(), domain, &opts, &[], 0, false)
            .await
            .expect("a route");
        // dnsmasq writes its log line as it answers; give the file a moment.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let asked = self.dns.questions()[before..].to_vec();
        let addrs = targets.iter().map(|t| t.addr.ip().to_string()).collect();
        (addrs, asked)
    }
}

#[tokio::test]
async fn by_default_an_in_zone_exchange_costs_one_question() {
    let Some(c) = Case::new("") else { return };
    let (addrs, asked) = c.route("four.test").await;
    assert_eq!(addrs, ["127.0.0.31"]);
    assert_eq!(asked, ["MX four.test"]);
    // An exchange with an AAAA record too: the IPv6 address is not used (use_ipv6 = false).
    let (addrs, asked) = c.route("dual.test").await;
    assert_eq!(addrs, ["127.0.0.32"]);
    assert_eq!(asked, ["MX dual.test"]);
}

#[tokio::test]
async fn an_exchange_without_glue_costs_an_a_question_and_no_aaaa() {
    // A host route has no MX answer to bring glue: its address is asked, A only.
    let Some(c) = Case::new("Routes = ( \"mx.elsewhere.test\" )") else {
        return;
    };
    let (addrs, asked) = c.route("away.test").await;
    assert_eq!(addrs, ["127.0.0.33"]);
    assert_eq!(asked, ["A mx.elsewhere.test"]);
}

#[tokio::test]
async fn with_use_ipv6_both_families_are_used_and_a_v4_only_glue_is_not_enough() {
    let Some(c) = Case::new("Use_IPv6 = true\nPrefer_IPv6_MXs = true") else {
        return;
    };
    // Glue with A and AAAA answers both families: one question, IPv6 first.
    let (addrs, asked) = c.route("dual.test").await;
    assert_eq!(addrs, ["::1", "127.0.0.32"]);
    assert_eq!(asked, ["MX dual.test"]);
    // Glue with only an A record says nothing of AAAA: the address lookup asks both.
    let (addrs, mut asked) = c.route("four.test").await;
    assert_eq!(addrs, ["127.0.0.31"]);
    asked.sort();
    assert_eq!(asked, ["A mx4.q.test", "AAAA mx4.q.test", "MX four.test"]);
}

#[tokio::test]
async fn min_dns_ttl_keeps_answers_that_come_with_ttl_zero() {
    // dnsmasq answers its own records with TTL 0: without min_dns_ttl nothing is kept.
    let Some(c) = Case::new("") else { return };
    c.route("four.test").await;
    let (_, asked) = c.route("four.test").await;
    assert_eq!(asked, ["MX four.test"]);
    let Some(c) = Case::new("Min_DNS_TTL = 60") else {
        return;
    };
    c.route("four.test").await;
    let (addrs, asked) = c.route("four.test").await;
    assert_eq!(addrs, ["127.0.0.31"]);
    assert!(asked.is_empty(), "asked again: {asked:?}");
}
