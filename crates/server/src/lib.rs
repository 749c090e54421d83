//! The bindery daemon: listeners, inbound connections, and reception into the spool.
//!
//! # Layout
//! - [`settings`]: the snapshot's options as typed values (globals, listeners, per-client).
//! - `listener`: accept loops with the connection cap and the spool-health gate.
//! - `connection`: the one place that reads and writes client sockets; drives the session.
//! - `reception`: the end-of-DATA policy (validate_data .. validate_set_binding), id,
//!   Received header, binding, durable store, log record, reply.
//! - [`mainlog`]: the JSON-lines log writer.
//! - [`tls`]: rustls configurations for STARTTLS.
//!
//! **Architecture Invariant:** the SMTP dialogue lives in `bindery-smtp`; this crate only moves
//! bytes and acts on the session's steps.

mod connection;
mod console;
pub mod control;
pub mod events;
pub mod guard;
pub mod http;
mod listener;
pub use bindery_delivery::eclog;
pub use bindery_delivery::mainlog;
pub mod adaptive;
pub mod audit;
pub mod bounces;
pub mod injected;
pub mod oob;
mod persist;
pub mod policy_dns;
pub mod privileges;
pub mod proxy;
mod reception;
pub mod sessions;
pub mod settings;
mod signing;
pub mod smtp_auth;
mod spill;
pub mod tls;
pub mod transmissions;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bindery_config::Snapshot;
use bindery_delivery::engine::{Engine, EngineConfig};
use bindery_delivery::resolver::{CachingResolver, HickoryResolver, Resolver};
use bindery_delivery::stats::Stats;
use bindery_policy::Policy;
use bindery_queue::{SystemClock, TokenBuckets};
use bindery_spool::{DiskSpool, IdGenerator, Spool, SpoolError};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::mainlog::MainLog;
use crate::settings::{Globals, ListenerPlan, esmtp_listeners};
use crate::tls::TlsCache;
use bindery_delivery::eclog::EcLogs;

