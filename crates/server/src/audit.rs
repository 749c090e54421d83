//! Momentum's `inbound_audit` module: connections, receptions and rejections counted per
//! client address in time windows, one series per configured monitor
//! (`monitors = ( "300,6" )`: six windows of 300 seconds), for Lua's `msys.audit`.
//!
//! The series are the policy's audit series (`bindery_policy::audit_series`), named
//! `connections:300,6`, `receptions:300,6` and `rejections:300,6`: they are shared by every
//! generation and outlive a reload. A reception is a message accepted; a rejection, a
//! command or message the policy, a blackhole or the spool refused (what the `policy
//! rejections` statistic counts). Every `maintenance_interval`, keys no window reaches any
//! more are dropped.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bindery_config::Snapshot;
use bindery_config::schema::{ScopeKind, option_id};
use bindery_config::value::Value;
use bindery_policy::audit_series::{AuditSeries, Kind};

use crate::ServerError;
use crate::settings::located;

/// What is counted.
#[derive(Clone, Copy, Debug)]
pub enum Event {
    Connection,
    Reception,
    Rejection,
}

impl Event {
    pub fn series(self, monitor: &str) -> String {
        let what = match self {
            Event::Connection => "connections",
            Event::Reception => "receptions",
            Event::Rejection => "rejections",
        };
        format!("{what}:{monitor}")
    }
}

/// The module as configured.
pub struct InboundAudit {
    monitors: Vec<String>,
    series: Arc<AuditSeries>,
    pub maintenance: Duration,
}

impl InboundAudit {
    /// The module of `snap` (none without its stanza), its series defined in `series`.
    pub fn plan(
        snap: &Snapshot,
        series: &Arc<AuditSeries>,
    ) -> Result<Option<InboundAudit>, ServerError> {
        let tree = &snap.tree;
        let Some(scope) = tree
            .children_of(bindery_config::tree::ROOT, ScopeKind::InboundAudit)
            .next()
        else {
            return Ok(None);
        };
        let s = tree.scope(scope);
        let mut monitors = Vec::new();
        if let Some(st) = s.setting(option_id("monitors")) {
            let Value::List(items) = &st.value else {
                return Ok(None);
            };
            for item in items {
                let parsed = item.split_once(',').and_then(|(i, w)| {
                    Some((i.trim().parse::<u64>().ok()?, w.trim().parse::<u64>().ok()?))
                });
                let Some((interval, windows)) = parsed.filter(|(i, w)| *i > 0 && *w > 0) else {
                    return Err(located(
                        snap,
                        Some(st.span),
                        format!(
                            "inbound_audit monitor {item:?} is not \"window-seconds,number-of-windows\""
                        ),
                        Some("for example monitors = ( \"300,6\" \"1800,4\" )"),
                    ));
                };
                let name = format!("{interval},{windows}");
                for e in [Event::Connection, Event::Reception, Event::Rejection] {
                    series
                        .define(&e.series(&name), Kind::Cidr, interval, windows)
                        .map_err(ServerError::Config)?;
                }
                monitors.push(name);
            }
        }
        let maintenance = match s
            .setting(option_id("maintenance_interval"))
            .map(|s| &s.value)
        {
            Some(Value::Seconds(n)) if *n > 0 => Duration::from_secs(*n),
            _ => Duration::from_secs(300),
        };
        Ok(Some(InboundAudit {
            monitors,
            series: Arc::clone(series),
            maintenance,
        }))
    }

    /// Counts `event` for `ip` in every monitor.
    pub fn record(&self, event: Event, ip: IpAddr) {
        let now = crate::unix_now();
        let key = ip.to_string();
        for m in &self.monitors {
            let _ = self.series.add(&event.series(m), &key, 1, now);
        }
    }

    /// Drops what no window reaches any more.
    pub fn sweep(&self) {
        self.series.sweep(crate::unix_now());
    }
}
