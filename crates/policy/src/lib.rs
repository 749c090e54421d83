//! Lua policy: Momentum's validate callouts, run from bindery's SMTP path.
//!
//! A configuration names scripts in `scriptlet "x" { script "name" { source = "..." } }`. Each
//! script registers a module with `msys.registerModule(name, mod)`; a module implements some
//! of the callouts in [`Callout`]. [`Policy::load`] finds, compiles and initialises every
//! script once to prove it loads; after that each worker thread keeps its own Lua state for
//! the policy (see `pool`), so no lock is ever held while Lua runs.
//!
//! The SMTP layer asks the policy at each phase: [`Policy::connect`], [`Policy::ehlo`],
//! [`Policy::mailfrom`], [`Policy::rcptto`], and at the end of DATA [`Policy::message`]
//! (`validate_data`, `validate_data_spool`, then `validate_set_binding`). An answer of
//! `Some(Code)` is the reply a script chose; `None` lets the command go on.
//!
//! Layout: `find` (scripts named by the config, on disk), `sandbox` (a Lua state with the
//! `msys` API and the run budget), `handles` (the `msg`, `accept` and `vctx` objects),
//! `headers` (reading header fields from a message), `pool` (one state per thread),
//! `choose` (binding and binding-group assignment), `config` (`msys.config`, which can
//! change the configuration through a [`ConfigHost`]).

mod adaptive;
pub mod addresses;
pub mod audit_series;
mod bitwise;
mod bounce;
pub mod choose;
pub mod cidr;
mod config;
pub mod counters;
mod db;
pub mod dialect;
pub mod dns;
mod error;
mod find;
mod handles;
mod headers;
pub mod inject;
mod json;
mod lex;
mod library;
mod macros;
pub mod mime;
mod msgpart;
pub mod newmsg;
pub mod opendkim;
mod pool;
mod require;
mod sandbox;
mod unrun;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bindery_config::Snapshot;
use bindery_config::snapshot::BindingId;

pub use config::{ConfigHost, HostChange};
pub use db::datasources;
pub use error::LoadError;
pub use find::Script;
pub use headers::header_values;

use config::{Phase, View};

/// The validate callouts bindery runs, in Momentum's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Callout {
    /// `core_validate_accept(accept, vctx)`: a connection was accepted; before
    /// `validate_connect`.
    Accept,
    Connect,
    Ehlo,
    MailFrom,
    RcptTo,
    /// `validate_rcptto_list(list, vctx)`: at DATA, the recipient list complete (Momentum's
    /// `MC_STATE_RCPTTO_LIST_RESPONSE`, between the last RCPT and the body).
    RcptToList,
    /// `validate_rcptto_list_final(list, vctx)`: right after it, the last point before the
    /// list may change.
    RcptToListFinal,
    Data,
    DataSpool,
    /// `core_pre_msg_each_rcpt(msg, accept)`: a recipient's own message is made.
    PreEachRcpt,
    /// `validate_data_spool_each_rcpt(msg, accept, vctx)`, per recipient.
    DataSpoolEachRcpt,
    /// `core_post_msg_each_rcpt(msg, accept, vctx)`: a recipient's own message is validated
    /// (the sample policies check suppression lists and discard here).
    PostEachRcpt,
    SetBinding,
    /// `core_final_validation(msg, accept, vctx)`: last, before the spool write (where
    /// Momentum signs DKIM).
    FinalValidation,
    /// `core_log_delivery_v1(msg, dr, now, note, note_len)`: a recipient was delivered.
    LogDelivery,
    /// `core_log_transient_failure_v1(...)`: a recipient was deferred.
    LogTransient,
    /// `core_log_permanent_failure_v1(...)`: a recipient failed for good.
    LogPermanent,
    /// `core_pre_mailq_message_requeue(msg, now)`: a deferred message goes back to the
    /// delayed queue.
    PreRequeue,
    /// `validate_dealloc()`: the session's validation context is torn down.
    Dealloc,
    /// `msg_gen_data_spool(msg)`: a message the Transmissions API generated, in place of
    /// `validate_data` and `validate_data_spool` (which do not fire for those, Momentum's
    /// `4/dkim2/sign.md`); the recipient's metadata is in the message context as
    /// `mo_rcpt_meta`.
    MsgGenDataSpool,
    /// `outbound_smtp_auth_config(msg)`: Momentum's `outbound_smtp_auth` module asks for a
    /// message's SMTP AUTH login; what the script puts in the message context as
    /// `outbound_smtp_auth_type`, `_user` and `_pass` overrides the options.
    SmtpAuthConfig,
    /// `outbound_smtp_auth_v0_config(msg, ac, vctx)`: the same, under the 4.2 module's name.
    SmtpAuthConfigV0,
}