/// Seconds since the Unix epoch: the time base of envelopes and the mainlog.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Replaces `path` with `bytes` so that a crash leaves the old file or the new one, never a
/// part: a temporary file beside it, fsync, rename, fsync of the folder. For `config
/// writeback` and `stats.json`.
pub(crate) fn write_durably(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file")
    })?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(&dir)?.sync_all()
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A configuration the daemon refuses; the text starts with FILE:LINE:COL where the
    /// error has a place (rendered diagnostics), else with `error:`.
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("spool: {0}")]
    Spool(#[from] SpoolError),
    #[error("TLS: {0}")]
    Tls(String),
    /// The `TLS_Client_CA` file could not be read (its own variant, so the error can point
    /// at that option's line rather than the certificate's).
    #[error("TLS_Client_CA {0}")]
    TlsClientCa(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// One configuration generation as the daemon uses it: the snapshot, what was derived from
/// it once, and the policy compiled for it. Replaced whole by `config set|unset|reload`.
pub struct Generation {
    pub snapshot: Arc<Snapshot>,
    pub globals: Globals,
    /// The Lua policy of this generation.
    pub policy: Policy,
    /// The enabled ESMTP listens, by name: a connection takes its listener's settings from
    /// the generation current when it was accepted.
    pub plans: Vec<Arc<ListenerPlan>>,
    /// The console and HTTP listeners, checked with the rest (a TCP console without a login
    /// is refused here, before anything opens).
    pub controls: Vec<control::ControlPlan>,
    pub https: Vec<http::HttpPlan>,
    /// The `ec_logger` and `bounce_logger` stanzas (opened at start only: their paths
    /// need a restart, as in Momentum).
    pub logs: bindery_delivery::eclog::LogPlans,
    /// The `inbound_audit` module, when configured.
    pub audit: Option<Arc<audit::InboundAudit>>,
    /// The `opendkim` stanzas, their keys read and checked; `None` without one.
    pub signers: Option<Arc<bindery_dkim::Signers>>,
    /// The SMTP AUTH password files of every ESMTP listener, read and checked.
    pub auth_stores: smtp_auth::Stores,
    /// The bindings of each group, for the Transmissions API's `ip_pool`.
    pub bindings: Arc<bindery_policy::choose::Bindings>,
    /// `bounce_classifier_override`, when configured, and the classifier its sources gave
    /// when this generation was built (checked like every other file a start reads).
    pub bounces: Option<(bounces::BouncePlan, Arc<bindery_bounce::Classifier>)>,
    /// Out-of-band bounces and feedback reports (`bounce_domains`, the `fbl` module).
    pub oob: Arc<oob::OobPlan>,
    /// The `adaptive` module's stanza, when loaded.
    pub adaptive: Option<adaptive::AdaptivePlan>,
    /// The `adaptive_sweep_rule` stanzas, checked.
    pub sweep_rules: Arc<bindery_delivery::sweep_rules::SweepRules>,
}

impl Generation {
    /// Counts `event` for `ip` in the inbound_audit module's monitors, if it is loaded.
    pub fn audit(&self, event: audit::Event, ip: std::net::IpAddr) {
        if let Some(a) = &self.audit {
            a.record(event, ip);
        }
    }
}

impl Generation {
    /// Derives everything from a snapshot and checks what a start would check: the policy
    /// loads, every listener's settings (TLS certificates included) resolve.
    /// The policy loads first: what its `init` sets with `msys.config` is part of the
    /// generation, so everything else is derived from the policy's snapshot.
    pub fn build(
        snapshot: Arc<Snapshot>,
        tls: &TlsCache,
        origin: Origin<'_>,
    ) -> Result<Generation, ServerError> {
        use bindery_control::daemon::Install;
        let snap = Arc::clone(&snapshot);
        let policy = match origin {
            Origin::Start(hosts) => Policy::load_hosted(snap, hosts),
            Origin::After(p, Install::Change) => Policy::continuing(snap, &p.policy),
            Origin::After(p, Install::Reload) => Policy::reloaded(snap, &p.policy),
        }
        .map_err(|e| ServerError::Config(bindery_policy::render(&e, &snapshot)))?;
        let snapshot = Arc::clone(policy.snapshot());
        let logs = bindery_delivery::eclog::plans(&snapshot)
            .map_err(|e| settings::located(&snapshot, e.span, e.message, Some(e.help)))?;
        settings::check_delay_dsn(&snapshot)?;
        settings::check_outbound_auth(&snapshot, policy.has_smtp_auth_config())?;
        let mut globals = Globals::from_snapshot(&snapshot);
        globals.record_rejections = logs.rejections();
        let plans: Vec<Arc<ListenerPlan>> = esmtp_listeners(&snapshot)?
            .into_iter()
            .map(Arc::new)
            .collect();
        let auth_stores = smtp_auth::plan(&snapshot, &globals.hostname)?;
        let bindings = Arc::new(bindery_policy::choose::Bindings::new(&snapshot));
        for plan in &plans {
            let unspecified = std::net::IpAddr::from([192, 0, 2, 0]);
            let env = settings::Env {
                tls,
                policy: &policy,
                auth: &auth_stores,
                spool_free: None,
            };
            settings::inbound(&snapshot, &globals, plan, unspecified, &env)?;
        }
        let controls = control::control_listeners(&snapshot)?;
        let https = http::http_listeners(&snapshot)?;
        let audit =
            audit::InboundAudit::plan(&snapshot, &policy.stats().audit_series)?.map(Arc::new);
        let signers = bindery_dkim::Signers::plan(&snapshot)
            .map_err(|e| settings::located(&snapshot, e.span, e.message, e.help.as_deref()))?
            .map(Arc::new);
        let bounces = match bounces::BouncePlan::of(&snapshot)? {
            Some(p) => {
                let c = p.load_checked(&snapshot, policy.datasources())?;
                Some((p, Arc::new(c)))
            }
            None => None,
        };
        let oob = Arc::new(oob::OobPlan::of(&snapshot)?);
        let adaptive = adaptive::AdaptivePlan::of(&snapshot)?;
        adaptive::check_warmup(&snapshot)?;
        adaptive::check_durations(&snapshot)?;
        let sweep_rules = Arc::new(
            bindery_delivery::sweep_rules::SweepRules::of(&snapshot)
                .map_err(|e| settings::located(&snapshot, e.span, e.message, e.help.as_deref()))?,
        );
        Ok(Generation {
            snapshot,
            globals,
            policy,
            plans,
            controls,
            https,
            logs,
            audit,
            signers,
            auth_stores,
            bindings,
            bounces,
            oob,
            adaptive,
            sweep_rules,
        })
    }

    pub fn plan(&self, name: &str) -> Option<&Arc<ListenerPlan>> {
        self.plans.iter().find(|p| p.name == name)
    }
}

/// Where a generation comes from.
pub enum Origin<'a> {
    /// The first: its policy reaches the daemon through these, and every later
    /// generation's policy inherits them.
    Start(bindery_policy::Hosts),
    /// After the generation in force, and why: the policy's counters and host carry on, and
    /// `init` makes its configuration changes again only on a reload.
    After(&'a Generation, bindery_control::daemon::Install),
}

/// Re-reads the configuration files for `config reload` (`true`: `Local_Changes_File` too)
/// and `config writeback` (`false`: the files alone). The binary supplies it: it knows the
/// main file, the node name and the search path. Errors come back rendered.
pub type Reload = Box<dyn Fn(bool) -> Result<bindery_config::ConfigTree, String> + Send + Sync>;

/// Where the policy's run-time `msys.config("set"|"unset")` goes: the console's own road
/// ([`bindery_control::change::apply`]) on the running daemon. It holds the daemon weakly
/// (the daemon holds the policy that holds this), and is connected once the daemon exists.
#[derive(Default)]
pub struct LiveConfig {
    daemon: std::sync::OnceLock<std::sync::Weak<Shared>>,
}

impl bindery_policy::ConfigHost for LiveConfig {
    fn change(
        &self,
        action: bindery_config::change::Action,
        words: &[String],
    ) -> Result<bindery_policy::HostChange, String> {
        let shared = self
            .daemon
            .get()
            .and_then(std::sync::Weak::upgrade)
            .ok_or("the daemon is not running")?;
        let applied = bindery_control::change::apply(&*shared, action, words)?;
        for n in &applied.notes {
            tracing::info!(note = %n, "configuration changed from a policy script");
        }
        Ok(bindery_policy::HostChange {
            message: applied.message,
            value: applied.value,
            snapshot: applied.snapshot,
        })
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        let shared = self.daemon.get()?.upgrade()?;
        Some(Arc::clone(&shared.current().snapshot))
    }
}

/// What every connection shares.
pub struct Shared {
    live: ArcSwap<Generation>,
    pub spool: Arc<dyn Spool>,
    pub ids: Arc<IdGenerator>,
    pub mainlog: Option<Arc<MainLog>>,
    /// Momentum's `@` logs; empty when no logger module is configured.
    pub eclogs: Arc<EcLogs>,
    pub tls: TlsCache,
    /// Delivery: every spooled message is handed to it.
    pub engine: Engine,
    pub stats: Arc<Stats>,
    /// DKIM signing statistics (`signing_stats`).
    pub signing: Arc<bindery_control::signing::SigningStats>,
    /// Logins and injections per SMTP user and API key (`injection summary`).
    pub injections: bindery_control::injections::Injections,
    /// Failed SMTP AUTH logins per client address.
    pub auth_lockout: bindery_auth::lockout::Lockout,
    /// Where `stats.json` lives: the spool folder of the first generation.
    pub spoolbase: std::path::PathBuf,
    pub reload: Option<Reload>,
    /// Serialises configuration changes, and lists the run-time changes made since the files
    /// were last read or written back (a reload drops them and says how many).
    pub changes: std::sync::Mutex<Vec<String>>,
    /// Delivery's DNS cache, for the console's `domain NAME`.
    pub resolver: Arc<CachingResolver>,
    pub disk: Arc<DiskSpool>,
    /// Open inbound SMTP sessions.
    pub inbound: std::sync::atomic::AtomicU64,
    /// `Listener_Sessions` / `Service_Sessions` budgets.
    pub sessions: Arc<sessions::Sessions>,
    /// Open sessions by listener and client, for the policy's session counts.
    pub peers: Arc<sessions::Peers>,
    /// Free bytes on the spool's file system, measured every second: a client's `SIZE=`
    /// larger than this gets 452 4.3.1.
    pub spool_free: Arc<std::sync::atomic::AtomicU64>,
    /// Delivery outcomes to the policy in force (its `core_log_*` callouts).
    pub events: Arc<events::PolicyEvents>,
    /// The bounce classifier in force (`bounce_classifier_override`).
    pub bounces: Arc<bindery_bounce::Live>,
    /// The fbl module's fbllog (opened at start: its path needs a restart).
    pub fbllog: Option<Arc<bindery_delivery::logfile::LogFile>>,
    /// Adaptive delivery's rules and book (`services.adaptive`).
    pub adaptive: Arc<bindery_adaptive::Live>,
}

impl Shared {
    /// The generation in force now.
    pub fn current(&self) -> Arc<Generation> {
        self.live.load_full()
    }

    /// Makes `snapshot` the running configuration if it passes every check a start makes;
    /// otherwise nothing changes and the error says why. On success, returns notes for the
    /// operator (options that need a restart, listeners that cannot change live).
    pub fn install(
        &self,
        snapshot: Snapshot,
        why: bindery_control::daemon::Install,
    ) -> Result<Vec<String>, String> {
        let old = self.current();
        let next = Generation::build(Arc::new(snapshot), &self.tls, Origin::After(&old, why))
            .map_err(|e| match e {
                ServerError::Config(text) => text,
                other => other.to_string(),
            })?;
        let snapshot = Arc::clone(&next.snapshot);
        let mut notes = Vec::new();
        for opt in bindery_config::change::restart_only(&old.snapshot.tree, &snapshot.tree) {
            notes.push(format!(
                "{} changed; it takes effect after a restart",
                opt.def().name
            ));
        }
        for p in &next.plans {
            if old.plan(&p.name).is_none() {
                notes.push(format!(
                    "listener {} is new; it opens after a restart",
                    p.name
                ));
            }
        }
        for p in &old.plans {
            if next.plan(&p.name).is_none() {
                notes.push(format!(
                    "listener {} was removed; it refuses connections until a restart closes it",
                    p.name
                ));
            }
        }
        tracing::info!(
            generation = snapshot.generation,
            scripts = next.policy.scripts().len(),
            "configuration installed"
        );
        self.events.install(next.policy.clone());
        self.bounces.store_arc(bounces::of(&next));
        self.adaptive
            .install((**next.policy.adaptive_rules()).clone());
        self.live.store(Arc::new(next));
        bindery_delivery::options::DeliveryOptions::apply_dns_ttl(&snapshot, &self.resolver);
        self.engine.reconfigure(snapshot);
        Ok(notes)
    }
}

/// A started daemon.
pub struct Running {
    /// `PidFile`, removed at a clean stop.
    pidfile: Option<privileges::Leftover>,
    shutdown: watch::Sender<bool>,
    alive: mpsc::Receiver<()>,
    shared: Arc<Shared>,
    disk: Arc<DiskSpool>,
}

/// Everything a start checks before it opens anything, as `bindery config check` runs it:
/// the policy loads, every listener's settings resolve (TLS certificates are read), a TCP
/// console has a login, and `resolv_conf` is readable and parses. `config check` and `run`
/// share this one function, so whatever `run` would refuse, `check` refuses too.
pub fn check(snapshot: Arc<Snapshot>) -> Result<Generation, ServerError> {
    let services = Services::new(&snapshot)?;
    preflight(snapshot, &TlsCache::default(), &services)
}

/// `Resolv_Conf`, read and parsed (none set: the system's resolv.conf, read by hickory).
fn resolv_conf(
    snap: &Snapshot,
) -> Result<Option<bindery_delivery::resolv_conf::ResolvConf>, ServerError> {
    let Some(path) = Globals::from_snapshot(snap).resolv_conf else {
        return Ok(None);
    };
    let at = snap
        .tree
        .scope(bindery_config::tree::ROOT)
        .setting(bindery_config::schema::option_id("resolv_conf"))
        .map(|s| s.span);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        settings::located(
            snap,
            at,
            format!("cannot read resolv_conf {}: {e}", path.display()),
            None,
        )
    })?;
    bindery_delivery::resolv_conf::parse(&path.display().to_string(), &text)
        .map(Some)
        .map_err(|e| ServerError::Config(e.to_string()))
}

