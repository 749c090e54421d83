//! `/metrics`: Prometheus text (format 0.0.4), gathered fresh at every scrape.
//!
//! Label sets are bounded by construction: bindings and binding groups come from the
//! configuration; domains are the first [`MAX_DOMAINS`] distinct domains the queues have
//! seen (queues are never forgotten, so the set only grows and each series stays monotonic),
//! and every later domain is counted under `domain="_other"`. No label carries a message,
//! an address or a reply text.

use std::collections::{BTreeMap, HashMap};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::commands::figures::bindings;
use crate::daemon::Daemon;

/// Distinct domains that get their own series.
pub const MAX_DOMAINS: usize = 500;

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

type Labels = Vec<(&'static str, String)>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// One metric family: name, help, kind and its series.
#[derive(Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    series: Vec<(Labels, f64)>,
}

/// A histogram: its sum, count and cumulative buckets `(upper bound, count)`.
#[derive(Debug)]
struct Histogram {
    name: &'static str,
    help: &'static str,
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

/// Every family of one scrape, gathered before encoding.
#[derive(Debug, Default)]
struct Gathered {
    families: Vec<Family>,
    histograms: Vec<Histogram>,
}

impl Gathered {
    fn add(&mut self, name: &'static str, help: &'static str, kind: Kind, labels: Labels, v: f64) {
        match self.families.iter_mut().find(|f| f.name == name) {
            Some(f) => f.series.push((labels, v)),
            None => self.families.push(Family {
                name,
                help,
                kind,
                series: vec![(labels, v)],
            }),
        }
    }
}

impl Collector for Gathered {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.families {
            match f.kind {
                Kind::Counter => {
                    let t = ConstCounter::new(0u64).metric_type();
                    let mut m = encoder.encode_descriptor(f.name, f.help, None, t)?;
                    for (labels, v) in &f.series {
                        ConstCounter::new(*v as u64).encode(m.encode_family(labels)?)?;
                    }
                }
                Kind::Gauge => {
                    let t = ConstGauge::new(0i64).metric_type();
                    let mut m = encoder.encode_descriptor(f.name, f.help, None, t)?;
                    for (labels, v) in &f.series {
                        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
                    }
                }
            }
        }
        for h in &self.histograms {
            let t = prometheus_client::metrics::MetricType::Histogram;
            let mut m = encoder.encode_descriptor(h.name, h.help, None, t)?;
            m.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                h.sum, h.count, &h.buckets, None,
            )?;
        }
        Ok(())
    }
}