impl Callout {
    /// How many callouts there are (the statistics arrays' size).
    pub const COUNT: usize = 22;

    pub const ALL: [Callout; Callout::COUNT] = [
        Callout::Accept,
        Callout::Connect,
        Callout::Ehlo,
        Callout::MailFrom,
        Callout::RcptTo,
        Callout::RcptToList,
        Callout::RcptToListFinal,
        Callout::Data,
        Callout::DataSpool,
        Callout::PreEachRcpt,
        Callout::DataSpoolEachRcpt,
        Callout::PostEachRcpt,
        Callout::SetBinding,
        Callout::FinalValidation,
        Callout::LogDelivery,
        Callout::LogTransient,
        Callout::LogPermanent,
        Callout::PreRequeue,
        Callout::Dealloc,
        Callout::MsgGenDataSpool,
        Callout::SmtpAuthConfig,
        Callout::SmtpAuthConfigV0,
    ];

    /// Run for each recipient's own message, in this order.
    pub const EACH_RCPT: [Callout; 5] = [
        Callout::PreEachRcpt,
        Callout::DataSpoolEachRcpt,
        Callout::PostEachRcpt,
        Callout::SetBinding,
        Callout::FinalValidation,
    ];

    /// The method name a module defines.
    pub fn name(self) -> &'static str {
        match self {
            Callout::Connect => "validate_connect",
            Callout::Ehlo => "validate_ehlo",
            Callout::MailFrom => "validate_mailfrom",
            Callout::RcptTo => "validate_rcptto",
            Callout::RcptToList => "validate_rcptto_list",
            Callout::RcptToListFinal => "validate_rcptto_list_final",
            Callout::Data => "validate_data",
            Callout::DataSpool => "validate_data_spool",
            Callout::SetBinding => "validate_set_binding",
            Callout::PreEachRcpt => "core_pre_msg_each_rcpt",
            Callout::DataSpoolEachRcpt => "validate_data_spool_each_rcpt",
            Callout::PostEachRcpt => "core_post_msg_each_rcpt",
            Callout::FinalValidation => "core_final_validation",
            Callout::LogDelivery => "core_log_delivery_v1",
            Callout::LogTransient => "core_log_transient_failure_v1",
            Callout::LogPermanent => "core_log_permanent_failure_v1",
            Callout::Accept => "core_validate_accept",
            Callout::PreRequeue => "core_pre_mailq_message_requeue",
            Callout::Dealloc => "validate_dealloc",
            Callout::MsgGenDataSpool => "msg_gen_data_spool",
            Callout::SmtpAuthConfig => "outbound_smtp_auth_config",
            Callout::SmtpAuthConfigV0 => "outbound_smtp_auth_v0_config",
        }
    }

    pub(crate) fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// `msys.core.VALIDATE_CONT`: go on with the next module.
pub const VALIDATE_CONT: i64 = 0;
/// `msys.core.VALIDATE_DONE`: no more modules in this phase.
pub const VALIDATE_DONE: i64 = 1;
/// `msys.core.VALIDATE_AGAIN`: Momentum's "call me again"; bindery treats it as CONT.
pub const VALIDATE_AGAIN: i64 = 2;
/// `msys.core.ECMESS_CTX_MESS` / `VCTX_MESS`: the message's context dictionary.
pub const CTX_MESS: i64 = 0;
/// `msys.core.ECMESS_CTX_CONN` / `VCTX_CONN`: the connection's context dictionary.
pub const CTX_CONN: i64 = 1;