/// The resolver `bindery policy test` gives `msys.dnsLookup`: the configuration's
/// `Resolv_Conf` servers, or the system's.
pub fn policy_dns(snap: &Snapshot) -> Result<Arc<policy_dns::PolicyDns>, ServerError> {
    Ok(Arc::new(policy_dns::PolicyDns::new(resolv_conf(snap)?)))
}

/// What the daemon gives the policy, made before the daemon (a script's `init` runs at
/// the first load) and connected to it once it runs.
pub struct Services {
    pub config: Arc<LiveConfig>,
    pub dns: Arc<policy_dns::PolicyDns>,
    pub peers: Arc<sessions::Peers>,
    pub injector: Arc<injected::DaemonInjector>,
    /// The bounce classifier in force, shared by delivery, the console and `msys.bounce`.
    pub bounces: Arc<bindery_bounce::Live>,
    /// Adaptive delivery's rules and book, shared by delivery, the console and the policy.
    pub adaptive: Arc<bindery_adaptive::Live>,
}

impl Services {
    pub fn new(snap: &Snapshot) -> Result<Services, ServerError> {
        Ok(Services {
            config: Arc::default(),
            dns: policy_dns(snap)?,
            peers: Arc::default(),
            injector: Arc::default(),
            bounces: Arc::default(),
            adaptive: Arc::default(),
        })
    }

