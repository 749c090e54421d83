//! What the daemon reads from a configuration snapshot, turned into plain typed values once,
//! so the connection code never touches option names.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bindery_config::inbound::{self, ListenSite};
use bindery_config::schema::{OptionId, ScopeKind};
use bindery_config::snapshot::{BindingId, Snapshot, default_value};
use bindery_config::value::{ListenAddr, Value};
use bindery_policy::{Callout, Policy};
use bindery_smtp::SessionConfig;
use bindery_smtp::relay::DomainSet;
use bindery_smtp::session::Checks;
use bindery_spool::SyncMethod;

use crate::ServerError;
use crate::tls::TlsCache;

/// A configuration error found while deriving settings, rendered as the parser renders its
/// own: FILE:LINE:COL, the line, a caret at `span`, and a help line.
pub fn located(
    snap: &Snapshot,
    span: Option<bindery_config::span::Span>,
    message: String,
    help: Option<&str>,
) -> ServerError {
    let Some(span) = span else {
        return ServerError::Config(format!("error: {message}"));
    };
    let mut d = bindery_config::diag::Diagnostic::error(span, message);
    if let Some(h) = help {
        d = d.with_help(h);
    }
    ServerError::Config(d.render(&snap.tree.sources))
}

/// A module stanza's option: the value set there and its line, or the option's default
/// and no line.
pub fn stanza_option(
    scope: &bindery_config::tree::Scope,
    name: &'static str,
) -> (Option<Value>, Option<bindery_config::span::Span>) {
    let o = opt(name);
    match scope.setting(o) {
        Some(s) => (Some(s.value.clone()), Some(s.span)),
        None => (default_value(o), None),
    }
}

/// Where a `Listen` stanza was opened, for its errors.
pub fn listen_span(snap: &Snapshot, site: &ListenSite) -> Option<bindery_config::span::Span> {
    snap.tree.scope(site.listen).opened.first().copied()
}

/// The connection cap when `Concurrency` is 0 (unset).
pub const DEFAULT_CONCURRENCY: usize = 10_000;

use bindery_config::schema::option_id as opt;

/// The options read for every connection, looked up by name once per process instead of once
/// per connection.
struct InboundOptions {
    relay_hosts: OptionId,
    open_relay: OptionId,
    banner_hostname: OptionId,
    tls_certificate: OptionId,
    tls_key: OptionId,
    tls_client_ca: OptionId,
    tls_verify_mode: OptionId,
    tls_protocols: OptionId,
    tls_verified_peer_can_relay: OptionId,
    max_message_size: OptionId,
    max_recipients_per_message: OptionId,
    max_receptions_per_connection: OptionId,
    max_recipients_per_connection: OptionId,
    loose_paths: OptionId,
    /// Looked at for each RCPT when some `Blackhole` is `inline`.
    blackhole: OptionId,
    idle_time: OptionId,
    session_timeout: OptionId,
    context: OptionId,
    postmaster_address: OptionId,
    require_ehlo: OptionId,
    allow_null_sender: OptionId,
    allow_ip_literal: OptionId,
    relay_senders: OptionId,
    static_banner: OptionId,
    unqualified_sender: OptionId,
    unqualified_recipient: OptionId,
    received_hostname: OptionId,
    listener_sessions: OptionId,
    service_sessions: OptionId,
}