/// A validation context: string keys and values, as Momentum's are.
pub type Context = HashMap<String, String>;

/// The reply a script chose with `msg:code` or `vctx:set_code`. `text` starts with the
/// enhanced status code (one is supplied when the script gave none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Code {
    pub code: u16,
    pub text: String,
}

/// What the callouts see of the connection. The connection context is seeded with
/// `peer_ip`, `listener` and (after EHLO) `ehlo`, plus the listener's `context` option.
#[derive(Clone, Debug, Default)]
pub struct Conn {
    pub peer: Option<IpAddr>,
    pub listener: String,
    pub ehlo: Option<String>,
    pub context: Context,
    /// The session's id (`accept.conn_id`, `msg.conn_id`).
    pub id: String,
    /// `vctx:disconnect`: the session closes after the reply to the command in progress.
    pub disconnect: bool,
    /// `vctx:tarpit(seconds)`: the reply waits this long.
    pub tarpit: Option<Duration>,
    /// `ac:esmtp_capability_add`: keywords for this session's EHLO reply, taken by the
    /// server.
    pub capabilities: Vec<String>,
    /// The client's port (`accept.remote_addr`, `msg:reception_peer`); 0 when unknown.
    pub peer_port: u16,
    /// The listener's own address (`msg:listener_addr`).
    pub local: Option<std::net::SocketAddr>,
}

impl Conn {
    pub fn new(peer: IpAddr, listener: &str, context: &[(String, String)]) -> Conn {
        let mut ctx: Context = context.iter().cloned().collect();
        ctx.insert("peer_ip".into(), peer.to_string());
        ctx.insert("listener".into(), listener.into());
        Conn {
            peer: Some(peer),
            listener: listener.into(),
            ehlo: None,
            context: ctx,
            ..Conn::default()
        }
    }
}

/// A binding a script assigned, by name: the script may have created it a moment ago with
/// `msys.config("set", ...)`, in a configuration generation newer than the session's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assigned {
    pub group: String,
    pub binding: String,
}

impl Assigned {
    pub fn of(snap: &Snapshot, b: BindingId) -> Assigned {
        Assigned {
            group: snap.group_name(snap.group_of(b)).to_string(),
            binding: snap.binding_name(b).to_string(),
        }
    }
}

/// What the callouts see of the message being received.
#[derive(Clone, Debug, Default)]
pub struct Message {
    /// Its spool id (`msg.id`), given before the end-of-DATA callouts; empty before DATA.
    pub id: String,
    pub sender: String,
    pub recipients: Vec<String>,
    /// The message as received (header and body, CRLF line ends); empty before DATA ends.
    pub body: Vec<u8>,
    pub context: Context,
    /// The binding a script assigned; `None` means the default binding.
    pub binding: Option<Assigned>,
    /// `msg:discard(reason)`: accepted in the client's eyes, never delivered; the reason is
    /// what the rejectlog records.
    pub discard: Option<Code>,
    /// `msg:routing_domain(domain)`: the domain whose route the message takes.
    pub routing_domain: Option<String>,
    /// `msg.recv_method`: how it came in.
    pub recv_method: inject::RecvMethod,
    /// How many injected messages led to this one (0: received from a client).
    pub depth: u8,
}

/// The end-of-DATA verdict: a refusal, or acceptance on a binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Refuse(Code),
    /// Accepted; `binding` is the script's choice, `None` for the default binding.
    Accept {
        binding: Option<Assigned>,
    },
    /// Accepted, but the recipients' own messages came out different (another binding, a
    /// header changed for one of them): each share is spooled as a message of its own.
    Split(Vec<Share>),
    /// `msg:discard`: the client is told the message was accepted; nothing is spooled.
    Discard(Code),
}

/// Momentum's reason for a discard given none: "550 5.7.0 discarded by policy".
pub fn discard_code() -> Code {
    Code {
        code: 550,
        text: "5.7.0 discarded by policy".into(),
    }
}