    pub fn hosts(&self) -> bindery_policy::Hosts {
        bindery_policy::Hosts {
            config: Some(Arc::clone(&self.config) as Arc<dyn bindery_policy::ConfigHost>),
            dns: Some(Arc::clone(&self.dns) as Arc<dyn bindery_policy::dns::Dns>),
            sessions: Some(Arc::clone(&self.peers) as Arc<dyn bindery_policy::inject::LiveSessions>),
            injector: Some(Arc::clone(&self.injector) as Arc<dyn bindery_policy::inject::Injector>),
            fixed_time: None,
            bounces: Some(Arc::clone(&self.bounces)),
            adaptive: Some(Arc::clone(&self.adaptive)),
        }
    }
}

fn preflight(
    snapshot: Arc<Snapshot>,
    tls: &TlsCache,
    services: &Services,
) -> Result<Generation, ServerError> {
    let generation = Generation::build(snapshot, tls, Origin::Start(services.hosts()))?;
    // The Security stanza's user and groups must exist, and its Chroot folder (checked, not
    // yet used).
    privileges::wanted(&generation.snapshot)?;
    privileges::chroot_dir(&generation.snapshot)?;
    Ok(generation)
}

/// Writes `PidFile` when the configuration sets it (Momentum's default path, which bindery
/// does not write unless asked, is `/var/run/ecelerity.pid`).
fn pid_file(snap: &Snapshot) -> Result<Option<privileges::Leftover>, ServerError> {
    let root = snap.tree.scope(bindery_config::tree::ROOT);
    let Some(st) = root.setting(bindery_config::schema::option_id("PidFile")) else {
        return Ok(None);
    };
    let bindery_config::value::Value::Path(p) = &st.value else {
        return Ok(None);
    };
    let path = std::path::PathBuf::from(p);
    std::fs::write(&path, format!("{}\n", std::process::id())).map_err(|e| {
        settings::located(
            snap,
            Some(st.span),
            format!("cannot write PidFile {p}: {e}"),
            None,
        )
    })?;
    Ok(Some(privileges::Leftover::new(path)))
}