/// The metrics text for one scrape.
pub fn render<D: Daemon>(d: &D) -> String {
    use Kind::{Counter, Gauge};
    let mut g = Gathered::default();
    let queues = d.queues();
    let figures = bindings(d, &queues);
    let snap = d.snapshot();
    let stats = d.stats();

    // Per binding.
    let mut groups: BTreeMap<String, (u64, u64, u64, u64, u64, u64)> = BTreeMap::new();
    for f in &figures {
        let l = || -> Labels {
            vec![
                ("binding", f.name.clone()),
                ("binding_group", f.group.clone()),
            ]
        };
        let t = f.total;
        g.add(
            "bindery_binding_received",
            "Messages received and assigned to the binding.",
            Counter,
            l(),
            t.received as f64,
        );
        g.add(
            "bindery_binding_delivered",
            "Recipients delivered (2xx after the data).",
            Counter,
            l(),
            t.delivered as f64,
        );
        g.add(
            "bindery_binding_transient_failures",
            "Recipient attempts deferred (4xx or no connection).",
            Counter,
            l(),
            t.transient as f64,
        );
        g.add(
            "bindery_binding_failed",
            "Recipients failed for good (5xx, expiry, purged).",
            Counter,
            l(),
            t.failed as f64,
        );
        g.add(
            "bindery_binding_bounced",
            "Failure reports generated for the binding's mail.",
            Counter,
            l(),
            t.bounced as f64,
        );
        g.add(
            "bindery_binding_queue_active",
            "Message parts due for an attempt.",
            Gauge,
            l(),
            f.active as f64,
        );
        g.add(
            "bindery_binding_queue_delayed",
            "Message parts waiting for a retry.",
            Gauge,
            l(),
            f.delayed as f64,
        );
        g.add(
            "bindery_binding_outbound_connections",
            "Open outbound connections.",
            Gauge,
            l(),
            f.open_connections as f64,
        );
        g.add(
            "bindery_binding_connection_target",
            "Connections slow start allows the binding's queues now, summed.",
            Gauge,
            l(),
            f.target as f64,
        );
        g.add(
            "bindery_binding_parts_waiting_for_connection",
            "Active parts waiting for a place under a connection cap across queues.",
            Gauge,
            l(),
            f.waiting_for_slot as f64,
        );
        let e = groups.entry(f.group.clone()).or_default();
        e.0 += t.received;
        e.1 += t.delivered;
        e.2 += t.failed;
        e.3 += f.active;
        e.4 += f.delayed;
        e.5 += f.open_connections;
    }
    for (group, (rx, dl, fl, act, del, conns)) in &groups {
        let l = || -> Labels { vec![("binding_group", group.clone())] };
        g.add(
            "bindery_binding_group_received",
            "Messages received, all bindings of the group.",
            Counter,
            l(),
            *rx as f64,
        );
        g.add(
            "bindery_binding_group_delivered",
            "Recipients delivered, all bindings of the group.",
            Counter,
            l(),
            *dl as f64,
        );
        g.add(
            "bindery_binding_group_failed",
            "Recipients failed, all bindings of the group.",
            Counter,
            l(),
            *fl as f64,
        );
        g.add(
            "bindery_binding_group_queue_active",
            "Parts due, all bindings of the group.",
            Gauge,
            l(),
            *act as f64,
        );
        g.add(
            "bindery_binding_group_queue_delayed",
            "Parts waiting, all bindings of the group.",
            Gauge,
            l(),
            *del as f64,
        );
        g.add(
            "bindery_binding_group_outbound_connections",
            "Open outbound connections of the group.",
            Gauge,
            l(),
            *conns as f64,
        );
    }

    // Per domain, bounded.
    let mut domains: Vec<(String, [u64; 8])> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for q in &queues {
        // The first MAX_DOMAINS domains get their own series; every later one is `_other`.
        let name = if index.contains_key(&q.domain) || index.len() < MAX_DOMAINS {
            q.domain.as_str()
        } else {
            "_other"
        };
        let i = *index.entry(name.to_string()).or_insert_with(|| {
            domains.push((name.to_string(), [0; 8]));
            domains.len() - 1
        });
        let v = &mut domains[i].1;
        v[0] += q.delivered;
        v[1] += q.transient;
        v[2] += q.failed;
        v[3] += q.active as u64;
        v[4] += q.delayed as u64;
        v[5] += u64::from(q.connections);
        v[6] += u64::from(q.target);
        v[7] += q.waiting_for_slot();
    }
    for (domain, v) in &domains {
        let l = || -> Labels { vec![("domain", domain.clone())] };
        g.add(
            "bindery_domain_delivered",
            "Recipients delivered to the domain since start.",
            Counter,
            l(),
            v[0] as f64,
        );
        g.add(
            "bindery_domain_transient_failures",
            "Recipient attempts to the domain deferred since start.",
            Counter,
            l(),
            v[1] as f64,
        );
        g.add(
            "bindery_domain_failed",
            "Recipients to the domain failed since start.",
            Counter,
            l(),
            v[2] as f64,
        );
        g.add(
            "bindery_domain_queue_active",
            "Parts to the domain due for an attempt.",
            Gauge,
            l(),
            v[3] as f64,
        );
        g.add(
            "bindery_domain_queue_delayed",
            "Parts to the domain waiting for a retry.",
            Gauge,
            l(),
            v[4] as f64,
        );
        g.add(
            "bindery_domain_outbound_connections",
            "Open connections to the domain.",
            Gauge,
            l(),
            v[5] as f64,
        );
        g.add(
            "bindery_domain_connection_target",
            "Connections slow start allows the domain's queues now, summed over bindings.",
            Gauge,
            l(),
            v[6] as f64,
        );
        g.add(
            "bindery_domain_parts_waiting_for_connection",
            "Active parts to the domain waiting for a place under a connection cap.",
            Gauge,
            l(),
            v[7] as f64,
        );
    }

    // Reply classes: outbound per recipient, inbound per refused command or message.
    let c = stats.global.read();
    let out =
        |class: &str| -> Labels { vec![("direction", "outbound".into()), ("class", class.into())] };
    let help = "SMTP replies by class: outbound per recipient, inbound per refusal or message.";
    g.add(
        "bindery_smtp_replies",
        help,
        Counter,
        out("2xx"),
        c.delivered as f64,
    );
    g.add(
        "bindery_smtp_replies",
        help,
        Counter,
        out("4xx"),
        c.transient as f64,
    );
    g.add(
        "bindery_smtp_replies",
        help,
        Counter,
        out("5xx"),
        c.failed as f64,
    );
    let inbound =
        |class: &str| -> Labels { vec![("direction", "inbound".into()), ("class", class.into())] };
    let (r4, r5) = stats.rejected_by_class();
    g.add(
        "bindery_smtp_replies",
        help,
        Counter,
        inbound("2xx"),
        c.received as f64,
    );
    g.add(
        "bindery_smtp_replies",
        help,
        Counter,
        inbound("4xx"),
        r4 as f64,
    );
    g.add(
        "bindery_smtp_replies",
        help,
        Counter,
        inbound("5xx"),
        r5 as f64,
    );

    // Policy.
    for (callout, calls, errors) in d.callouts() {
        let l = || -> Labels { vec![("callout", callout.to_string())] };
        g.add(
            "bindery_policy_calls",
            "Lua policy callouts run.",
            Counter,
            l(),
            calls as f64,
        );
        g.add(
            "bindery_policy_errors",
            "Lua policy callouts that raised an error or ran past a limit.",
            Counter,
            l(),
            errors as f64,
        );
    }

    // Spool and process.
    let spool = d.spool_health();
    g.add(
        "bindery_spool_healthy",
        "1 while spool writes succeed, 0 while they fail (the listener answers 421).",
        Gauge,
        vec![],
        if spool.healthy { 1.0 } else { 0.0 },
    );
    g.add(
        "bindery_spool_stored",
        "Messages stored in the spool since start.",
        Counter,
        vec![],
        spool.stored as f64,
    );
    g.add(
        "bindery_spool_remove_failures",
        "Spool removals that failed (those messages are delivered again after a restart).",
        Counter,
        vec![],
        spool.remove_failures as f64,
    );
    g.add(
        "bindery_inbound_sessions",
        "Open inbound SMTP sessions.",
        Gauge,
        vec![],
        d.inbound_sessions() as f64,
    );
    g.add(
        "bindery_config_generation",
        "The configuration generation in force.",
        Gauge,
        vec![],
        snap.generation as f64,
    );
    g.add(
        "bindery_uptime_seconds",
        "Seconds since the daemon started.",
        Gauge,
        vec![],
        d.now().saturating_sub(stats.started) as f64,
    );

    signing(&mut g, d);
    injections(&mut g, d);
    bounces(&mut g, d);
    adaptive(&mut g, d);

    let mut registry = Registry::default();
    registry.register_collector(Box::new(g));
    let mut text = String::new();
    if prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).is_err() {
        text.clear();
    }
    text
}

