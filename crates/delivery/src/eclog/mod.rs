//! Momentum's own log files, in the line formats its documentation gives, for the tools
//! operators already run on them: `ec_logger` (mainlog, rejectlog, paniclog, acctlog) and
//! `bounce_logger` (bouncelog). They are written beside the JSON mainlog, never instead of
//! it.
//!
//! One file per log format (`mainlog.rs`, `rejectlog.rs`, `paniclog.rs`, `acctlog.rs`,
//! `bouncelog.rs`): pure functions from an event to a line, tested against the documented
//! examples. [`EcLogs`] holds the open files of every configured instance and routes each
//! event to the logs that take it ([`LogFile`] does the writing, off the caller's thread).

pub mod acctlog;
pub mod bouncelog;
pub mod fbllog;
pub mod fields;
pub mod mainlog;
pub mod paniclog;
mod plan;
pub mod rejectlog;
pub mod stage;

use std::path::Path;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use crate::logfile::{Beat, LogFile};
pub use mainlog::{Attempt, Reception};
pub use plan::{BounceLoggerPlan, EcLoggerPlan, LogPath, LogPlans, PlanError, plans};
pub use rejectlog::Rejection;

/// What became of one recipient's attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Delivered,
    Transient,
    Permanent,
}

struct EcLogger {
    main: Option<LogFile>,
    reject: Option<LogFile>,
    panic: Option<LogFile>,
    acct: Option<LogFile>,
    plan: EcLoggerPlan,
}

struct BounceLogger {
    file: LogFile,
    plan: BounceLoggerPlan,
}

/// The open Momentum-format logs; empty when no logger module is configured.
#[derive(Default)]
pub struct EcLogs {
    ec: Vec<EcLogger>,
    bounce: Vec<BounceLogger>,
}

fn open(path: &Option<LogPath>, heartbeat: Option<Beat>) -> std::io::Result<Option<LogFile>> {
    match path {
        None => Ok(None),
        Some(p) => LogFile::open(&p.path, p.mode, heartbeat)
            .map(Some)
            .map_err(|e| named(&p.path, e)),
    }
}

fn named(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
}

fn beat(secs: u64, line: fn(u64) -> String) -> Option<Beat> {
    (secs > 0).then_some(Beat {
        every: Duration::from_secs(secs),
        line,
    })
}

/// The logs that `tracing` warnings and errors go to (the paniclog); set by [`EcLogs::install`].
static PANIC: RwLock<Option<Weak<EcLogs>>> = RwLock::new(None);

impl EcLogs {
    /// Opens every file the plans name (creating each with its mode).
    pub fn open(plans: &LogPlans) -> std::io::Result<EcLogs> {
        let mut out = EcLogs::default();
        for p in &plans.ec {
            out.ec.push(EcLogger {
                main: open(&p.mainlog, beat(p.heartbeat, mainlog::heartbeat))?,
                reject: open(&p.rejectlog, beat(p.heartbeat, rejectlog::heartbeat))?,
                panic: open(&p.paniclog, None)?,
                acct: open(&p.acctlog, None)?,
                plan: p.clone(),
            });
        }
        for p in &plans.bounce {
            let file = LogFile::open(
                &p.bouncelog.path,
                p.bouncelog.mode,
                beat(p.heartbeat, bouncelog::heartbeat),
            )
            .map_err(|e| named(&p.bouncelog.path, e))?;
            out.bounce.push(BounceLogger {
                file,
                plan: p.clone(),
            });
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.ec.is_empty() && self.bounce.is_empty()
    }

    /// Makes these the logs [`panic_event`] writes to.
    pub fn install(self: &Arc<Self>) {
        *PANIC.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::downgrade(self));
    }

    /// One accepted recipient.
    pub fn reception(&self, r: &Reception) {
        for l in &self.ec {
            if let (Some(f), true) = (&l.main, l.plan.log_receptions) {
                f.line(mainlog::reception(r).into_bytes());
            }
        }
    }