/// Recipients whose own messages came out the same (see [`Verdict::Split`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    /// Indexes into the message's recipients, in their order.
    pub recipients: Vec<usize>,
    pub binding: Option<Assigned>,
    /// The message as the callouts left it for these recipients.
    pub body: Vec<u8>,
    /// The routing domain a script set for them (`msg:routing_domain`).
    pub routing_domain: Option<String>,
}

/// Counters for the metrics endpoint and the console.
#[derive(Debug, Default)]
pub struct Stats {
    /// Callouts run, by [`Callout`] index.
    pub calls: [AtomicU64; Callout::COUNT],
    /// Callouts that raised an error or ran past their budget, by [`Callout`] index.
    pub errors: [AtomicU64; Callout::COUNT],
    /// `msys.counter`'s counters: they outlive a reload, as they do in Momentum.
    pub counters: Arc<counters::Counters>,
    /// `msys.audit_series`'s series, likewise.
    pub audit_series: Arc<audit_series::AuditSeries>,
    /// `msys.cidr`'s tables, likewise (each state's `init` defines them again; an equal
    /// definition keeps the loaded data).
    pub cidrs: Arc<cidr::Cidrs>,
}

/// How long one callout may run.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub instructions: u64,
    pub time: Duration,
    /// `Allow_Unsafe_Libraries`: `io`, all of `os`, `require` of files.
    pub unsafe_libraries: bool,
}

/// The daemon's services a script reaches. Each is optional: without `config`, a
/// callout's `msys.config("set")` stays in its own state; without `dns`, `msys.dnsLookup`
/// answers nil and why; without `sessions`, session counts raise; without `injector`,
/// `msg:inject` raises.
#[derive(Clone, Default)]
pub struct Hosts {
    pub config: Option<Arc<dyn ConfigHost>>,
    pub dns: Option<Arc<dyn dns::Dns>>,
    pub sessions: Option<Arc<dyn inject::LiveSessions>>,
    pub injector: Option<Arc<dyn inject::Injector>>,
    /// A fixed "now" for the scripts' `os.time()` and `os.date()` (`bindery policy test
    /// --time`); none: the clock.
    pub fixed_time: Option<i64>,
    /// The bounce classifier in force, for `msys.bounce` (none: the shipped rules).
    pub bounces: Option<Arc<bindery_bounce::Live>>,
    /// Adaptive delivery's book, for `msg:binding_group` to pass over bindings suspended
    /// toward the message's destination (none: no adaptive module).
    pub adaptive: Option<Arc<bindery_adaptive::Live>>,
}

/// Seconds since the epoch, by the wall clock (0 before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One configuration generation's policy. Cheap to clone.
#[derive(Clone)]
pub struct Policy {
    inner: Arc<Inner>,
}

struct Inner {
    /// Tells this policy's thread-local states from those of other generations.
    id: u64,
    /// Thread-local states hold a weak reference: when it dies they can go.
    alive: Arc<()>,
    scripts: Vec<Script>,
    /// Where `require` looks for the policy's own modules: each script's folder, then the
    /// configuration search path.
    module_dirs: Vec<std::path::PathBuf>,
    /// Callouts the scripts define that bindery does not run (`unrun.rs`).
    warnings: Vec<error::ScriptError>,
    /// The configuration's `Datasource` stanzas, for `msys.db` (their caches live as long as
    /// this generation's policy).
    datasources: Arc<bindery_datasource::Datasources>,
    /// `msys.validate.opendkim.sign`'s keys, read once per generation.
    dkim_keys: Arc<opendkim::KeyCache>,
    callouts: u32,
    limits: Limits,
    /// The configuration, with any change the scripts' `init` made to it.
    view: View,
    /// What the daemon gives the scripts; shared with later generations.
    hosts: Hosts,
    /// Shared with the generations before and after (see [`Policy::continuing`]).
    stats: Arc<Stats>,
    /// What `msys.adaptive.registerRules` registered while the trial state loaded.
    adaptive_rules: Arc<bindery_adaptive::RuleSet>,
}

impl Policy {
    /// The configuration's `Datasource` caches of this generation (also what
    /// `bounce_classifier_override`'s `:datasource:` sources query).
    pub fn datasources(&self) -> &Arc<bindery_datasource::Datasources> {
        &self.inner.datasources
    }

