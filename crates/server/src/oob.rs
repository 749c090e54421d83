//! Mail that comes back: out-of-band bounces (Momentum's `bounce_domains`, `bounce_pattern`,
//! `bounce_behavior`, `bounce_suppress_list`) and feedback-loop reports (the `fbl` module).
//!
//! A recipient in `bounce_domains` (whose address matches the domain's `bounce_pattern`,
//! when one is set) is a bounce address: the domains are relay domains, so such mail is
//! accepted. A recipient matching one of the fbl module's `Addresses` is an FBL address.
//! When an accepted message has such recipients, it is read (`bindery_bounce::report`) after
//! the end-of-DATA policy has run, before it is spooled:
//!
//! - a DSN gives, per failed recipient, a `B` bouncelog line at stage 21 (when
//!   `log_outofband_bounces`), an `oob_bounce` record in the JSON mainlog and a count in
//!   `bindery_bounces_total`, each with the class of its diagnostic;
//! - an ARF report gives an fbllog `F` line (when `auto_log`), a `feedback` record and a count
//!   in `bindery_feedback_reports_total`;
//! - anything else (an auto-reply, a bounce in no standard form) is classified by its text
//!   (Momentum's MDN rules) and logged as a bounce of the address its text names.
//!
//! Then `bounce_behavior` (per the bounce address's domain) and the fbl module's
//! `message_disposition` say whether those recipients are dropped (`blackhole`, as
//! `blackhole = internal` does) or the message goes on to them (`pass`).
//!
//! What ties a report to the original: bindery's id in the returned `Received` field, the
//! returned `Message-ID`, the DSN's envelope id, and the FBL mark (`X-MSFBL`: recipient,
//! binding, binding group), which bindery adds at delivery where `enable_fbl_header_insertion`
//! is on and the fbl module has `auto_log`.
//!
//! **Architecture Invariant:** a report that cannot be read is logged and counted, never an
//! error to the client and never a reason to lose the message: it is passed or dropped like
//! any other.

use std::collections::HashMap;
use std::sync::Arc;

use bindery_bounce::report::{self, Kind, Report};
use bindery_config::Snapshot;
use bindery_config::schema::{ScopeKind, option_id};
use bindery_config::tree::ROOT;
use bindery_config::value::Value;
use bindery_delivery::eclog;
use bindery_smtp::relay::DomainSet;
use regex::Regex;
use serde::Serialize;

use crate::ServerError;
use crate::settings::located;

/// The fbl module as configured.
#[derive(Clone, Debug)]
pub struct FblPlan {
    pub addresses: Vec<Regex>,
    /// Where the fbllog goes (`auto_log`, or an explicit `log_path`).
    pub log_path: Option<std::path::PathBuf>,
    /// The mark's header (`header_name`).
    pub header_name: String,
    pub blackhole: bool,
    /// `auto_log`: Momentum's condition for inserting the mark at delivery.
    pub auto_log: bool,
}

/// The out-of-band settings of a generation.
#[derive(Clone, Debug, Default)]
pub struct OobPlan {
    pub bounce_domains: DomainSet,
    /// `bounce_pattern` values by text, compiled once.
    patterns: HashMap<String, Regex>,
    /// `bounce_suppress_list`: addresses and `@domain`s never taken as original recipients.
    suppress: Vec<String>,
    pub fbl: Option<FblPlan>,
}

/// What one recipient of an accepted message is to this module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Bounce { blackhole: bool },
    Fbl { blackhole: bool },
}