    /// One recipient's attempt: the mainlog's `D`, `T` or `P` and the bouncelog's `B` or `T`.
    pub fn attempt(&self, fate: Fate, a: &Attempt) {
        for l in &self.ec {
            let Some(f) = &l.main else { continue };
            let line = match fate {
                Fate::Delivered if l.plan.log_deliveries => mainlog::delivery(a),
                Fate::Transient if l.plan.log_transient_failures => mainlog::failure("T", a),
                Fate::Permanent if l.plan.log_permanent_failures => mainlog::failure("P", a),
                _ => continue,
            };
            f.line(line.into_bytes());
        }
        for b in &self.bounce {
            let kind = match fate {
                Fate::Permanent if b.plan.log_inband_bounces => "B",
                Fate::Transient if b.plan.log_transient_failures => "T",
                _ => continue,
            };
            let line = bouncelog::bounce(&bouncelog::Bounce {
                time: a.time,
                id: a.id,
                conn: a.conn,
                kind,
                rcpt: a.rcpt,
                sender: a.sender,
                binding_group: a.binding_group,
                binding: a.binding,
                stage: a.stage,
                class: a.class,
                size: a.size,
                ip: a.ip,
                reply: a.reply,
            });
            b.file.line(line.into_bytes());
        }
    }

    /// One refused command.
    pub fn rejection(&self, r: &Rejection) {
        for l in &self.ec {
            if let (Some(f), true) = (&l.reject, l.plan.log_rejections) {
                f.line(rejectlog::rejection(r).into_bytes());
            }
        }
    }

    /// A bounce that came back as mail (Momentum's stage 21): a `B` line in every bouncelog
    /// that logs out-of-band bounces.
    pub fn oob_bounce(&self, b: &bouncelog::Bounce) {
        for l in &self.bounce {
            if l.plan.log_outofband_bounces {
                l.file.line(bouncelog::bounce(b).into_bytes());
            }
        }
    }

    /// One console login.
    pub fn authentication(&self, now: u64, listener: &str, peer: &str, user: &str, ok: bool) {
        self.to_acctlogs(|| acctlog::authentication(now, listener, peer, user, ok));
    }

    /// Writes a record to every acctlog (made once per log: there is rarely more than one).
    fn to_acctlogs(&self, record: impl Fn() -> String) {
        for l in &self.ec {
            if let Some(f) = &l.acct {
                f.line(record().into_bytes());
            }
        }
    }

    /// One console command put to the `Authorization` rules: allowed by `role`, or not.
    pub fn authorization(
        &self,
        now: u64,
        listener: &str,
        peer: &str,
        user: &str,
        command: &str,
        role: Option<&str>,
    ) {
        self.to_acctlogs(|| acctlog::authorization(now, listener, peer, user, command, role));
    }

    /// One system event (a warning or an error, or the startup line).
    pub fn panic(&self, now: u64, text: &str) {
        for l in &self.ec {
            if let (Some(f), true) = (&l.panic, l.plan.log_errors) {
                f.line(paniclog::panic(now, text).into_bytes());
            }
        }
    }

    /// Every file, the paniclog and acctlog included.
    fn files(&self) -> impl Iterator<Item = &LogFile> {
        self.ec
            .iter()
            .flat_map(|l| {
                [&l.main, &l.reject, &l.panic, &l.acct]
                    .into_iter()
                    .flatten()
            })
            .chain(self.bounce.iter().map(|b| &b.file))
    }

    /// Every file closed and opened again (after rotation); returns their paths.
    pub fn reopen(&self) -> Vec<std::path::PathBuf> {
        self.files()
            .map(|f| {
                f.reopen();
                f.path().to_path_buf()
            })
            .collect()
    }

    /// Writes what is queued and closes every file.
    pub fn close(&self) {
        for f in self.files() {
            f.close();
        }
    }
}

/// Writes `text` to the paniclog of the installed logs, if any (called by the binary's
/// `tracing` layer for warnings and errors).
pub fn panic_event(now: u64, text: &str) {
    let logs = PANIC
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(Weak::upgrade);
    if let Some(l) = logs {
        l.panic(now, text);
    }
}