/// Logins and injections per SMTP AUTH user and API key name (never a password or a key).
fn injections<D: Daemon>(g: &mut Gathered, d: &D) {
    for (via, name, c) in d.injections().figures() {
        let l = || -> Labels { vec![("via", via.word().to_string()), ("name", name.clone())] };
        g.add(
            "bindery_injection_logins",
            "Logins let in: SMTP AUTH logins, or API requests with a valid key.",
            Kind::Counter,
            l(),
            c.logins as f64,
        );
        g.add(
            "bindery_injection_failed_logins",
            "Logins refused: wrong password, locked-out address.",
            Kind::Counter,
            l(),
            c.failed_logins as f64,
        );
        g.add(
            "bindery_injection_messages",
            "Messages spooled for this SMTP user or API key.",
            Kind::Counter,
            l(),
            c.messages as f64,
        );
        g.add(
            "bindery_injection_recipients",
            "Recipients accepted for this SMTP user or API key.",
            Kind::Counter,
            l(),
            c.recipients as f64,
        );
        g.add(
            "bindery_injection_rejected_recipients",
            "Recipients refused for this SMTP user or API key.",
            Kind::Counter,
            l(),
            c.rejected as f64,
        );
    }
}

/// DKIM signing: per binding counters and the signing time of every message considered.
fn signing<D: Daemon>(g: &mut Gathered, d: &D) {
    use crate::signing::BUCKETS;
    let f = d.signing().figures();
    for (binding, c) in &f.per_binding {
        let l = || -> Labels { vec![("binding", binding.clone())] };
        g.add(
            "bindery_dkim_signatures",
            "DKIM signatures made for the binding's mail.",
            Kind::Counter,
            l(),
            c.signed as f64,
        );
        g.add(
            "bindery_dkim_failures",
            "DKIM signatures that could not be made (key missing or broken).",
            Kind::Counter,
            l(),
            c.failed as f64,
        );
        g.add(
            "bindery_dkim_messages_processed",
            "Messages the opendkim stanzas considered, signed or not.",
            Kind::Counter,
            l(),
            c.processed as f64,
        );
    }
    if f.global.processed > 0 {
        // Per-bucket counts: the encoder makes them cumulative.
        let buckets = BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(f.histogram.iter().copied())
            .collect();
        g.histograms.push(Histogram {
            name: "bindery_dkim_signing_seconds",
            help: "Time spent signing one message (every signature it got).",
            sum: f.global.time,
            count: f.global.processed,
            buckets,
        });
    }
}