impl OobPlan {
    pub fn of(snap: &Snapshot) -> Result<OobPlan, ServerError> {
        let tree = &snap.tree;
        let mut out = OobPlan::default();
        let domains_opt = option_id("Bounce_Domains");
        if let Some(Value::Domains(d)) = snap.global(domains_opt) {
            out.bounce_domains = DomainSet::new(d);
        }
        if let Some(Value::Str(s)) = snap.global(option_id("Bounce_Suppress_List")) {
            out.suppress = s
                .split(',')
                .map(|a| a.trim().to_ascii_lowercase())
                .filter(|a| !a.is_empty())
                .collect();
        }
        let pattern = option_id("Bounce_Pattern");
        for (_, st) in tree.settings_of(pattern) {
            if let Value::Regex(p) = &st.value
                && !out.patterns.contains_key(p)
            {
                let re = Regex::new(p).map_err(|e| {
                    located(snap, Some(st.span), format!("bounce_pattern: {e}"), None)
                })?;
                out.patterns.insert(p.clone(), re);
            }
        }
        if let Some(id) = tree.children_of(ROOT, ScopeKind::Fbl).next() {
            let scope = tree.scope(id);
            let get = |o: &'static str| crate::settings::stanza_option(scope, o);
            let mut addresses = Vec::new();
            if let (Some(Value::List(l)), span) = get("Addresses") {
                for a in l {
                    addresses.push(Regex::new(&format!("(?i){a}")).map_err(|e| {
                        located(snap, span, format!("fbl address pattern {a:?}: {e}"), None)
                    })?);
                }
            }
            if addresses.is_empty() {
                return Err(located(
                    snap,
                    scope.opened.first().copied(),
                    "the fbl module has no `Addresses`: no report would ever reach it".into(),
                    Some("write Addresses = ( \"^fbl@fbl.example.com$\" )"),
                ));
            }
            let auto_log = matches!(get("Auto_Log").0, Some(Value::Bool(true)));
            let log_path = match get("Log_Path") {
                (Some(Value::Path(p)), Some(_)) => Some(p.into()),
                (Some(Value::Path(p)), None) if auto_log => Some(p.into()),
                _ => None,
            };
            let header_name = match get("Header_Name").0 {
                Some(Value::Str(s)) if !s.trim().is_empty() => s,
                _ => "X-MSFBL".to_string(),
            };
            let blackhole = !matches!(get("Message_Disposition").0, Some(Value::Word(w)) if w.eq_ignore_ascii_case("pass"));
            out.fbl = Some(FblPlan {
                addresses,
                log_path,
                header_name,
                blackhole,
                auto_log,
            });
        }
        // The mark needs the module with `auto_log` (its page says so): without it the option
        // would do nothing, so it is refused where it is set.
        let insertion = option_id("Enable_FBL_Header_Insertion");
        if !out.fbl.as_ref().is_some_and(|f| f.auto_log)
            && let Some((_, st)) = tree
                .settings_of(insertion)
                .find(|(_, st)| matches!(st.value, Value::Bool(true)))
        {
            return Err(located(
                snap,
                Some(st.span),
                "enable_fbl_header_insertion needs the fbl module with `Auto_Log = true`, which this configuration lacks".into(),
                Some("add fbl { Addresses = ( \"^fbl@fbl.example.com$\" ) Auto_Log = true }"),
            ));
        }
        Ok(out)
    }

    /// The header delivery marks mail with: the fbl module's `header_name`, when its
    /// `auto_log` is on (Momentum inserts the mark only then).
    pub fn mark_header(&self) -> Option<String> {
        self.fbl
            .as_ref()
            .filter(|f| f.auto_log)
            .map(|f| f.header_name.clone())
    }

    pub fn is_empty(&self) -> bool {
        self.bounce_domains.is_empty() && self.fbl.is_none()
    }

    /// What `rcpt` is: a bounce address, an FBL address, or neither.
    pub fn role(&self, snap: &Snapshot, rcpt: &str) -> Option<Role> {
        if let Some(f) = &self.fbl
            && f.addresses.iter().any(|re| re.is_match(rcpt))
        {
            return Some(Role::Fbl {
                blackhole: f.blackhole,
            });
        }
        let domain = rcpt.rsplit_once('@').map(|(_, d)| d)?;
        if !self.bounce_domains.contains(domain) {
            return None;
        }
        let key = snap.domain_key(domain);
        let chain = snap.chain(None, None, Some(&key));
        if let Some(r) = chain.get(option_id("Bounce_Pattern"))
            && let Value::Regex(p) = r.value
            && let Some(re) = self.patterns.get(p)
            && !re.is_match(rcpt)
        {
            return None;
        }
        let blackhole = matches!(chain.get(option_id("Bounce_Behavior")).map(|r| r.value), Some(Value::Word(w)) if w.eq_ignore_ascii_case("blackhole"));
        Some(Role::Bounce { blackhole })
    }