static INBOUND: LazyLock<InboundOptions> = LazyLock::new(|| InboundOptions {
    relay_hosts: opt("relay_hosts"),
    open_relay: opt("open_relay"),
    banner_hostname: opt("banner_hostname"),
    tls_certificate: opt("tls_certificate"),
    tls_key: opt("tls_key"),
    tls_client_ca: opt("tls_client_ca"),
    tls_verify_mode: opt("tls_verify_mode"),
    tls_protocols: opt("tls_protocols"),
    tls_verified_peer_can_relay: opt("tls_verified_peer_can_relay"),
    max_message_size: opt("max_message_size"),
    max_recipients_per_message: opt("max_recipients_per_message"),
    max_receptions_per_connection: opt("max_receptions_per_connection"),
    max_recipients_per_connection: opt("max_recipients_per_connection"),
    loose_paths: opt("allow_trailing_whitespace_in_commands"),
    blackhole: opt("blackhole"),
    idle_time: opt("idle_time"),
    session_timeout: opt("session_timeout"),
    context: opt("context"),
    postmaster_address: opt("postmaster_address"),
    require_ehlo: opt("require_ehlo"),
    allow_null_sender: opt("allow_null_envelope_sender"),
    allow_ip_literal: opt("allow_ip_literal"),
    relay_senders: opt("relay_for_sending_domains"),
    static_banner: opt("static_banner"),
    unqualified_sender: opt("domain_for_unqualified_sender_address"),
    unqualified_recipient: opt("domain_for_unqualified_recipient_addresses"),
    received_hostname: opt("received_hostname"),
    listener_sessions: opt("listener_sessions"),
    service_sessions: opt("service_sessions"),
});

fn global(snap: &Snapshot, name: &'static str) -> Option<Value> {
    let o = opt(name);
    snap.global(o).cloned().or_else(|| default_value(o))
}

/// What `default_binding` says to do with messages no policy assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultBinding {
    Normal,
    Suspended,
    /// Refuse them with 451.
    None,
}

/// Global settings.
#[derive(Clone, Debug)]
pub struct Globals {
    pub hostname: String,
    pub spoolbase: PathBuf,
    pub spool_mode: u32,
    pub spool_sync: SyncMethod,
    pub mainlog: Option<PathBuf>,
    pub default_binding: DefaultBinding,
    pub binding: String,
    pub binding_group: String,
    pub relay_domains: DomainSet,
    /// `resolv_conf`: the name servers delivery asks; `None` for the system's.
    pub resolv_conf: Option<PathBuf>,
    /// `prohibited_hosts`: addresses delivery never connects to.
    pub prohibited_hosts: Vec<ipnet::IpNet>,
    /// An `ec_logger` writes a rejectlog: sessions keep their refusals for it. Set by
    /// `Generation::build` from the logger plans (`LogPlans::rejections`).
    pub record_rejections: bool,
    /// Some `Blackhole` is `true` or `inline` (global or domain scope): RCPT is checked
    /// against it ([`blackholed_at_rcpt`]).
    pub blackhole_inline: bool,
}