/// Opens the spool, recovers it, binds every listener and starts serving. `reload` re-reads
/// the configuration files for `config reload` (none: reload is refused).
pub async fn start(
    snapshot: Arc<Snapshot>,
    reload: Option<Reload>,
) -> Result<Running, ServerError> {
    let tls = TlsCache::default();
    let services = Services::new(&snapshot)?;
    // Everything `config check` checks, before anything opens: a broken configuration must
    // not half-start a daemon.
    let mut generation = preflight(snapshot, &tls, &services)?;
    services.bounces.store_arc(bounces::of(&generation));
    // `Resolv_Conf` was read once, for the policy's resolver: delivery's asks the same.
    let dns = services.dns.conf().cloned();
    let snapshot = Arc::clone(&generation.snapshot);
    if !generation.policy.scripts().is_empty() {
        tracing::info!(scripts = generation.policy.scripts().len(), "policy loaded");
        for w in generation.policy.warnings() {
            tracing::warn!("{}", w.trim_end());
        }
    }
    // Every listener is bound before any is served or announced: one that cannot bind
    // (a port in use) stops the start with nothing half-open. They are bound first, before
    // the spool opens, so that `Security`'s drop from root comes before any spool file or
    // folder is made: those then belong to the user the daemon runs as. Only the spool's
    // own folder is made before (the default console socket is in it), and handed over.
    let who = privileges::wanted(&snapshot)?;
    let jail = privileges::chroot_dir(&snapshot)?;
    let spoolbase = privileges::inside(jail.as_deref(), &generation.globals.spoolbase);
    privileges::make_spoolbase(&spoolbase, who.as_ref())?;
    let mut bound = Vec::new();
    for plan in &generation.plans {
        bound.push(bind_tcp(plan.addr).await?);
    }
    let mut consoles = Vec::new();
    for plan in generation.controls.clone() {
        consoles.push(control::bind(plan).await?);
    }
    let mut https = Vec::new();
    for plan in generation.https.clone() {
        https.push(http::bind(plan).await?);
    }
    // `PidFile` (when set): written while still root, as Momentum writes its own.
    let pidfile = pid_file(&snapshot)?;
    // The descriptor limit is raised while still root: the hard limit may be
    // out of reach once privileges are gone.
    let nofile = guard::raise_nofile();
    // The resolver reads the system's resolv.conf (when no `Resolv_Conf` was read) as it is
    // made: before the chroot.
    let resolver = resolver(dns.as_ref())?;
    services
        .dns
        .start()
        .map_err(|e| ServerError::Config(e.to_string()))?;
    if let Some(dir) = &jail {
        privileges::enter_chroot(dir)?;
        tracing::info!(root = %dir.display(), "chroot");
    }
    if let Some(who) = who {
        privileges::drop_to(&who)?;
        tracing::info!(user = %who.user, uid = %who.uid, gid = %who.gid, "privileges dropped");
    }
    let globals = &generation.globals;
    let base = globals.spoolbase.clone();
    let (mode, method) = (globals.spool_mode, globals.spool_sync);
    let disk = tokio::task::spawn_blocking(move || DiskSpool::open(&base, mode, method))
        .await
        .map_err(|e| ServerError::Config(e.to_string()))??;
    let disk = Arc::new(disk);
    let scan = Arc::clone(&disk);
    let recovered = tokio::task::spawn_blocking(move || scan.recover())
        .await
        .map_err(|e| ServerError::Config(e.to_string()))??;
    for q in &recovered.quarantined {
        tracing::warn!(path = %q.path.display(), reason = %q.reason, "spool file quarantined");
    }
    tracing::info!(
        messages = recovered.messages.len(),
        quarantined = recovered.quarantined.len(),
        spool = %globals.spoolbase.display(),
        "spool recovered"
    );
    let mainlog = match &globals.mainlog {
        Some(p) => Some(Arc::new(MainLog::open(p).map_err(|e| ServerError::Io {
            what: format!("cannot open mainlog {}", p.display()),
            source: e,
        })?)),
        None => None,
    };
    let eclogs = Arc::new(EcLogs::open(&generation.logs).map_err(|e| ServerError::Io {
        what: "cannot open a Momentum log (ec_logger, bounce_logger)".into(),
        source: e,
    })?);
    eclogs.install();
    eclogs.panic(
        unix_now(),
        &format!("bindery {} starting", env!("CARGO_PKG_VERSION")),
    );
    let fbllog = oob::open_fbllog(&generation.oob)?;
    let stats = Arc::new(Stats::new(unix_now()));
    let signing = Arc::default();
    persist::restore(&stats, &signing, &globals.spoolbase);
    // Adaptive delivery's book, as the last run left it, kept from now on at every change.
    let book = adaptive::load(&globals.spoolbase)?;
    services.adaptive.update(|b| {
        *b = book;
        ((), true)
    });
    adaptive::keep(&services.adaptive, &globals.spoolbase);
    services
        .adaptive
        .install((**generation.policy.adaptive_rules()).clone());
    let spool = Arc::clone(&disk) as Arc<dyn Spool>;
    let ids = Arc::new(IdGenerator::new());
    bindery_delivery::options::DeliveryOptions::apply_dns_ttl(&snapshot, &resolver);
    let events = Arc::new(events::PolicyEvents::new(generation.policy.clone()));
    let engine = start_engine(
        &snapshot,
        globals,
        &spool,
        &ids,
        (
            &mainlog,
            &eclogs,
            Arc::clone(&events) as Arc<dyn bindery_delivery::events::Events>,
        ),
        (&stats, &resolver, &services, &generation.oob),
    )?;
    for env in recovered.messages {
        engine.enqueue(env);
    }
    // Descriptors: the soft limit goes up to the hard one, and a connection cap the limit
    // cannot meet is lowered (clients then get 421 4.7.0, not a session that fails at the
    // end of DATA for want of a spool file) and said so.
    if let Some(limit) = nofile {
        tracing::info!(nofile = limit, "descriptor limit");
        for plan in &mut generation.plans {
            let cap = guard::smtp_cap(plan.concurrency, limit);
            if cap < plan.concurrency {
                tracing::warn!(
                    listen = %plan.name,
                    concurrency = plan.concurrency,
                    nofile = limit,
                    lowered_to = cap,
                    "Concurrency cannot be met under the descriptor limit: raise the hard \
                     limit (ulimit -Hn, systemd LimitNOFILE=) or lower Concurrency"
                );
                Arc::make_mut(plan).concurrency = cap;
            }
        }
        // Outbound connections too: past the descriptors there are, a connect fails and
        // defers its mail; under this cap it waits for a place like under any other.
        let inbound = generation.plans.iter().map(|p| p.concurrency).sum();
        let cap = guard::outbound_cap(limit, inbound);
        if engine.limit_connections(cap) {
            tracing::warn!(
                nofile = limit,
                outbound = cap,
                "Server_Max_Outbound_Connections (with its reserve) cannot be met under the \
                 descriptor limit: outbound connections are capped lower; raise the hard \
                 limit (ulimit -Hn, systemd LimitNOFILE=)"
            );
        }
    }
    let esmtp: Vec<_> = generation
        .plans
        .clone()
        .into_iter()
        .zip(bound)
        .map(|(plan, (listener, local))| (plan, listener, local))
        .collect();
    let shared = Arc::new(Shared {
        spoolbase: globals.spoolbase.clone(),
        live: ArcSwap::new(Arc::new(generation)),
        events,
        spool,
        ids,
        mainlog,
        eclogs,
        tls,
        engine,
        stats,
        signing,
        injections: Default::default(),
        auth_lockout: Default::default(),
        reload,
        changes: std::sync::Mutex::new(Vec::new()),
        resolver,
        spool_free: Arc::new(std::sync::atomic::AtomicU64::new(
            disk.free_bytes().unwrap_or(u64::MAX),
        )),
        disk: Arc::clone(&disk),
        inbound: std::sync::atomic::AtomicU64::new(0),
        sessions: Arc::default(),
        peers: Arc::clone(&services.peers),
        bounces: Arc::clone(&services.bounces),
        adaptive: Arc::clone(&services.adaptive),
        fbllog,
    });
    tokio::spawn(bounces::refresh(Arc::downgrade(&shared)));
    tokio::spawn(adaptive::sweeps(Arc::downgrade(&shared)));
    tokio::spawn(adaptive::bounce_sweeps(Arc::downgrade(&shared)));
    let _ = services.config.daemon.set(Arc::downgrade(&shared));
    services.injector.start(Arc::downgrade(&shared));
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (alive_tx, alive) = mpsc::channel::<()>(1);
    for (plan, listener, local) in esmtp {
        tracing::info!(listen = %plan.name, addr = %local, "listening (ESMTP)");
        tokio::spawn(listener::accept_loop(
            Arc::clone(&shared),
            plan.name.clone(),
            listener,
            shutdown_rx.clone(),
            alive_tx.clone(),
        ));
    }
    // While the spool is failing, try a small write every second; success reopens the doors.
    let prober = Arc::clone(&disk);
    let mut stop = shutdown_rx.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
            if !prober.healthy() {
                let p = Arc::clone(&prober);
                let ok = tokio::task::spawn_blocking(move || p.probe())
                    .await
                    .unwrap_or(false);
                if ok {
                    tracing::info!("spool writable again");
                }
            }
        }
    });
    // The console and metrics are announced after the ESMTP listeners, so the first address
    // in the log is still the SMTP one.
    for bound in consoles {
        control::serve(Arc::clone(&shared), bound, shutdown_rx.clone());
    }
    for bound in https {
        http::serve(Arc::clone(&shared), bound, shutdown_rx.clone());
    }
    tokio::spawn(persist::ticker(Arc::clone(&shared), shutdown_rx.clone()));
    // inbound_audit: old windows dropped every `maintenance_interval` (of the generation in
    // force each time).
    let sweeper = Arc::clone(&shared);
    let mut stop = shutdown_rx.clone();
    tokio::spawn(async move {
        loop {
            let audit = sweeper.current().audit.clone();
            let every = audit
                .as_ref()
                .map_or(Duration::from_secs(300), |a| a.maintenance);
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            if let Some(a) = sweeper.current().audit.clone() {
                a.sweep();
            }
        }
    });
    Ok(Running {
        pidfile,
        shutdown,
        alive,
        shared,
        disk,
    })
}