    /// Finds, compiles and initialises every script the configuration names. Errors point at
    /// the `source` setting or at the script's own line.
    pub fn load(snapshot: Arc<Snapshot>) -> Result<Policy, LoadError> {
        Policy::load_with(snapshot, Hosts::default(), Arc::default(), Phase::Apply)
    }

    /// [`Policy::load`] for a running daemon (or a command standing in for one): the
    /// scripts reach the daemon's services through `hosts`.
    pub fn load_hosted(snapshot: Arc<Snapshot>, hosts: Hosts) -> Result<Policy, LoadError> {
        Policy::load_with(snapshot, hosts, Arc::default(), Phase::Apply)
    }

    /// The policy for a configuration read again from the files (`config reload`): loaded as
    /// at a start (`init`'s changes are made), counting into `previous`'s counters so they
    /// run on (as a metric must), with `previous`'s host.
    pub fn reloaded(snapshot: Arc<Snapshot>, previous: &Policy) -> Result<Policy, LoadError> {
        Policy::after(snapshot, previous, Phase::Apply)
    }

    /// The policy for a generation made by a run-time change to `previous`'s configuration:
    /// `init`'s changes are in it already and are not made again, so `init` cannot undo the
    /// change. Counters and host carry on.
    pub fn continuing(snapshot: Arc<Snapshot>, previous: &Policy) -> Result<Policy, LoadError> {
        Policy::after(snapshot, previous, Phase::Replay)
    }

    /// A policy following `previous`: its host and counters carry on.
    fn after(snapshot: Arc<Snapshot>, previous: &Policy, init: Phase) -> Result<Policy, LoadError> {
        let hosts = previous.inner.hosts.clone();
        Policy::load_with(snapshot, hosts, Arc::clone(&previous.inner.stats), init)
    }

    fn load_with(
        snapshot: Arc<Snapshot>,
        hosts: Hosts,
        stats: Arc<Stats>,
        init: Phase,
    ) -> Result<Policy, LoadError> {
        let (scripts, limits) = find::scripts(&snapshot.tree)?;
        let module_dirs = find::module_dirs(&scripts, &snapshot.tree.search);
        let datasources = Arc::new(db::datasources(&snapshot.tree).map_err(LoadError::Config)?);
        let mut inner = Inner {
            id: pool::next_id(),
            alive: Arc::new(()),
            scripts,
            module_dirs,
            warnings: Vec::new(),
            datasources,
            dkim_keys: Arc::default(),
            callouts: 0,
            limits,
            view: View::new(snapshot),
            hosts,
            stats,
            adaptive_rules: bindery_adaptive::system::rules(),
        };
        // A trial state proves every script compiles and initialises, and says which
        // callouts exist; the SMTP path then skips the ones nobody implements. Loaded from
        // the files, what its `init` set is this generation's configuration; every state
        // built later replays `init` against it without changing it.
        let state = sandbox::State::build(&inner, init).map_err(LoadError::Script)?;
        inner.callouts = state.callouts();
        inner.view = state.view();
        inner.warnings = state.warnings.clone();
        inner.adaptive_rules = Arc::new(state.adaptive_rules());
        Ok(Policy {
            inner: Arc::new(inner),
        })
    }

    /// Warnings about the scripts, rendered like config diagnostics (`FILE:LINE:COL:
    /// warning: ...`): callouts they define that bindery never runs.
    pub fn warnings(&self) -> Vec<String> {
        self.inner
            .warnings
            .iter()
            .map(|w| w.render_as("warning"))
            .collect()
    }