/// Adaptive delivery (issue 22): the actions taken per binding (suspensions, lowered limits,
/// warm-up caps reached), and, with the module loaded, what the book holds now per binding:
/// pairs suspended (in force), suspensions overridden from the console, pairs with lowered
/// limits. Every binding the book knows gets its three gauges, zeros included, so an alert
/// sees a suspension end.
fn adaptive<D: Daemon>(g: &mut Gathered, d: &D) {
    for (binding, action, n) in d.stats().adaptive.figures() {
        g.add(
            "bindery_adaptive_actions",
            "Adaptive actions taken, by binding and action (suspend, blackhole, throttle_down, reduce_connections, reduce_deliveries, greylisted, bounce, warmup_cap).",
            Kind::Counter,
            vec![("binding", binding), ("action", action.to_string())],
            n as f64,
        );
    }
    let Some(live) = d.adaptive() else {
        return;
    };
    let now = d.now();
    let mut per: BTreeMap<String, [u64; 3]> = BTreeMap::new();
    for (key, state) in live.book().states() {
        let e = per.entry(key.binding.clone()).or_default();
        match state.suspension_at(now) {
            Some(s) if s.enabled => e[0] += 1,
            Some(_) => e[1] += 1,
            None => {}
        }
        e[2] += u64::from(state.is_adjusted());
    }
    for (binding, [held, overridden, adjusted]) in per {
        for (name, help, v) in [
            (
                "bindery_adaptive_suspended",
                "Binding x domain pairs adaptive delivery suspends or blackholes now, by binding.",
                held,
            ),
            (
                "bindery_adaptive_overridden",
                "Suspensions turned off from the console (adaptive override) that have not ended, by binding.",
                overridden,
            ),
            (
                "bindery_adaptive_adjusted",
                "Binding x domain pairs whose limits adaptive rules lowered, by binding.",
                adjusted,
            ),
        ] {
            g.add(
                name,
                help,
                Kind::Gauge,
                vec![("binding", binding.clone())],
                v as f64,
            );
        }
    }
}

/// Failures by binding, domain and bounce class (issue 22), transient attempts and
/// permanent failures, and feedback reports by binding, domain and type. Domains past the
/// first [`MAX_DOMAINS`] seen are summed as `_other`, as everywhere here.
fn bounces<D: Daemon>(g: &mut Gathered, d: &D) {
    let label = |rank: u32, domain: String| {
        if (rank as usize) < MAX_DOMAINS {
            domain
        } else {
            "_other".to_string()
        }
    };
    let stats = &d.stats().bounces;
    let mut sums: BTreeMap<(String, String, u16), (u64, u64)> = BTreeMap::new();
    for f in stats.figures() {
        let e = sums
            .entry((f.binding, label(f.domain_rank, f.domain), f.class))
            .or_default();
        e.0 += f.transient;
        e.1 += f.permanent;
    }
    for ((binding, domain, class), (t, p)) in sums {
        for (kind, n) in [("transient", t), ("permanent", p)] {
            if n == 0 {
                continue;
            }
            g.add(
                "bindery_bounces",
                "Recipient failures by binding, domain and bounce class (Momentum's code): transient attempts and permanent failures.",
                Kind::Counter,
                vec![
                    ("binding", binding.clone()),
                    ("domain", domain.clone()),
                    ("class", class.to_string()),
                    ("kind", kind.to_string()),
                ],
                n as f64,
            );
        }
    }
    let mut reports: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for f in stats.feedback_figures() {
        *reports
            .entry((f.binding, label(f.domain_rank, f.domain), f.kind))
            .or_default() += f.reports;
    }
    for ((binding, domain, kind), n) in reports {
        g.add(
            "bindery_feedback_reports",
            "Feedback-loop reports (complaints) received, by the binding and recipient domain of the mail complained about, and feedback type.",
            Kind::Counter,
            vec![("binding", binding), ("domain", domain), ("type", kind)],
            n as f64,
        );
    }
}