/// Binds a TCP listener; returns it with the address it got (the port, when asked for 0).
pub(crate) async fn bind_tcp(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ServerError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    Ok((listener, local))
}

/// The resolver delivery uses: the servers of `resolv_conf` (read by [`preflight`]), else the
/// system's, behind a TTL cache.
fn resolver(
    dns: Option<&bindery_delivery::resolv_conf::ResolvConf>,
) -> Result<Arc<CachingResolver>, ServerError> {
    let fail = |e: bindery_delivery::resolver::DnsError| ServerError::Config(e.to_string());
    let inner = match dns {
        Some(conf) => HickoryResolver::with_conf(conf).map_err(fail)?,
        None => HickoryResolver::system().map_err(fail)?,
    };
    Ok(Arc::new(CachingResolver::new(
        Arc::new(inner),
        Arc::new(SystemClock),
    )))
}

fn start_engine(
    snapshot: &Arc<Snapshot>,
    globals: &Globals,
    spool: &Arc<dyn Spool>,
    ids: &Arc<IdGenerator>,
    // Where outcomes go: the JSON mainlog, Momentum's logs and the policy's log callouts.
    (mainlog, eclogs, events): (
        &Option<Arc<MainLog>>,
        &Arc<EcLogs>,
        Arc<dyn bindery_delivery::events::Events>,
    ),
    // What the engine shares with the console and the policy: the counters, the DNS cache
    // and (in `services`) the bounce classifier in force; and the out-of-band settings of
    // the first generation (the fbl module's mark needs a restart to change, as in Momentum).
    (stats, resolver, services, oob): (
        &Arc<Stats>,
        &Arc<CachingResolver>,
        &Services,
        &oob::OobPlan,
    ),
) -> Result<Engine, ServerError> {
    let tls = Arc::new(
        bindery_delivery::tls::ClientConfigs::new().map_err(|e| ServerError::Tls(e.to_string()))?,
    );
    Ok(Engine::start(EngineConfig {
        snapshot: Arc::clone(snapshot),
        stats: Arc::clone(stats),
        hostname: globals.hostname.clone(),
        spool: Arc::clone(spool),
        resolver: Arc::clone(resolver) as Arc<dyn Resolver>,
        clock: Arc::new(SystemClock),
        throttles: Arc::new(TokenBuckets::default()),
        mainlog: mainlog.clone(),
        eclogs: Arc::clone(eclogs),
        ids: Arc::clone(ids),
        prohibited: globals.prohibited_hosts.clone(),
        tls,
        report_binding: (
            globals.binding.as_str().into(),
            globals.binding_group.as_str().into(),
        ),
        events: Some(events),
        bounces: Arc::clone(&services.bounces),
        fbl_header: oob.mark_header(),
        adaptive: Some(Arc::clone(&services.adaptive)),
    }))
}

impl Running {
    /// Graceful stop: no new connections; idle sessions get 421; messages in DATA may finish
    /// (within a grace period) and get their reply; then the spool and log are closed.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        // Every connection task holds a sender; when the last one ends, recv returns None.
        let drained = tokio::time::timeout(Duration::from_secs(60), async {
            // The accept loops hold senders too, and exit on the same signal.
            while self.alive.recv().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("connections still open after 60 s; stopping anyway");
        }
        // Connections finish the transaction in flight; a message cut short is still in the
        // spool and goes again after the restart.
        self.shared.engine.shutdown(Duration::from_secs(5)).await;
        let disk = Arc::clone(&self.disk);
        let _ = tokio::task::spawn_blocking(move || disk.close()).await;
        if let Some(log) = &self.shared.mainlog {
            log.close();
        }
        self.shared.eclogs.close();
        persist::save(
            &self.shared.stats,
            &self.shared.signing,
            &self.shared.spoolbase,
        );
        if let Some(p) = &self.pidfile {
            p.remove();
        }
        tracing::info!("stopped");
    }

    /// What the console and the metrics endpoint work on.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}
