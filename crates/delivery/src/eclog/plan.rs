//! The `ec_logger` and `bounce_logger` stanzas read into what to open.
//!
//! A log whose path is not set is not written. Momentum's cluster files point logs at
//! `cluster://` (jlog) streams, and a paniclog may go to `syslog://`; bindery writes plain
//! files only, so such a path is refused with the line it is on rather than written to a
//! file of that name.

use std::path::PathBuf;

use bindery_config::schema::{ScopeKind, option_id};
use bindery_config::snapshot::{Snapshot, default_value};
use bindery_config::span::Span;
use bindery_config::tree::{ROOT, ScopeId};
use bindery_config::value::Value;

/// One file to write, and the mode it is created with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogPath {
    pub path: PathBuf,
    pub mode: u32,
}

#[derive(Clone, Debug)]
pub struct EcLoggerPlan {
    pub name: String,
    pub mainlog: Option<LogPath>,
    pub rejectlog: Option<LogPath>,
    pub paniclog: Option<LogPath>,
    pub acctlog: Option<LogPath>,
    /// Seconds between heartbeats in the mainlog and rejectlog; 0: none.
    pub heartbeat: u64,
    pub log_receptions: bool,
    pub log_deliveries: bool,
    pub log_transient_failures: bool,
    pub log_permanent_failures: bool,
    pub log_rejections: bool,
    pub log_errors: bool,
}

#[derive(Clone, Debug)]
pub struct BounceLoggerPlan {
    pub name: String,
    pub bouncelog: LogPath,
    pub heartbeat: u64,
    pub log_inband_bounces: bool,
    pub log_transient_failures: bool,
    /// Bounces that came back as mail (stage 21).
    pub log_outofband_bounces: bool,
}

#[derive(Clone, Debug, Default)]
pub struct LogPlans {
    pub ec: Vec<EcLoggerPlan>,
    pub bounce: Vec<BounceLoggerPlan>,
}

impl LogPlans {
    /// Some `ec_logger` writes a rejectlog: the SMTP sessions keep their refusals for it.
    pub fn rejections(&self) -> bool {
        self.ec
            .iter()
            .any(|l| l.rejectlog.is_some() && l.log_rejections)
    }
}

/// A logger stanza bindery cannot honour, with where it was said.
#[derive(Debug)]
pub struct PlanError {
    pub span: Option<Span>,
    pub message: String,
    pub help: &'static str,
}

struct Stanza<'a> {
    snap: &'a Snapshot,
    id: ScopeId,
}

impl Stanza<'_> {
    fn value(&self, name: &'static str) -> Option<Value> {
        let o = option_id(name);
        self.snap
            .tree
            .scope(self.id)
            .setting(o)
            .map(|s| s.value.clone())
            .or_else(|| default_value(o))
    }

    fn flag(&self, name: &'static str) -> bool {
        !matches!(self.value(name), Some(Value::Bool(false)))
    }

    fn secs(&self, name: &'static str) -> u64 {
        match self.value(name) {
            Some(Value::Seconds(s)) => s,
            _ => 0,
        }
    }

    fn path(&self, name: &'static str, mode: &'static str) -> Result<Option<LogPath>, PlanError> {
        let o = option_id(name);
        let Some(setting) = self.snap.tree.scope(self.id).setting(o) else {
            return Ok(None);
        };
        let (Value::Path(p) | Value::Str(p)) = &setting.value else {
            return Ok(None);
        };
        if let Some((scheme, _)) = p.split_once("://") {
            return Err(PlanError {
                span: Some(setting.span),
                message: format!(
                    "`{name} = \"{p}\"`: bindery does not write `{scheme}://` log streams"
                ),
                help: "Momentum's cluster:// (jlog) and syslog:// outputs are not built; write a file path, and ship the file with your log collector",
            });
        }
        let mode = match self.value(mode) {
            Some(Value::Mode(m)) => m,
            _ => 0o644,
        };
        Ok(Some(LogPath {
            path: PathBuf::from(p),
            mode,
        }))
    }

    fn name(&self) -> String {
        self.snap
            .tree
            .scope(self.id)
            .name
            .clone()
            .unwrap_or_default()
    }
}