impl Globals {
    pub fn from_snapshot(snap: &Snapshot) -> Globals {
        let hostname = match global(snap, "hostname") {
            Some(Value::Str(h)) => h,
            _ => gethostname::gethostname().to_string_lossy().into_owned(),
        };
        // Both have schema defaults, which `global` returns when they are unset; the other
        // arms only satisfy the match.
        let spoolbase = match global(snap, "spoolbase") {
            Some(Value::Path(p)) => PathBuf::from(p),
            _ => PathBuf::new(),
        };
        let spool_mode = match global(snap, "spool_mode") {
            Some(Value::Mode(m)) => m,
            _ => 0,
        };
        let spool_sync = match global(snap, "spool_sync") {
            Some(Value::Word(w)) if w.eq_ignore_ascii_case("syncfs") => SyncMethod::Syncfs,
            _ => SyncMethod::Fsync,
        };
        let mainlog = match global(snap, "mainlog") {
            Some(Value::Path(p)) => Some(PathBuf::from(p)),
            _ => None,
        };
        let default_binding = match global(snap, "default_binding") {
            Some(Value::Word(w)) if w.eq_ignore_ascii_case("none") => DefaultBinding::None,
            Some(Value::Word(w)) if w.eq_ignore_ascii_case("suspended") => {
                DefaultBinding::Suspended
            }
            _ => DefaultBinding::Normal,
        };
        // `bounce_domains` are relay domains too: their mail is taken in to be read as
        // bounces (Momentum's page: "will treat the listed domains as relay domains").
        let mut relayed: Vec<String> = Vec::new();
        for name in ["relay_domains", "bounce_domains"] {
            if let Some(Value::Domains(d)) = global(snap, name) {
                relayed.extend(d);
            }
        }
        let relay_domains = DomainSet::new(relayed);
        let resolv_conf = match global(snap, "resolv_conf") {
            Some(Value::Path(p)) => Some(PathBuf::from(p)),
            _ => None,
        };
        let prohibited_hosts = match global(snap, "prohibited_hosts") {
            Some(Value::Cidrs(c)) => c,
            _ => Vec::new(),
        };
        let b = BindingId::DEFAULT;
        let blackhole = INBOUND.blackhole;
        let blackhole_inline = snap.tree.scope_ids().any(|id| {
            matches!(
                snap.tree.scope(id).setting(blackhole).map(|s| &s.value),
                Some(Value::Word(w)) if is_inline(w)
            )
        });
        Globals {
            blackhole_inline,
            // The logger stanzas decide it: `Generation::build` sets it from their plans.
            record_rejections: false,
            resolv_conf,
            prohibited_hosts,
            hostname,
            spoolbase,
            spool_mode,
            spool_sync,
            mainlog,
            default_binding,
            binding: snap.binding_name(b).to_string(),
            binding_group: snap.group_name(snap.group_of(b)).to_string(),
            relay_domains,
        }
    }
}

/// `generate_delay_dsn = true` does something only with the `delay_dsn` module loaded
/// (Momentum's ref-generate-delay-dsn page): without its stanza, the first such setting is an
/// error rather than notices that never come.
pub fn check_delay_dsn(snap: &Snapshot) -> Result<(), ServerError> {
    let tree = &snap.tree;
    if tree
        .children_of(bindery_config::tree::ROOT, ScopeKind::DelayDsn)
        .next()
        .is_some()
    {
        return Ok(());
    }
    let on = opt("generate_delay_dsn");
    let first = tree
        .scope_ids()
        .filter_map(|id| tree.scope(id).setting(on))
        .find(|st| matches!(st.value, Value::Bool(true)));
    match first {
        None => Ok(()),
        Some(st) => Err(located(
            snap,
            Some(st.span),
            "generate_delay_dsn needs Momentum's delay_dsn module, which is not loaded".into(),
            Some("add `delay_dsn \"delay_dsn1\" { }` at the top level"),
        )),
    }
}