    /// The configuration this policy was built for, with what the scripts' `init` changed:
    /// the generation's configuration.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.inner.view.snapshot
    }

    /// A policy with no scripts: every callout is absent.
    pub fn empty(snapshot: Arc<Snapshot>) -> Policy {
        Policy {
            inner: Arc::new(Inner {
                id: pool::next_id(),
                alive: Arc::new(()),
                scripts: Vec::new(),
                module_dirs: Vec::new(),
                warnings: Vec::new(),
                datasources: Arc::default(),
                dkim_keys: Arc::default(),
                callouts: 0,
                limits: find::limits(&snapshot.tree),
                view: View::new(snapshot),
                hosts: Hosts::default(),
                stats: Arc::default(),
                adaptive_rules: bindery_adaptive::system::rules(),
            }),
        }
    }

    /// The adaptive response rules the scripts registered while they loaded
    /// (`msys.adaptive.registerRules`), folded in the order they were registered.
    pub fn adaptive_rules(&self) -> &Arc<bindery_adaptive::RuleSet> {
        &self.inner.adaptive_rules
    }

    /// Whether any module implements `c`.
    pub fn has(&self, c: Callout) -> bool {
        self.inner.callouts & c.bit() != 0
    }

    /// Whether [`Policy::message`] has anything to run.
    pub fn has_message_callouts(&self) -> bool {
        [Callout::Data, Callout::DataSpool, Callout::MsgGenDataSpool]
            .iter()
            .chain(&Callout::EACH_RCPT)
            .any(|&c| self.has(c))
    }

    pub fn scripts(&self) -> &[Script] {
        &self.inner.scripts
    }

    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Errors in all callouts so far.
    pub fn errors(&self) -> u64 {
        self.inner
            .stats
            .errors
            .iter()
            .map(|e| e.load(Ordering::Relaxed))
            .sum()
    }

    /// `core_validate_accept`, then `validate_connect`, before the greeting.
    pub fn connect(&self, conn: &mut Conn) -> Option<Code> {
        let mut msg = Message::default();
        if let Some(code) = self.phase(Callout::Accept, conn, &mut msg, None) {
            return Some(code);
        }
        self.phase(Callout::Connect, conn, &mut msg, None)
    }

    /// Whether [`Policy::connect`] has anything to run.
    pub fn has_connect_callouts(&self) -> bool {
        self.has(Callout::Accept) || self.has(Callout::Connect)
    }

    /// `validate_dealloc()`, when a session ends: the modules' chance to let go of what
    /// they kept for it. Errors are logged; there is no one left to answer.
    pub fn dealloc(&self, conn: &mut Conn) {
        let mut msg = Message::default();
        let _ = self.phase(Callout::Dealloc, conn, &mut msg, None);
    }

    /// `validate_ehlo` with the name the client gave.
    pub fn ehlo(&self, conn: &mut Conn, name: &str) -> Option<Code> {
        conn.ehlo = Some(name.to_string());
        conn.context.insert("ehlo".into(), name.to_string());
        // Momentum's predefined connection variables.
        conn.context.insert("ehlo_domain".into(), name.to_string());
        conn.context.insert("ehlo_string".into(), name.to_string());
        let mut msg = Message::default();
        self.phase(Callout::Ehlo, conn, &mut msg, Some(name))
    }

    /// `validate_mailfrom`; `msg.sender` is already set.
    pub fn mailfrom(&self, conn: &mut Conn, msg: &mut Message) -> Option<Code> {
        let sender = msg.sender.clone();
        self.phase(Callout::MailFrom, conn, msg, Some(&sender))
    }

    /// `validate_rcptto` for one recipient, before it joins `msg.recipients`.
    pub fn rcptto(&self, conn: &mut Conn, msg: &mut Message, rcpt: &str) -> Option<Code> {
        self.phase(Callout::RcptTo, conn, msg, Some(rcpt))
    }

    /// Whether [`Policy::rcptto_list`] has anything to run.
    pub fn has_rcptto_list(&self) -> bool {
        self.has(Callout::RcptToList) || self.has(Callout::RcptToListFinal)
    }

    /// At DATA, with `msg.recipients` the transaction's complete list:
    /// `validate_rcptto_list`, then `validate_rcptto_list_final`. A code refuses DATA.
    pub fn rcptto_list(&self, conn: &mut Conn, msg: &mut Message) -> Option<Code> {
        self.phase(Callout::RcptToList, conn, msg, None)
            .or_else(|| self.phase(Callout::RcptToListFinal, conn, msg, None))
    }

    /// The end of DATA, as Momentum runs it: `validate_data` and `validate_data_spool` on the
    /// whole message; then, since each Momentum message has one recipient, each recipient
    /// gets its own copy (context, binding, body) and on it `core_pre_msg_each_rcpt`,
    /// `validate_data_spool_each_rcpt`, `core_post_msg_each_rcpt`, `validate_set_binding`
    /// and `core_final_validation`.
    /// Recipients whose copies come out the same (binding and body) stay one message; where
    /// they differ the verdict is a [`Verdict::Split`]. An error in set_binding keeps the
    /// binding chosen so far; an error or a refusal code anywhere else refuses the whole
    /// message (an SMTP DATA has one reply).
    pub fn message(&self, conn: &mut Conn, msg: &mut Message) -> Verdict {
        let generated = msg.recv_method == inject::RecvMethod::Http;
        let data_phases: &[Callout] = if generated {
            &[Callout::MsgGenDataSpool]
        } else {
            &[Callout::Data, Callout::DataSpool]
        };
        for &c in data_phases {
            if let Some(code) = self.phase(c, conn, msg, None) {
                return Verdict::Refuse(code);
            }
        }
        // Discarded at RCPT or in the data phases: no recipient's callouts run.
        if let Some(reason) = msg.discard.clone() {
            return Verdict::Discard(reason);
        }
        if !Callout::EACH_RCPT.iter().any(|&c| self.has(c)) {
            return Verdict::Accept {
                binding: msg.binding.clone(),
            };
        }
        if msg.recipients.len() <= 1 {
            // The message is its one recipient's own: no copy.
            if let Some(code) = self.each_rcpt(conn, msg) {
                return Verdict::Refuse(code);
            }
            if let Some(reason) = msg.discard.clone() {
                return Verdict::Discard(reason);
            }
            return Verdict::Accept {
                binding: msg.binding.clone(),
            };
        }
        let mut discarded = None;
        let mut shares: Vec<Share> = Vec::new();
        for (i, rcpt) in msg.recipients.iter().enumerate() {
            let mut own = Message {
                id: msg.id.clone(),
                sender: msg.sender.clone(),
                recipients: vec![rcpt.clone()],
                body: msg.body.clone(),
                context: msg.context.clone(),
                binding: msg.binding.clone(),
                discard: None,
                routing_domain: msg.routing_domain.clone(),
                recv_method: msg.recv_method,
                depth: msg.depth,
            };
            if let Some(code) = self.each_rcpt(conn, &mut own) {
                return Verdict::Refuse(code);
            }
            // A recipient whose own message was discarded is left out.
            if own.discard.is_some() {
                discarded = own.discard;
                continue;
            }
            match shares.iter_mut().find(|s| {
                s.binding == own.binding
                    && s.routing_domain == own.routing_domain
                    && s.body == own.body
            }) {
                Some(s) => s.recipients.push(i),
                None => shares.push(Share {
                    recipients: vec![i],
                    binding: own.binding,
                    body: own.body,
                    routing_domain: own.routing_domain,
                }),
            }
        }
        if shares.is_empty() {
            return Verdict::Discard(discarded.unwrap_or_else(discard_code));
        }
        if shares.len() == 1 && shares[0].recipients.len() == msg.recipients.len() {
            let s = shares.remove(0);
            msg.body = s.body;
            msg.binding = s.binding.clone();
            msg.routing_domain = s.routing_domain;
            return Verdict::Accept { binding: s.binding };
        }
        Verdict::Split(shares)
    }

    /// The per-recipient callouts on one recipient's message; a refusal code, if any.
    fn each_rcpt(&self, conn: &mut Conn, msg: &mut Message) -> Option<Code> {
        for c in Callout::EACH_RCPT {
            // The validate_data_spool phases do not fire for generated messages.
            if c == Callout::DataSpoolEachRcpt && msg.recv_method == inject::RecvMethod::Http {
                continue;
            }
            let code = self.phase(c, conn, msg, None);
            // set_binding cannot refuse: setting a code there is an error (Momentum forbids
            // it), and an error there keeps the binding chosen so far.
            if c != Callout::SetBinding && code.is_some() {
                return code;
            }
        }
        None
    }

    /// A delivery outcome, for `core_log_delivery_v1`, `core_log_transient_failure_v1` or
    /// `core_log_permanent_failure_v1` (`c`): `msg` has the message's id, sender, the one
    /// recipient and its binding; `note` is the reply (`msg:get_code()` gives it too), and a
    /// reply the script sets with `msg:set_code` is returned, to be logged instead. Errors
    /// are logged and counted; nothing is refused.
    pub fn log_event(
        &self,
        c: Callout,
        msg: &mut Message,
        domain: &str,
        now: u64,
        note: &Code,
    ) -> Option<Code> {
        if !self.has(c) {
            return None;
        }
        let inner = &self.inner;
        inner.stats.calls[c as usize].fetch_add(1, Ordering::Relaxed);
        let mut conn = Conn::default();
        let result = pool::with_state(inner, |state| {
            state.run_log(c, &mut conn, msg, domain, now, note)
        });
        result.unwrap_or_else(|e| {
            self.failed(c, &e);
            None
        })
    }

    /// A callout raised or ran past its budget: counted, and logged with its place.
    fn failed(&self, c: Callout, e: &mlua::Error) {
        self.inner.stats.errors[c as usize].fetch_add(1, Ordering::Relaxed);
        let error = crate::error::error_text(e);
        tracing::error!(callout = c.name(), %error, "policy script failed");
    }

    /// Only `validate_set_binding`, for a message already accepted (the console's `rebind`):
    /// the binding the script chooses now, `None` for the default binding. The acceptance
    /// callouts are not run again: the message is in the spool and cannot be refused.
    pub fn rebind(&self, conn: &mut Conn, msg: &mut Message) -> Option<Assigned> {
        let _ = self.phase(Callout::SetBinding, conn, msg, None);
        msg.binding.take()
    }

    /// Whether the script defines Momentum's `outbound_smtp_auth_config` (or the 4.2
    /// module's `outbound_smtp_auth_v0_config`).
    pub fn has_smtp_auth_config(&self) -> bool {
        self.has(Callout::SmtpAuthConfig) || self.has(Callout::SmtpAuthConfigV0)
    }

    /// Momentum's `outbound_smtp_auth_config(msg)` hook on a message about to be queued for
    /// delivery (`msg` has its recipients of one domain, its binding and the context it is
    /// given, with `outbound_smtp_auth_key` when the options set one). `msg.context` is left
    /// as the hook left it; an error is logged and counted, and leaves the context as it
    /// was.
    pub fn smtp_auth_config(&self, msg: &mut Message) {
        for c in [Callout::SmtpAuthConfig, Callout::SmtpAuthConfigV0] {
            if !self.has(c) {
                continue;
            }
            let before = msg.context.clone();
            let mut conn = Conn::default();
            if self.phase(c, &mut conn, msg, None).is_some() {
                msg.context = before;
            }
        }
    }

    /// Runs one phase in this thread's state. A script error becomes the phase's failure
    /// code; the error is logged with its location and counted.
    fn phase(
        &self,
        c: Callout,
        conn: &mut Conn,
        msg: &mut Message,
        arg: Option<&str>,
    ) -> Option<Code> {
        if !self.has(c) {
            return None;
        }
        let inner = &self.inner;
        inner.stats.calls[c as usize].fetch_add(1, Ordering::Relaxed);
        let result = pool::with_state(inner, |state| state.run(c, conn, msg, arg));
        match result {
            Ok(code) => code,
            Err(e) => {
                self.failed(c, &e);
                match c {
                    Callout::SetBinding | Callout::Dealloc => None,
                    Callout::Connect | Callout::Accept => Some(Code {
                        code: 421,
                        text: "4.3.0 Error: policy failure, try again later".into(),
                    }),
                    _ => Some(Code {
                        code: 451,
                        text: "4.3.0 Error: policy failure, try again later".into(),
                    }),
                }
            }
        }
    }
}

/// Errors for a configuration: kept here so callers do not need the config crate's types.
pub fn render(e: &LoadError, snapshot: &Snapshot) -> String {
    match e {
        LoadError::Config(diags) => bindery_config::diag::render_all(diags, &snapshot.tree.sources),
        LoadError::Script(s) => s.render(),
    }
}