fn stanzas(snap: &Snapshot, kind: ScopeKind) -> impl Iterator<Item = Stanza<'_>> {
    snap.tree
        .children_of(ROOT, kind)
        .map(move |id| Stanza { snap, id })
}

/// Every logger the configuration has.
pub fn plans(snap: &Snapshot) -> Result<LogPlans, PlanError> {
    let mut out = LogPlans::default();
    for s in stanzas(snap, ScopeKind::EcLogger) {
        out.ec.push(EcLoggerPlan {
            name: s.name(),
            mainlog: s.path("Mainlog", "Mainlog_Mode")?,
            rejectlog: s.path("Rejectlog", "Rejectlog_Mode")?,
            paniclog: s.path("Paniclog", "Paniclog_Mode")?,
            acctlog: s.path("Acctlog", "Acctlog_Log_Mode")?,
            heartbeat: s.secs("Heartbeat"),
            log_receptions: s.flag("Log_Receptions"),
            log_deliveries: s.flag("Log_Deliveries"),
            log_transient_failures: s.flag("Log_Transient_Failures"),
            log_permanent_failures: s.flag("Log_Permanent_Failures"),
            log_rejections: s.flag("Log_Rejections"),
            log_errors: s.flag("Log_Errors"),
        });
    }
    for s in stanzas(snap, ScopeKind::BounceLogger) {
        let Some(bouncelog) = s.path("Bouncelog", "Bouncelog_Mode")? else {
            return Err(PlanError {
                span: snap.tree.scope(s.id).opened.first().copied(),
                message: format!("bounce_logger `{}` has no `bouncelog`", s.name()),
                help: "write `bouncelog = \"/var/log/ecelerity/bouncelog.ec\"`",
            });
        };
        out.bounce.push(BounceLoggerPlan {
            name: s.name(),
            bouncelog,
            heartbeat: s.secs("Heartbeat"),
            log_inband_bounces: s.flag("Log_Inband_Bounces"),
            log_transient_failures: s.flag("Log_Transient_Failures"),
            log_outofband_bounces: s.flag("Log_Outofband_Bounces"),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanzas_read_into_plans() {
        let snap = bindery_config::snapshot_from_str(
            "t.conf",
            "ec_logger \"ec_logger\" {\n  mainlog = \"/tmp/m.ec\"\n  mainlog_mode = 0600\n  heartbeat = \"0\"\n  log_deliveries = false\n}\nbounce_logger \"b\" { bouncelog = \"/tmp/b.ec\" log_transient_failures = false }\n",
        )
        .expect("loads");
        let p = plans(&snap).expect("plans");
        let ec = &p.ec[0];
        assert_eq!(ec.name, "ec_logger");
        assert_eq!(
            ec.mainlog,
            Some(LogPath {
                path: "/tmp/m.ec".into(),
                mode: 0o600
            })
        );
        assert_eq!(ec.rejectlog, None);
        assert_eq!(ec.heartbeat, 0);
        assert!(!ec.log_deliveries && ec.log_receptions);
        let b = &p.bounce[0];
        assert_eq!(b.bouncelog.mode, 0o644);
        assert_eq!(b.heartbeat, 60);
        assert!(b.log_inband_bounces && !b.log_transient_failures);
    }

    #[test]
    fn a_cluster_stream_is_refused_on_its_line() {
        let snap = bindery_config::snapshot_from_str(
            "t.conf",
            "ec_logger \"c\" {\n  paniclog = \"cluster:///var/log/ecelerity/paniclog.cluster=>master\"\n}\n",
        )
        .expect("loads");
        let e = plans(&snap).expect_err("refused");
        assert!(e.message.contains("`cluster://`"), "{}", e.message);
        let span = e.span.expect("span");
        let (line, _) = snap.tree.sources.get(span.file).line_col(span.start);
        assert_eq!(line, 2);
    }
}