    fn suppressed(&self, addr: &str) -> bool {
        let a = addr.to_ascii_lowercase();
        self.suppress.iter().any(|s| {
            if s.starts_with('@') {
                a.ends_with(s.as_str())
            } else {
                a == *s
            }
        })
    }
}

/// One out-of-band bounce in the JSON mainlog.
#[derive(Serialize)]
struct OobBounce<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    /// The incoming report's own id.
    id: &'a str,
    time: u64,
    /// The original message's spool id, where the report names it.
    original_id: &'a str,
    original_message_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    envid: &'a str,
    /// The original recipient.
    rcpt: &'a str,
    /// Where the report was sent: the original sender (Momentum's "original sending" address).
    bounce_address: &'a str,
    report: &'static str,
    status: &'a str,
    reply: &'a str,
    bounce_class: u16,
    binding: &'a str,
    binding_group: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    malformed: Option<String>,
}

/// One feedback report in the JSON mainlog.
#[derive(Serialize)]
struct FeedbackRecord<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    time: u64,
    original_id: &'a str,
    original_message_id: &'a str,
    rcpt: &'a str,
    feedback_type: &'a str,
    user_agent: &'a str,
    source_ip: &'a str,
    fbl_address: &'a str,
    binding: &'a str,
    binding_group: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    malformed: Option<String>,
}

/// What the recipients of one message are, and which to drop.
pub struct Incoming<'a> {
    pub id: &'a str,
    pub time: u64,
    pub peer: String,
    pub size: u64,
    pub body: &'a [u8],
    /// Each recipient's address and role.
    pub rcpts: Vec<(&'a str, Role)>,
}

/// Reads `m` and logs what it says; returns the addresses to drop (`blackhole`).
pub fn process(shared: &crate::Shared, plan: &OobPlan, m: &Incoming<'_>) -> Vec<String> {
    let header = plan
        .fbl
        .as_ref()
        .map_or("X-MSFBL", |f| f.header_name.as_str());
    let r = match report::parse(m.body, header) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(id = %m.id, error = %e, "out-of-band mail that is no message: not classified");
            Report::default()
        }
    };
    if let Some(e) = &r.malformed {
        tracing::warn!(id = %m.id, error = %e, "malformed report read as an MDN");
    }
    let classifier = shared.bounces.load();
    let mut drop = Vec::new();
    for (addr, role) in &m.rcpts {
        match role {
            Role::Fbl { blackhole } => {
                feedback(shared, m, &r, addr);
                if *blackhole {
                    drop.push(addr.to_string());
                }
            }
            Role::Bounce { blackhole } => {
                bounce(shared, plan, m, &r, addr, &classifier);
                if *blackhole {
                    drop.push(addr.to_string());
                }
            }
        }
    }
    drop
}

fn mark_of(r: &Report) -> (String, String) {
    r.mark
        .as_ref()
        .map(|k| (k.binding.clone(), k.binding_group.clone()))
        .unwrap_or_default()
}