/// The `Outbound_SMTP_AUTH_*` options need Momentum's `outbound_smtp_auth` module, as in
/// Momentum, and a type needs its user and password: each scope that sets one is checked
/// along its own fallback (binding, its group, global; or domain, global), so a login that
/// could never be made is refused at its line rather than deferring mail at run time. With
/// the policy's `outbound_smtp_auth_config` hook (`hook`), the user and password may come
/// from it instead; without it, `Outbound_SMTP_AUTH_Key`, which only the hook reads, would
/// do nothing and is refused.
pub fn check_outbound_auth(snap: &Snapshot, hook: bool) -> Result<(), ServerError> {
    let tree = &snap.tree;
    let [ty, user, pass, key] = [
        "outbound_smtp_auth_type",
        "outbound_smtp_auth_user",
        "outbound_smtp_auth_pass",
        "outbound_smtp_auth_key",
    ]
    .map(opt);
    let loaded = tree
        .children_of(bindery_config::tree::ROOT, ScopeKind::OutboundSmtpAuth)
        .next()
        .is_some();
    for id in tree.scope_ids() {
        let scope = tree.scope(id);
        let Some(st) = [ty, user, pass, key].iter().find_map(|&o| scope.setting(o)) else {
            continue;
        };
        if !loaded {
            return Err(located(
                snap,
                Some(st.span),
                format!(
                    "{} needs Momentum's outbound_smtp_auth module, which is not loaded",
                    st.option.def().name
                ),
                Some("add `outbound_smtp_auth { }` at the top level"),
            ));
        }
        if let Some(k) = scope.setting(key)
            && !hook
        {
            return Err(located(
                snap,
                Some(k.span),
                "Outbound_SMTP_AUTH_Key is read only by the policy's outbound_smtp_auth_config hook, and the policy defines none".into(),
                Some("define `function mod:outbound_smtp_auth_config(msg)` in a policy script, or set Outbound_SMTP_AUTH_User and Outbound_SMTP_AUTH_Pass here"),
            ));
        }
        if hook {
            continue;
        }
        // The scope's own chain: itself, its parents (a binding's group), then global.
        let lineage = tree.lineage(id);
        let find = |o: OptionId| {
            lineage
                .iter()
                .rev()
                .chain([&bindery_config::tree::ROOT])
                .find_map(|&s| tree.scope(s).setting(o))
        };
        if let Some(t) = find(ty) {
            for (o, name) in [
                (user, "Outbound_SMTP_AUTH_User"),
                (pass, "Outbound_SMTP_AUTH_Pass"),
            ] {
                if find(o).is_none() {
                    return Err(located(
                        snap,
                        Some(t.span),
                        format!("Outbound_SMTP_AUTH_Type is set but {name} is not, here or above"),
                        Some("set the user and the password beside the type"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// `Blackhole = true` is `inline` (Momentum's ref-blackhole page).
fn is_inline(word: &str) -> bool {
    word.eq_ignore_ascii_case("inline") || word.eq_ignore_ascii_case("true")
}

/// Whether mail to `domain` is refused at RCPT: its `Blackhole` (domain, then global: a
/// recipient has no binding yet, and the configuration check refuses `inline` in a binding)
/// is `true` or `inline`.
pub fn blackholed_at_rcpt(snap: &Snapshot, domain: &str) -> bool {
    let dk = snap.domain_key(domain);
    matches!(
        snap.chain(None, None, Some(&dk))
            .get(INBOUND.blackhole)
            .map(|r| r.value),
        Some(Value::Word(w)) if is_inline(w)
    )
}

/// One socket to listen on.
#[derive(Clone, Debug)]
pub struct ListenerPlan {
    pub site: ListenSite,
    /// As written in the configuration, for logs.
    pub name: String,
    pub addr: SocketAddr,
    pub concurrency: usize,
    /// `Use_SSL`: TLS from the first byte (port 465), before the greeting.
    pub use_ssl: bool,
    /// `Proxy_Protocol`: every connection starts with a PROXY header, read within this
    /// (`Proxy_Protocol_Timeout`; `Some(None)` for no limit).
    pub proxy: Option<Option<Duration>>,
}

/// One `Listen` of a listener that is not disabled: where it is, the scopes its options
/// fall back through (Listen > listener > global), and its name as written.
pub struct EnabledListen {
    pub site: ListenSite,
    pub chain: Vec<bindery_config::tree::ScopeId>,
    pub name: String,
}

/// Every `Listen` of the listeners of `kind` except those with `Enable = false` (logged).
pub fn enabled_listens(snap: &Snapshot, kind: ScopeKind) -> Vec<EnabledListen> {
    let tree = &snap.tree;
    inbound::listens(tree, kind)
        .into_iter()
        .filter_map(|site| {
            let chain = inbound::chain(tree, &site, None);
            let name = tree.scope(site.listen).name.clone().unwrap_or_default();
            if matches!(
                inbound::resolve(tree, &chain, opt("enable")),
                Some(Value::Bool(false))
            ) {
                tracing::info!(listen = %name, "listener disabled (enable = false)");
                return None;
            }
            Some(EnabledListen { site, chain, name })
        })
        .collect()
}

/// A TCP listen address as a socket address (`:25` is every IPv4 address); `None` for a
/// Unix socket path.
pub fn tcp_addr(addr: &ListenAddr) -> Option<SocketAddr> {
    match addr {
        ListenAddr::Tcp { ip, port } => Some(socket_addr(*ip, *port)),
        ListenAddr::Unix(_) => None,
    }
}

/// A listen's IP and port; no IP is every IPv4 address.
pub fn socket_addr(ip: Option<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port)
}

/// A listener's `Concurrency` along its `Listen` chain; 0 or unset means `default_cap`.
fn concurrency(
    tree: &bindery_config::ConfigTree,
    chain: &[bindery_config::tree::ScopeId],
    default_cap: usize,
) -> usize {
    match inbound::resolve(tree, chain, opt("concurrency")) {
        Some(Value::Int(n)) if n > 0 => n as usize,
        _ => default_cap,
    }
}

/// A side listener's (HTTP, console) connection cap and idle time, from its `Listen` chain:
/// `Concurrency` (0 or unset: `default_cap`) and `Idle_Time` (its schema default when unset).
pub fn side_limits(
    snap: &Snapshot,
    chain: &[bindery_config::tree::ScopeId],
    default_cap: usize,
) -> (usize, Duration) {
    let tree = &snap.tree;
    let cap = concurrency(tree, chain, default_cap);
    let idle_time = opt("idle_time");
    let idle = match inbound::resolve(tree, chain, idle_time).or_else(|| default_value(idle_time)) {
        Some(Value::Seconds(s)) => s.max(1),
        _ => 300,
    };
    (cap, Duration::from_secs(idle))
}

/// Every enabled `ESMTP_Listener` `Listen` address.
pub fn esmtp_listeners(snap: &Snapshot) -> Result<Vec<ListenerPlan>, ServerError> {
    let tree = &snap.tree;
    let mut out = Vec::new();
    for EnabledListen { site, chain, name } in enabled_listens(snap, ScopeKind::EsmtpListener) {
        let Some(addr) = site.addr.as_ref().and_then(tcp_addr) else {
            return Err(located(
                snap,
                listen_span(snap, &site),
                format!("ESMTP_Listener Listen \"{name}\" is not a TCP address"),
                Some("an ESMTP listener listens on \"IP:PORT\" or \":PORT\""),
            ));
        };
        let concurrency = concurrency(tree, &chain, DEFAULT_CONCURRENCY);
        let flag = |name: &'static str| {
            matches!(
                inbound::resolve(tree, &chain, opt(name)),
                Some(Value::Bool(true))
            )
        };
        let use_ssl = flag("use_ssl");
        if use_ssl && inbound::resolve(tree, &chain, opt("tls_certificate")).is_none() {
            return Err(located(
                snap,
                listen_span(snap, &site),
                format!("ESMTP_Listener Listen \"{name}\" has Use_SSL but no certificate"),
                Some("set TLS_Certificate and TLS_Key in the Listen or its listener"),
            ));
        }
        let proxy = flag("proxy_protocol").then(|| {
            let t = opt("proxy_protocol_timeout");
            match inbound::resolve(tree, &chain, t).or_else(|| default_value(t)) {
                Some(Value::Seconds(0)) => None,
                Some(Value::Seconds(s)) => Some(Duration::from_secs(s)),
                _ => Some(Duration::from_secs(60)),
            }
        });
        out.push(ListenerPlan {
            site,
            name,
            addr,
            concurrency,
            use_ssl,
            proxy,
        });
    }
    Ok(out)
}

/// Everything one inbound connection needs, resolved for its client address.
pub struct Inbound {
    pub session: Arc<SessionConfig>,
    /// How long to wait for the next command (`Idle_Time`).
    pub idle: Duration,
    /// The longest the whole connection may last (`Session_Timeout`).
    pub lifetime: Duration,
    pub tls: Option<crate::tls::ServerTls>,
    /// The listener's `context = [ k = v ]`: seeds the policy's connection context.
    pub context: Vec<(String, String)>,
    /// `Received_Hostname`: our name in the `Received:` header (`Hostname` unless set).
    pub received_hostname: String,
    /// `Listener_Sessions` and `Service_Sessions` along the chain: the budgets this
    /// session counts against.
    pub session_budgets: Vec<crate::sessions::Budget>,
    /// SMTP AUTH's password files, when the listener offers AUTH to this client.
    pub auth: Option<Arc<crate::smtp_auth::SmtpAuth>>,
}

/// The TLS options along a listener's chain: the certificate pair, `TLS_Protocols`,
/// `TLS_Client_CA` and `TLS_Verify_Mode`.
fn tls_settings(
    snap: &Snapshot,
    chain: &[bindery_config::tree::ScopeId],
    cert: String,
    key: String,
) -> Result<crate::tls::TlsSettings, ServerError> {
    use crate::tls::{TlsSettings, VerifyMode};
    let o = &*INBOUND;
    let tree = &snap.tree;
    let get = |id: OptionId| inbound::resolve(tree, chain, id);
    let at = |id: OptionId| inbound::setting(tree, chain, id).map(|s| s.span);
    let protocols = match get(o.tls_protocols) {
        Some(Value::Str(list)) => bindery_config::tls_protocols::parse(&list)
            .map_err(|e| located(snap, at(o.tls_protocols), e, None))?,
        _ => Default::default(),
    };
    let verify = VerifyMode::parse(match get(o.tls_verify_mode) {
        Some(Value::Word(w)) => Some(w),
        _ => None,
    });
    let client_ca = match get(o.tls_client_ca) {
        Some(Value::Path(p)) => Some(p),
        _ => None,
    };
    if verify == VerifyMode::Require && client_ca.is_none() {
        return Err(located(
            snap,
            at(o.tls_verify_mode),
            "TLS_Verify_Mode = \"require\" needs TLS_Client_CA to verify the certificates against"
                .into(),
            Some("set TLS_Client_CA = \"/path/to/clientca.pem\" beside it"),
        ));
    }
    Ok(TlsSettings {
        cert,
        key,
        client_ca,
        verify,
        protocols,
    })
}

/// What [`inbound`] needs besides the configuration: the daemon's caches and the
/// generation's policy and password files.
pub struct Env<'a> {
    pub tls: &'a TlsCache,
    pub policy: &'a Policy,
    pub auth: &'a crate::smtp_auth::Stores,
    pub spool_free: Option<&'a Arc<std::sync::atomic::AtomicU64>>,
}

/// Resolves the listener options for a client at `peer` (Listen::Peer > Listen >
/// Listener::Peer > Listener > global).
pub fn inbound(
    snap: &Snapshot,
    globals: &Globals,
    plan: &ListenerPlan,
    peer: IpAddr,
    env: &Env<'_>,
) -> Result<Inbound, ServerError> {
    let Env {
        tls,
        policy,
        spool_free,
        ..
    } = *env;
    let tree = &snap.tree;
    let chain = inbound::chain(tree, &plan.site, Some(peer));
    let o = &*INBOUND;
    let get = |id: OptionId| inbound::resolve(tree, &chain, id);
    let int = |id: OptionId| match get(id) {
        Some(Value::Int(n)) if n > 0 => n as u64,
        Some(Value::Bytes(n)) | Some(Value::Seconds(n)) => n,
        _ => 0,
    };
    let relay_client = match get(o.relay_hosts) {
        Some(Value::Cidrs(nets)) => nets.iter().any(|n| n.contains(&peer)),
        _ => false,
    } || matches!(get(o.open_relay), Some(Value::Bool(true)));
    let hostname = match get(o.banner_hostname) {
        Some(Value::Str(h)) => h,
        _ => globals.hostname.clone(),
    };
    let at = |id: OptionId| inbound::setting(tree, &chain, id).map(|s| s.span);
    let tls_config = match (get(o.tls_certificate), get(o.tls_key)) {
        (Some(Value::Path(cert)), Some(Value::Path(key))) => {
            let settings = tls_settings(snap, &chain, cert, key)?;
            match tls.get(&settings) {
                Ok(cfg) => Some(cfg),
                Err(e) => {
                    let (blame, message, help) = match e {
                        ServerError::TlsClientCa(why) => (
                            o.tls_client_ca,
                            format!("cannot load the client CA list: TLS_Client_CA {why}"),
                            "TLS_Client_CA names a PEM file of CA certificates the daemon can read",
                        ),
                        ServerError::Tls(why) => (
                            o.tls_certificate,
                            format!("cannot load the TLS certificate and key: {why}"),
                            "TLS_Certificate and TLS_Key name PEM files the daemon can read",
                        ),
                        other => (
                            o.tls_certificate,
                            format!("cannot load the TLS certificate and key: {other}"),
                            "TLS_Certificate and TLS_Key name PEM files the daemon can read",
                        ),
                    };
                    return Err(located(snap, at(blame), message, Some(help)));
                }
            }
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(located(
                snap,
                at(o.tls_certificate).or(at(o.tls_key)),
                "TLS_Certificate and TLS_Key must be set together".into(),
                None,
            ));
        }
        _ => None,
    };
    let tls_verified_peer_can_relay =
        matches!(get(o.tls_verified_peer_can_relay), Some(Value::Bool(true)));
    if tls_verified_peer_can_relay && tls_config.as_ref().is_none_or(|t| t.client_certs.is_none()) {
        return Err(located(
            snap,
            at(o.tls_verified_peer_can_relay),
            "TLS_Verified_Peer_Can_Relay needs client certificates to verify".into(),
            Some(
                "set TLS_Certificate, TLS_Key and TLS_Client_CA on this listener, and leave TLS_Verify_Mode unset or `require`",
            ),
        ));
    }
    let postmaster = match inbound::setting(tree, &chain, o.postmaster_address) {
        Some(st) => match &st.value {
            Value::Str(a) => match bindery_smtp::address::parse_mailbox(a) {
                Ok(m) if m.domain.is_some() => Some(m),
                _ => {
                    return Err(located(
                        snap,
                        Some(st.span),
                        format!("Postmaster_Address {a:?} is not an address"),
                        Some(
                            "write a mailbox with a domain: Postmaster_Address = \"ops@example.com\"",
                        ),
                    ));
                }
            },
            _ => None,
        },
        None => None,
    };
    // `Static_Banner` is the whole greeting, `220 ` included, as Momentum writes it.
    let banner = match inbound::setting(tree, &chain, o.static_banner) {
        Some(st) => match &st.value {
            Value::Str(b) => match b.strip_prefix("220 ") {
                Some(text) if !text.trim().is_empty() && !text.contains(['\r', '\n']) => {
                    Some(text.to_string())
                }
                _ => {
                    return Err(located(
                        snap,
                        Some(st.span),
                        format!("Static_Banner {b:?} is not a 220 greeting line"),
                        Some("write the whole line: Static_Banner = \"220 mx.example.com ESMTP\""),
                    ));
                }
            },
            _ => None,
        },
        None => None,
    };
    // `Domain_For_Unqualified_*`: a host name, lower-cased; anything else is refused here.
    let domain_option = |id: OptionId| -> Result<Option<String>, ServerError> {
        let Some(st) = inbound::setting(tree, &chain, id) else {
            return Ok(None);
        };
        let Value::Str(d) = &st.value else {
            return Ok(None);
        };
        match bindery_smtp::address::parse_domain(d) {
            Ok(bindery_smtp::address::Domain::Name(name)) => Ok(Some(name)),
            _ => Err(located(
                snap,
                Some(st.span),
                format!("{} {d:?} is not a domain name", id.def().name),
                Some("write the domain alone: \"example.com\""),
            )),
        }
    };
    let unqualified_sender_domain = domain_option(o.unqualified_sender)?;
    let unqualified_recipient_domain = domain_option(o.unqualified_recipient)?;
    let mut session_budgets = Vec::new();
    for (name, id) in [
        ("listener", o.listener_sessions),
        ("service", o.service_sessions),
    ] {
        if let Some((scope, st)) = bindery_config::inbound::setting_at(tree, &chain, id)
            && let Value::Int(cap) = st.value
            && cap > 0
        {
            session_budgets.push(crate::sessions::Budget {
                key: format!("{name} {}", tree.path(scope)),
                cap: cap as u64,
            });
        }
    }
    let (auth_offer, auth) =
        crate::smtp_auth::for_chain(snap, &chain, env.auth, &globals.hostname)?;
    let received_hostname = match get(o.received_hostname) {
        Some(Value::Str(h)) => h,
        _ => globals.hostname.clone(),
    };
    let session = SessionConfig {
        postmaster,
        require_hello: matches!(get(o.require_ehlo), Some(Value::Bool(true))),
        allow_null_sender: !matches!(get(o.allow_null_sender), Some(Value::Bool(false))),
        allow_ip_literal: !matches!(get(o.allow_ip_literal), Some(Value::Bool(false))),
        relay_senders: match get(o.relay_senders) {
            Some(Value::Domains(d)) => Some(DomainSet::new(d)),
            _ => None,
        },
        banner,
        unqualified_sender_domain,
        unqualified_recipient_domain,
        hostname,
        max_message_size: int(o.max_message_size),
        max_recipients: int(o.max_recipients_per_message) as usize,
        max_messages: int(o.max_receptions_per_connection) as u32,
        max_session_recipients: u32::try_from(int(o.max_recipients_per_connection))
            .unwrap_or(u32::MAX),
        loose_paths: matches!(get(o.loose_paths), Some(Value::Bool(true))),
        relay_client,
        relay_domains: globals.relay_domains.clone(),
        starttls: tls_config.is_some(),
        tls_verified_peer_can_relay,
        checks: Checks {
            connect: policy.has_connect_callouts(),
            ehlo: policy.has(Callout::Ehlo),
            // A transaction's policy context starts at MAIL: rcptto needs it too.
            mail: policy.has(Callout::MailFrom) || policy.has(Callout::RcptTo),
            rcpt: policy.has(Callout::RcptTo) || globals.blackhole_inline,
            data: policy.has_rcptto_list(),
        },
        spool_free: spool_free.cloned(),
        record_rejections: globals.record_rejections,
        auth: auth_offer,
        ..SessionConfig::default()
    };
    let context = match get(o.context) {
        Some(Value::Dict(d)) => d,
        _ => Vec::new(),
    };
    Ok(Inbound {
        session: Arc::new(session),
        idle: Duration::from_secs(int(o.idle_time).max(1)),
        lifetime: Duration::from_secs(int(o.session_timeout).max(1)),
        tls: tls_config,
        context,
        received_hostname,
        session_budgets,
        auth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unset globals take the schema's defaults (Momentum's).
    #[test]
    fn globals_default_from_the_schema() {
        let snap = bindery_config::snapshot_from_str("t.conf", "").unwrap();
        let g = Globals::from_snapshot(&snap);
        assert_eq!(g.spoolbase, PathBuf::from("/var/spool/ecelerity"));
        assert_eq!(g.spool_mode, 0o640);
        assert_eq!(g.spool_sync, SyncMethod::Fsync);
        assert_eq!(g.default_binding, DefaultBinding::Normal);
        assert_eq!(
            (g.binding.as_str(), g.binding_group.as_str()),
            ("default", "default")
        );
        assert!(g.resolv_conf.is_none() && g.prohibited_hosts.is_empty());
    }
}