fn bounce(
    shared: &crate::Shared,
    plan: &OobPlan,
    m: &Incoming<'_>,
    r: &Report,
    bounce_address: &str,
    c: &bindery_bounce::Classifier,
) {
    let (binding, group) = mark_of(r);
    let original_id = r.original_or(m.id);
    // (original recipient, status, diagnostic, class)
    let mut found: Vec<(String, String, String, u16)> = Vec::new();
    let kind = match r.kind {
        Some(Kind::Dsn) => "dsn",
        Some(Kind::Arf) => "arf",
        _ => "mdn",
    };
    for rc in &r.recipients {
        if !rc.action.is_empty() && rc.action != "failed" && rc.action != "delayed" {
            continue;
        }
        let class = r.recipient_class(c, rc);
        let reply = if rc.diagnostic.is_empty() {
            rc.status.clone()
        } else {
            rc.diagnostic.clone()
        };
        found.push((rc.address.clone(), rc.status.clone(), reply, class));
    }
    if r.recipients.is_empty() {
        // An MDN: its class from its text, its recipient the first address it names that is
        // none of ours (the bounce address, the suppress list) and not the report's sender.
        let class = c.mdn(&r.text).class;
        let rcpt = r
            .mark
            .as_ref()
            .map(|k| k.rcpt.clone())
            .or_else(|| {
                report::addresses(&r.text)
                    .into_iter()
                    .find(|a| a != &bounce_address.to_ascii_lowercase() && !plan.suppressed(a))
            })
            .unwrap_or_default();
        let first = r.text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        found.push((rcpt, String::new(), first.to_string(), class));
    }
    for (rcpt, status, reply, class) in &found {
        if plan.suppressed(rcpt) {
            continue;
        }
        let domain = rcpt.rsplit_once('@').map_or("", |(_, d)| d);
        shared
            .stats
            .bounces
            .count(&binding, domain, *class, true, 1);
        shared.eclogs.oob_bounce(&eclog::bouncelog::Bounce {
            time: m.time,
            id: original_id,
            conn: "",
            kind: "B",
            rcpt,
            sender: bounce_address,
            binding_group: &group,
            binding: &binding,
            stage: eclog::stage::OUT_OF_BAND,
            class: *class,
            size: m.size,
            ip: &m.peer,
            reply,
        });
        if let Some(log) = &shared.mainlog {
            log.record(&OobBounce {
                kind: "oob_bounce",
                id: m.id,
                time: m.time,
                original_id: &r.original_id,
                original_message_id: &r.original_message_id,
                envid: &r.envid,
                rcpt,
                bounce_address,
                report: kind,
                status,
                reply,
                bounce_class: *class,
                binding: &binding,
                binding_group: &group,
                malformed: r.malformed.as_ref().map(|e| e.to_string()),
            });
        }
    }
}

fn feedback(shared: &crate::Shared, m: &Incoming<'_>, r: &Report, addr: &str) {
    let (binding, group) = mark_of(r);
    let f = r.feedback.clone().unwrap_or_default();
    let rcpt = if !f.original_rcpt.is_empty() {
        f.original_rcpt.clone()
    } else {
        r.mark.as_ref().map(|k| k.rcpt.clone()).unwrap_or_default()
    };
    let feedback_type = if f.feedback_type.is_empty() {
        "unknown"
    } else {
        f.feedback_type.as_str()
    };
    if r.original_id.is_empty() && r.original_message_id.is_empty() {
        tracing::warn!(id = %m.id, "feedback report without its original message: logged without it");
    }
    let domain = rcpt.rsplit_once('@').map_or("", |(_, d)| d);
    shared
        .stats
        .bounces
        .feedback(&binding, domain, feedback_type);
    let fbl_domain = addr.rsplit_once('@').map_or("", |(_, d)| d);
    let original_id = r.original_or(m.id);
    if let Some(log) = &shared.fbllog {
        log.line(
            eclog::fbllog::feedback(&eclog::fbllog::Feedback {
                time: m.time,
                id: original_id,
                rcpt: &rcpt,
                binding: &binding,
                binding_group: &group,
                feedback_type,
                fbl_domain,
                user_string: r.mark.as_ref().map_or("", |k| k.user_string.as_str()),
            })
            .into_bytes(),
        );
    }
    if let Some(log) = &shared.mainlog {
        log.record(&FeedbackRecord {
            kind: "feedback",
            id: m.id,
            time: m.time,
            original_id: &r.original_id,
            original_message_id: &r.original_message_id,
            rcpt: &rcpt,
            feedback_type,
            user_agent: &f.user_agent,
            source_ip: &f.source_ip,
            fbl_address: addr,
            binding: &binding,
            binding_group: &group,
            malformed: r.malformed.as_ref().map(|e| e.to_string()),
        });
    }
}

/// The fbllog, opened at start where the fbl module asks for one.
pub fn open_fbllog(
    plan: &OobPlan,
) -> Result<Option<Arc<bindery_delivery::logfile::LogFile>>, ServerError> {
    let Some(path) = plan.fbl.as_ref().and_then(|f| f.log_path.as_ref()) else {
        return Ok(None);
    };
    bindery_delivery::logfile::LogFile::open(path, 0o644, None)
        .map(|f| Some(Arc::new(f)))
        .map_err(|e| ServerError::Io {
            what: format!("cannot open the fbllog {}", path.display()),
            source: e,
        })
}
