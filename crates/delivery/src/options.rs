//! The delivery options of one (binding, domain), resolved once through the fallback chain
//! (`G::B::D > B::D > G::D > B > G > D > global > default`) and kept as plain values.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bindery_config::schema::{OptionId, option_id};
use bindery_config::snapshot::{BindingId, Chain, DomainKey, Level, Origin, Snapshot};
use bindery_config::value::{BindAddress, Value};
use bindery_queue::throttle::ThrottleKind;
use bindery_queue::{Limit, MaxRetries, Rate, RetryPolicy, ThrottleKey};
use bindery_smtp::client::{Protocol, TlsWish};

use crate::tls::TlsVerify;

/// How much of the original message a bounce carries (`bounces_inline_original`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InlineOriginal {
    None,
    Headers,
    All,
}

/// What to greet with (`ehlo_hostname`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EhloName {
    /// `__hostname__`: the configured `hostname`.
    Hostname,
    /// `__message__`: the domain of the envelope sender.
    Message,
    Literal(String),
}

/// The SMTP timeouts, each for its phase of the dialogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timeouts {
    pub connect: Duration,
    pub ehlo: Duration,
    pub mailfrom: Duration,
    pub rcptto: Duration,
    pub body: Duration,
    pub rset: Duration,
    pub idle: Duration,
}

/// Everything delivery needs to know about mail on one binding to one domain.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryOptions {
    pub retry: RetryPolicy,
    pub never_attempt_expired: bool,
    pub suspend: bool,
    /// `Blackhole = internal`: mail is failed at delivery without a connection (bounced if
    /// `generate_bounces`).
    pub blackhole: bool,
    pub generate_bounces: bool,
    /// `enable_fbl_header_insertion`: the mail carries the fbl module's mark (when the
    /// module's `auto_log` is on: [`crate::engine::EngineConfig::fbl_header`]).
    pub fbl_mark: bool,
    /// `None` for unlimited (a negative value).
    pub max_connections: Option<u32>,
    /// The server's total: global `server_max_outbound_connections` (lowered by a global
    /// `scope_max_outbound_connections`), with `server_reserve_outbound_connections` for
    /// a queue that has no connection yet.
    pub server_cap: Limit,
    /// `server_max_outbound_connections` set in the binding or its group: the total through
    /// this binding (each binding of the group has its own).
    pub binding_cap: Option<u32>,
    /// `scope_max_outbound_connections` set in this queue's group, binding, domain or
    /// group::domain stanza: (scope, cap), each counting every connection whose lookup
    /// finds that stanza. Set in binding::domain it lowers `max_connections` instead.
    pub scope_caps: Vec<(u32, u32)>,
    /// `connection_allocation_aggressiveness`: how fast slow start grows
    /// (`bindery_queue::pacing`).
    pub ramp: f64,
    pub max_recipients_per_batch: usize,
    /// 0: unlimited.
    pub max_deliveries_per_connection: u32,
    /// `Max_Recipients_Per_Connection`: a connection says QUIT once it has sent this many
    /// recipients (and no transaction carries more); 0: unlimited.
    pub max_recipients_per_connection: u32,
    pub throttle_messages: Option<(ThrottleKey, Rate)>,
    pub throttle_connections: Option<(ThrottleKey, Rate)>,
    pub timeouts: Timeouts,
    pub tls: TlsWish,
    pub tls_fallback: bool,
    /// `xclient`: Postfix's XCLIENT before each message (`no`, `ifavailable`, `required`).
    pub xclient: TlsWish,
    /// `transform_8bitmime_content`: an 8-bit body for a server without 8BITMIME.
    pub transform_8bit: bindery_smtp::client::Transform8Bit,
    /// `generate_delay_dsn` with `delay_dsn_retry_interval` and `delay_dsn_max_retry_interval`
    /// (seconds): when to tell the sender its mail is still waiting. `None`: never.
    pub delay_notices: Option<(u64, u64)>,
    /// `delayed_binding_domain_fuzz`: a part deferred without a transaction (its route or
    /// every connection failed, which defers a whole queue at once) waits up to this many
    /// seconds more, at random, so the queue's next attempts spread out; 0: none.
    pub delayed_fuzz: u64,
    /// `dns_failures_to_purge`: a part whose route failed this many times for DNS (4.4.3)
    /// fails permanently; 0: never.
    pub dns_failures_to_purge: u32,
    /// `mx_failures_fallback_to_a`: after this many DNS failures of its route, a part's
    /// domain is looked up by its A record instead of MX (Momentum's -1: after the first);
    /// 0: never.
    pub mx_fallback_to_a: u32,
    /// `host_failure_retry` (s): an address whose connect failed is skipped this long
    /// (`engine::health`).
    pub host_failure_retry: u64,
    /// `mx_failures_to_delay`: consecutive failures of every address before the queue's
    /// parts are deferred together; 0: no count rule.
    pub mx_failures_to_delay: u32,
    /// `connect_timeout_to_delay` (s): how long a destination may fail before the queue's
    /// parts are deferred together; 0: at the first round in which every address failed.
    pub connect_timeout_to_delay: u64,
    /// `Delivery_Method`: ESMTP, SMTP or LMTP (the others are refused at load).
    pub protocol: Protocol,
    /// `Send_8BitMIME = ifavailable`: `BODY=8BITMIME` on MAIL for an 8-bit body where the
    /// server offers 8BITMIME. Momentum's default `no` sends the body as it is, unannounced.
    pub announce_8bit: bool,
    /// Momentum's `outbound_smtp_auth`: `Outbound_SMTP_AUTH_Type`, `_User`, `_Pass`, `_Key`
    /// and bindery's `_Allow_Plaintext`, or a message's own login in its variant queue.
    /// [`AuthSettings::login`] makes the login, or names what is missing (the connection then
    /// defers with that reason).
    pub auth: AuthSettings,
    pub tls_verify: TlsVerify,
    /// `tls_ca`: the PEM file of trusted CAs; `None` for the system's bundle.
    pub tls_ca: Option<PathBuf>,
    /// `tls_protocols`: the TLS versions offered (`bindery_config::tls_protocols`).
    pub tls_protocols: bindery_config::tls_protocols::Protocols,
    pub ehlo: EhloName,
    /// The source address; `None` lets the kernel choose.
    pub bind_address: Option<IpAddr>,
    pub gateway: Option<String>,
    pub routes: Option<Vec<String>>,
    pub port: u16,
    /// `use_ipv6`: whether AAAA records are asked for and used (global, default false).
    pub families: crate::resolver::Families,
    /// `prefer_ipv6_mxs`: IPv6 addresses before IPv4 ones of the same MX preference.
    pub prefer_ipv6_mxs: bool,
    /// `From:` of bounces; `None` means `mailer-daemon@<hostname>`.
    pub mailerdaemon: Option<String>,
    pub inline_original: InlineOriginal,
    /// `adaptive_enabled`: what adaptive delivery needs of the queue's configuration;
    /// `None` when it is off for this binding and domain.
    pub adaptive: Option<Arc<AdaptiveSettings>>,
    /// `warmup_plan` from `warmup_start`: the most recipients per UTC day.
    pub warmup: Option<Arc<Warmup>>,
}

/// A warm-up plan: day by day from `start_day` (days since 1970-01-01, UTC), the most
/// recipients the binding::domain may be sent that day. Past the last day, no cap; before
/// the first, the first day's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warmup {
    pub start_day: i64,
    pub caps: Vec<u32>,
}

/// Milliseconds in a day.
pub const DAY_MS: u64 = 86_400_000;

impl Warmup {
    /// The cap of UTC day `day` (days since the epoch), or `None` once the plan is done.
    pub fn cap(&self, day: i64) -> Option<u32> {
        let i = usize::try_from(day.saturating_sub(self.start_day).max(0)).unwrap_or(usize::MAX);
        self.caps.get(i).copied()
    }

    /// Which day of the plan `day` is (1 for the first).
    pub fn day_number(&self, day: i64) -> i64 {
        day.saturating_sub(self.start_day).max(0) + 1
    }
}

/// The configuration adaptive delivery works within, for one binding and domain.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptiveSettings {
    /// The limits the configuration gives, which the rules lower and the climb returns to.
    pub base: bindery_adaptive::Limits,
    /// `adaptive_<option> = ( min max )` by lowercase option name (without `adaptive_`).
    pub ranges: std::collections::BTreeMap<String, bindery_adaptive::Range>,
    /// `adaptive_positive_adjustment_interval`: the climb back takes a step at most this often.
    pub positive_interval: u64,
    /// `adaptive_attempt_threshold` and `adaptive_fbl_volume_threshold`: what a sweep rule
    /// needs in its window before it may fire.
    pub volumes: bindery_adaptive::Volumes,
    /// With `adaptive_default_suspension_enabled`: the rejection rate (percent) past which
    /// the pair is suspended, and for how long (`adaptive_default_suspension`, seconds).
    pub rejection_suspension: Option<(f64, u64)>,
}

struct Ids {
    adaptive_enabled: OptionId,
    adaptive_ranges: [(OptionId, &'static str); 4],
    adaptive_positive: OptionId,
    adaptive_attempts: OptionId,
    warmup_plan: OptionId,
    warmup_start: OptionId,
    adaptive_fbl_volume: OptionId,
    adjustment_interval: OptionId,
    default_suspension: OptionId,
    default_suspension_enabled: OptionId,
    rejection_percentage: OptionId,
    retry_interval: OptionId,
    max_retry_interval: OptionId,
    max_retries: OptionId,
    message_expiration: OptionId,
    never_retry: OptionId,
    never_attempt_expired: OptionId,
    suspend: OptionId,
    blackhole: OptionId,
    generate_bounces: OptionId,
    fbl_mark: OptionId,
    max_connections: OptionId,
    server_max: OptionId,
    server_reserve: OptionId,
    scope_max: OptionId,
    aggressiveness: OptionId,
    batch: OptionId,
    max_rcpts_per_connection: OptionId,
    max_deliveries: OptionId,
    throttle_messages: OptionId,
    throttle_connections: OptionId,
    connect_timeout: OptionId,
    ehlo_timeout: OptionId,
    mailfrom_timeout: OptionId,
    rcptto_timeout: OptionId,
    body_timeout: OptionId,
    rset_timeout: OptionId,
    idle_timeout: OptionId,
    tls: OptionId,
    tls_fallback: OptionId,
    send_8bitmime: OptionId,
    delivery_method: OptionId,
    lmtp_port: OptionId,
    delay_dsn: OptionId,
    dns_purge: OptionId,
    fuzz: OptionId,
    mx_fallback: OptionId,
    xclient: OptionId,
    transform_8bit: OptionId,
    host_failure_retry: OptionId,
    mx_failures_to_delay: OptionId,
    connect_timeout_to_delay: OptionId,
    delay_dsn_interval: OptionId,
    delay_dsn_max: OptionId,
    tls_verify: OptionId,
    tls_ca: OptionId,
    tls_protocols: OptionId,
    ehlo: OptionId,
    bind_address: OptionId,
    gateway: OptionId,
    routes: OptionId,
    port: OptionId,
    use_ipv6: OptionId,
    prefer_ipv6_mxs: OptionId,
    min_dns_ttl: OptionId,
    max_dns_ttl: OptionId,
    mailerdaemon: OptionId,
    inline_original: OptionId,
    auth_type: OptionId,
    auth_user: OptionId,
    auth_pass: OptionId,
    auth_plaintext: OptionId,
    auth_key: OptionId,
}

static IDS: LazyLock<Ids> = LazyLock::new(|| Ids {
    retry_interval: option_id("Retry_Interval"),
    max_retry_interval: option_id("Max_Retry_Interval"),
    max_retries: option_id("Max_Retries"),
    message_expiration: option_id("Message_Expiration"),
    never_retry: option_id("Never_Retry"),
    never_attempt_expired: option_id("Never_Attempt_Expired_Messages"),
    suspend: option_id("Suspend_Delivery"),
    blackhole: option_id("Blackhole"),
    generate_bounces: option_id("Generate_Bounces"),
    fbl_mark: option_id("Enable_FBL_Header_Insertion"),
    max_connections: option_id("Max_Outbound_Connections"),
    server_max: option_id("Server_Max_Outbound_Connections"),
    server_reserve: option_id("Server_Reserve_Outbound_Connections"),
    scope_max: option_id("Scope_Max_Outbound_Connections"),
    aggressiveness: option_id("Connection_Allocation_Aggressiveness"),
    batch: option_id("Max_Recipients_Per_Batch"),
    max_rcpts_per_connection: option_id("Max_Recipients_Per_Connection"),
    max_deliveries: option_id("Max_Deliveries_Per_Connection"),
    throttle_messages: option_id("Outbound_Throttle_Messages"),
    adaptive_enabled: option_id("Adaptive_Enabled"),
    adaptive_ranges: [
        (
            option_id("Adaptive_Max_Outbound_Connections"),
            "max_outbound_connections",
        ),
        (
            option_id("Adaptive_Max_Deliveries_Per_Connection"),
            "max_deliveries_per_connection",
        ),
        (
            option_id("Adaptive_Outbound_Throttle_Messages"),
            "outbound_throttle_messages",
        ),
        (option_id("Adaptive_Retry_Interval"), "retry_interval"),
    ],
    adaptive_positive: option_id("Adaptive_Positive_Adjustment_Interval"),
    adaptive_attempts: option_id("Adaptive_Attempt_Threshold"),
    warmup_plan: option_id("Warmup_Plan"),
    warmup_start: option_id("Warmup_Start"),
    adaptive_fbl_volume: option_id("Adaptive_FBL_Volume_Threshold"),
    adjustment_interval: option_id("Adaptive_Adjustment_Interval"),
    default_suspension: option_id("Adaptive_Default_Suspension"),
    default_suspension_enabled: option_id("Adaptive_Default_Suspension_Enabled"),
    rejection_percentage: option_id("Adaptive_Rejection_Rate_Suspension_Percentage"),
    throttle_connections: option_id("Outbound_Throttle_Connections"),
    connect_timeout: option_id("Connect_Timeout"),
    ehlo_timeout: option_id("EHLO_Timeout"),
    mailfrom_timeout: option_id("MailFrom_Timeout"),
    rcptto_timeout: option_id("RcptTo_Timeout"),
    body_timeout: option_id("Body_Timeout"),
    rset_timeout: option_id("Rset_Timeout"),
    idle_timeout: option_id("Idle_Timeout"),
    tls: option_id("TLS"),
    tls_fallback: option_id("TLS_IfAvailable_Fallback"),
    send_8bitmime: option_id("Send_8BitMIME"),
    delivery_method: option_id("Delivery_Method"),
    lmtp_port: option_id("LMTP_Port"),
    delay_dsn: option_id("Generate_Delay_DSN"),
    dns_purge: option_id("DNS_Failures_To_Purge"),
    fuzz: option_id("Delayed_Binding_Domain_Fuzz"),
    mx_fallback: option_id("MX_Failures_Fallback_To_A"),
    xclient: option_id("XClient"),
    auth_type: option_id("Outbound_SMTP_AUTH_Type"),
    auth_user: option_id("Outbound_SMTP_AUTH_User"),
    auth_pass: option_id("Outbound_SMTP_AUTH_Pass"),
    auth_plaintext: option_id("Outbound_SMTP_AUTH_Allow_Plaintext"),
    auth_key: option_id("Outbound_SMTP_AUTH_Key"),
    transform_8bit: option_id("Transform_8BitMIME_Content"),
    host_failure_retry: option_id("Host_Failure_Retry"),
    mx_failures_to_delay: option_id("MX_Failures_To_Delay"),
    connect_timeout_to_delay: option_id("Connect_Timeout_To_Delay"),
    delay_dsn_interval: option_id("Delay_DSN_Retry_Interval"),
    delay_dsn_max: option_id("Delay_DSN_Max_Retry_Interval"),
    tls_verify: option_id("TLS_Verify"),
    tls_ca: option_id("TLS_CA"),
    tls_protocols: option_id("TLS_Protocols"),
    ehlo: option_id("EHLO_Hostname"),
    bind_address: option_id("Bind_Address"),
    gateway: option_id("Gateway"),
    routes: option_id("Routes"),
    port: option_id("Remote_SMTP_Port"),
    use_ipv6: option_id("Use_IPv6"),
    prefer_ipv6_mxs: option_id("Prefer_IPv6_MXs"),
    min_dns_ttl: option_id("Min_DNS_TTL"),
    max_dns_ttl: option_id("Max_DNS_TTL"),
    mailerdaemon: option_id("MailerDaemon"),
    inline_original: option_id("Bounces_Inline_Original"),
});

/// Reads typed values along a chain. Every option read here has a default in the schema
/// (`schema/options.rs`, the one place defaults live), which the chain returns when nothing
/// is set; the zero a reader falls back to is only for a value of the wrong type, which the
/// schema check makes impossible.
pub(crate) struct Reader<'s, 'k>(pub Chain<'s, 'k>);

impl Reader<'_, '_> {
    fn value(&self, o: OptionId) -> Option<&Value> {
        self.0.get(o).map(|r| r.value)
    }

    fn secs(&self, o: OptionId) -> u64 {
        match self.value(o) {
            Some(Value::Seconds(s)) => *s,
            Some(Value::Int(i)) => (*i).max(0) as u64,
            _ => 0,
        }
    }

    fn duration(&self, o: OptionId) -> Duration {
        Duration::from_secs(self.secs(o))
    }

    pub fn int(&self, o: OptionId) -> i64 {
        match self.value(o) {
            Some(Value::Int(i)) => *i,
            _ => 0,
        }
    }

    fn bool(&self, o: OptionId) -> bool {
        match self.value(o) {
            Some(Value::Bool(b)) => *b,
            _ => false,
        }
    }

    fn word(&self, o: OptionId) -> Option<&'static str> {
        match self.value(o) {
            Some(Value::Word(w)) => Some(w),
            _ => None,
        }
    }

    fn string(&self, o: OptionId) -> Option<String> {
        match self.value(o) {
            Some(Value::Str(s) | Value::HostPort(s) | Value::Path(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// Every `scope_max_outbound_connections` set along the chain, narrowest first, as
    /// (level, scope that set it, cap); a negative value is no cap. Its meaning depends on
    /// the level (`Caps::resolve`, and the host chain in `engine::hosts`).
    pub fn scope_caps(&self) -> impl Iterator<Item = (Option<Level>, u32, u32)> + '_ {
        self.0
            .each(IDS.scope_max)
            .filter_map(|v| match (cap_of(v.value), v.origin) {
                (Some(cap), Origin::Scope(scope)) => Some((v.level, scope.0, cap)),
                _ => None,
            })
    }

    /// A throttle and the identity of its bucket: the scope that set it.
    pub fn throttle(&self, o: OptionId, kind: ThrottleKind) -> Option<(ThrottleKey, Rate)> {
        let r = self.0.get(o)?;
        let (Value::Throttle(t), Origin::Scope(scope)) = (r.value, r.origin) else {
            return None;
        };
        Some((
            ThrottleKey {
                scope: scope.0,
                kind,
            },
            Rate {
                count: t.count,
                seconds: t.seconds,
            },
        ))
    }
}

/// The caps a queue's connections count under (see `bindery_queue::caps`).
struct Caps {
    server: Limit,
    binding: Option<u32>,
    scopes: Vec<(u32, u32)>,
    binding_domain: Option<u32>,
}

/// A cap's value: a negative one is no cap.
fn cap_of(v: &Value) -> Option<u32> {
    match v {
        Value::Int(i) => u32::try_from(*i).ok(),
        _ => None,
    }
}

impl Caps {
    /// Momentum's `scope_max_outbound_connections` means what the scope that sets it holds:
    /// global, the server; binding::domain, the queue (like `max_outbound_connections`);
    /// any other stanza, every connection whose lookup passes through it. Unlike a fallback
    /// option, every level that sets it applies.
    fn resolve(snap: &Snapshot, r: &Reader<'_, '_>) -> Caps {
        let ids = &*IDS;
        let global = |o| snap.global(o).and_then(cap_of);
        let mut server = global(ids.server_max).unwrap_or(u32::MAX);
        let reserve = global(ids.server_reserve).unwrap_or(0);
        let binding =
            r.0.get(ids.server_max)
                .filter(|v| matches!(v.level, Some(Level::Binding | Level::Group)))
                .and_then(|v| cap_of(v.value));
        let mut scopes = Vec::new();
        let mut binding_domain = None;
        for (level, scope, cap) in r.scope_caps() {
            match level {
                Some(Level::Global) => server = server.min(cap),
                Some(Level::BindingDomain) => binding_domain = Some(cap),
                _ => scopes.push((scope, cap)),
            }
        }
        Caps {
            server: Limit {
                max: server,
                reserve,
            },
            binding,
            scopes,
            binding_domain,
        }
    }
}

impl DeliveryOptions {
    /// `min_dns_ttl` and `max_dns_ttl` (global): sets the bounds `resolver` keeps a
    /// positive answer within, in seconds. Called at start and on every install.
    pub fn apply_dns_ttl(snap: &Snapshot, resolver: &crate::resolver::CachingResolver) {
        let r = Reader(snap.chain(None, None, None));
        let secs = |o| u32::try_from(r.secs(o)).unwrap_or(u32::MAX);
        resolver.set_ttl_bounds(secs(IDS.min_dns_ttl), secs(IDS.max_dns_ttl));
    }

    /// The server's cap as the configuration sets it (global scope): what every queue's
    /// `server_cap` holds.
    pub fn server_cap(snap: &Snapshot) -> Limit {
        let r = Reader(snap.chain(None, None, None));
        Caps::resolve(snap, &r).server
    }

    /// Resolves every delivery option for mail on `binding` to `domain`.
    pub fn resolve(snap: &Snapshot, binding: BindingId, domain: &DomainKey) -> DeliveryOptions {
        let ids = &*IDS;
        let r = Reader(snap.chain(Some(binding), None, Some(domain)));
        let max_retries = match r.value(ids.max_retries) {
            Some(Value::Int(n)) => MaxRetries::Count((*n).max(0) as u32),
            Some(Value::Word("none")) => MaxRetries::None,
            _ => MaxRetries::Auto,
        };
        let mut max_connections = u32::try_from(r.int(ids.max_connections)).ok();
        let caps = Caps::resolve(snap, &r);
        if let Some(m) = caps.binding_domain {
            max_connections = Some(max_connections.map_or(m, |c| c.min(m)));
        }
        let ehlo = match r.string(ids.ehlo).as_deref() {
            None | Some("__hostname__") => EhloName::Hostname,
            Some("__message__") => EhloName::Message,
            Some(s) => EhloName::Literal(s.to_string()),
        };
        let batch = r.int(ids.batch).max(1) as usize;
        let protocol = match r.word(ids.delivery_method) {
            Some(w) if w.eq_ignore_ascii_case("lmtp") => Protocol::Lmtp,
            Some(w) if w.eq_ignore_ascii_case("smtp") => Protocol::Smtp,
            _ => Protocol::Esmtp,
        };
        let rcpts_per_connection = u32::try_from(r.int(ids.max_rcpts_per_connection)).unwrap_or(0);
        let bind_address = match r.value(ids.bind_address) {
            Some(Value::Bind(BindAddress::Ip(ip))) => Some(*ip),
            Some(Value::Bind(BindAddress::Host(h))) => h.parse().ok(),
            _ => None,
        };
        let mut o = DeliveryOptions {
            retry: RetryPolicy {
                retry_interval: r.secs(ids.retry_interval),
                max_retry_interval: r.secs(ids.max_retry_interval),
                max_retries,
                message_expiration: r.secs(ids.message_expiration),
                never_retry: r.bool(ids.never_retry),
            },
            never_attempt_expired: r.bool(ids.never_attempt_expired),
            suspend: r.bool(ids.suspend),
            blackhole: matches!(r.word(ids.blackhole), Some(w) if w.eq_ignore_ascii_case("internal")),
            generate_bounces: r.bool(ids.generate_bounces),
            fbl_mark: r.bool(ids.fbl_mark),
            max_connections,
            server_cap: caps.server,
            binding_cap: caps.binding,
            scope_caps: caps.scopes,
            ramp: match r.word(ids.aggressiveness) {
                Some(w) if w.eq_ignore_ascii_case("high") => bindery_queue::pacing::RAMP_HIGH,
                _ => bindery_queue::pacing::RAMP_NORMAL,
            },
            max_recipients_per_batch: match rcpts_per_connection {
                0 => batch,
                cap => batch.min(cap as usize),
            },
            max_deliveries_per_connection: r.int(ids.max_deliveries).max(0) as u32,
            max_recipients_per_connection: rcpts_per_connection,
            throttle_messages: r.throttle(ids.throttle_messages, ThrottleKind::Messages),
            throttle_connections: r.throttle(ids.throttle_connections, ThrottleKind::Connections),
            timeouts: Timeouts {
                connect: r.duration(ids.connect_timeout),
                ehlo: r.duration(ids.ehlo_timeout),
                mailfrom: r.duration(ids.mailfrom_timeout),
                rcptto: r.duration(ids.rcptto_timeout),
                body: r.duration(ids.body_timeout),
                rset: r.duration(ids.rset_timeout),
                idle: r.duration(ids.idle_timeout),
            },
            tls: match r.word(ids.tls) {
                Some("ifavailable") => TlsWish::IfAvailable,
                Some("required") => TlsWish::Required,
                _ => TlsWish::No,
            },
            tls_fallback: r.bool(ids.tls_fallback),
            transform_8bit: {
                use bindery_smtp::client::Transform8Bit as T;
                match r.word(ids.transform_8bit) {
                    Some("no") => T::No,
                    Some("strict") => T::Strict,
                    Some("strip") => T::Strip,
                    _ => T::IfNeeded,
                }
            },
            xclient: match r.word(ids.xclient) {
                Some("ifavailable") => TlsWish::IfAvailable,
                Some("required") => TlsWish::Required,
                _ => TlsWish::No,
            },
            announce_8bit: r.word(ids.send_8bitmime) == Some("ifavailable"),
            auth: auth_settings(&r, ids),
            protocol,
            dns_failures_to_purge: u32::try_from(r.int(ids.dns_purge)).unwrap_or(0),
            delayed_fuzz: r.secs(ids.fuzz),
            host_failure_retry: r.secs(ids.host_failure_retry),
            mx_failures_to_delay: u32::try_from(r.int(ids.mx_failures_to_delay)).unwrap_or(0),
            connect_timeout_to_delay: r.secs(ids.connect_timeout_to_delay),
            mx_fallback_to_a: match r.int(ids.mx_fallback) {
                n if n < 0 => 1,
                n => u32::try_from(n).unwrap_or(0),
            },
            delay_notices: r
                .bool(ids.delay_dsn)
                .then(|| (r.secs(ids.delay_dsn_interval), r.secs(ids.delay_dsn_max))),
            tls_verify: TlsVerify::parse(r.word(ids.tls_verify)),
            tls_ca: r.string(ids.tls_ca).map(PathBuf::from),
            // Checked when the configuration loaded; a list that no longer parses cannot
            // reach here, and the default stands in for it if one did.
            tls_protocols: r
                .string(ids.tls_protocols)
                .and_then(|l| bindery_config::tls_protocols::parse(&l).ok())
                .unwrap_or_default(),
            ehlo,
            bind_address,
            gateway: r.string(ids.gateway),
            routes: match r.value(ids.routes) {
                Some(Value::List(l)) => Some(l.clone()),
                _ => None,
            },
            // LMTP goes to `LMTP_Port` (Momentum's 2003) unless a gateway or route names one.
            port: if protocol == Protocol::Lmtp {
                r.int(ids.lmtp_port)
            } else {
                r.int(ids.port)
            }
            .clamp(1, 65535) as u16,
            families: crate::resolver::Families::from_use_ipv6(r.bool(ids.use_ipv6)),
            prefer_ipv6_mxs: r.bool(ids.prefer_ipv6_mxs),
            mailerdaemon: r.string(ids.mailerdaemon),
            inline_original: match r.word(ids.inline_original) {
                Some("none") => InlineOriginal::None,
                Some("all") => InlineOriginal::All,
                _ => InlineOriginal::Headers,
            },
            adaptive: None,
            warmup: warmup(&r, ids),
        };
        if r.bool(ids.adaptive_enabled) {
            o.adaptive = Some(Arc::new(adaptive_settings(&r, ids, &o)));
        }
        o
    }
}

/// `warmup_plan` and `warmup_start` along the chain. A plan without a start is refused when
/// the configuration loads, so none is read here.
fn warmup(r: &Reader<'_, '_>, ids: &Ids) -> Option<Arc<Warmup>> {
    let Some(Value::List(caps)) = r.value(ids.warmup_plan) else {
        return None;
    };
    let start_day = match r.value(ids.warmup_start) {
        Some(Value::Str(s)) => bindery_config::value::days_of_date(s)?,
        _ => return None,
    };
    Some(Arc::new(Warmup {
        start_day,
        caps: caps.iter().filter_map(|c| c.parse().ok()).collect(),
    }))
}

/// What adaptive delivery works within: the limits `o` has from the configuration, and the
/// `adaptive_*` ranges and interval along the chain.
fn adaptive_settings(r: &Reader<'_, '_>, ids: &Ids, o: &DeliveryOptions) -> AdaptiveSettings {
    let mut ranges = std::collections::BTreeMap::new();
    for (id, name) in ids.adaptive_ranges {
        if let Some(Value::List(v)) = r.value(id)
            && let [Ok(min), Ok(max)] = [0, 1].map(|i| v.get(i).map_or("", |s| s).parse())
        {
            ranges.insert(name.to_string(), bindery_adaptive::Range { min, max });
        }
    }
    AdaptiveSettings {
        base: bindery_adaptive::Limits {
            connections: o.max_connections,
            deliveries: (o.max_deliveries_per_connection > 0)
                .then_some(o.max_deliveries_per_connection),
            throttle: o
                .throttle_messages
                .map(|(_, rate)| (rate.count, u64::from(rate.seconds))),
            retry_interval: o.retry.retry_interval,
            adjustment_interval: r.secs(ids.adjustment_interval),
        },
        ranges,
        positive_interval: r.secs(ids.adaptive_positive),
        volumes: bindery_adaptive::Volumes {
            attempts: r.secs(ids.adaptive_attempts),
            fbl: r.secs(ids.adaptive_fbl_volume),
        },
        // Both checked when the configuration loaded.
        rejection_suspension: r.bool(ids.default_suspension_enabled).then(|| {
            let percent = r
                .string(ids.rejection_percentage)
                .and_then(|p| p.parse().ok())
                .unwrap_or(20.0);
            let secs = r
                .string(ids.default_suspension)
                .and_then(|d| bindery_adaptive::duration::parse(&d).ok())
                .unwrap_or(4 * 3600);
            (percent, secs)
        }),
    }
}

/// `Outbound_SMTP_AUTH_*` along the chain.
fn auth_settings(r: &Reader<'_, '_>, ids: &Ids) -> AuthSettings {
    AuthSettings {
        key: r.string(ids.auth_key),
        mechanism: r.word(ids.auth_type).map(str::to_string),
        user: r.string(ids.auth_user),
        secret: r.string(ids.auth_pass),
        plaintext: r.bool(ids.auth_plaintext),
    }
}

/// Momentum's `outbound_smtp_auth` settings of one binding and domain, before they are a
/// login: the options, or the same names in a message's context, which override them.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct AuthSettings {
    /// `Outbound_SMTP_AUTH_Key`: only for the policy's hook to look credentials up by.
    pub key: Option<String>,
    /// `Outbound_SMTP_AUTH_Type`: `PLAIN`, `LOGIN` or `XOAUTH2`.
    pub mechanism: Option<String>,
    pub user: Option<String>,
    pub secret: Option<String>,
    /// bindery's `Outbound_SMTP_AUTH_Allow_Plaintext`.
    pub plaintext: bool,
}

/// Never prints the secret.
impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("key", &self.key)
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl AuthSettings {
    /// The login these settings make: none without a type; an error naming what is missing
    /// when the type is set without a user or password.
    pub fn login(&self) -> Result<Option<bindery_smtp::client::ClientAuth>, &'static str> {
        use bindery_smtp::client::{AuthMechanism, ClientAuth};
        let mechanism = match self.mechanism.as_deref() {
            None => return Ok(None),
            Some(w) if w.eq_ignore_ascii_case("LOGIN") => AuthMechanism::Login,
            Some(w) if w.eq_ignore_ascii_case("XOAUTH2") => AuthMechanism::Xoauth2,
            Some(w) if w.eq_ignore_ascii_case("PLAIN") => AuthMechanism::Plain,
            Some(_) => {
                return Err(
                    "the message context's outbound_smtp_auth_type is not PLAIN, LOGIN or XOAUTH2",
                );
            }
        };
        let user = self.user.clone().ok_or(
            "Outbound_SMTP_AUTH_Type is set but no user is (Outbound_SMTP_AUTH_User, or outbound_smtp_auth_user in the message context)",
        )?;
        let secret = self.secret.clone().ok_or(
            "Outbound_SMTP_AUTH_Type is set but no password is (Outbound_SMTP_AUTH_Pass, or outbound_smtp_auth_pass in the message context)",
        )?;
        Ok(Some(ClientAuth {
            mechanism,
            user,
            secret,
            plaintext: self.plaintext,
        }))
    }

    /// These settings with what a message's context sets instead (`outbound_smtp_auth_type`,
    /// `_user`, `_pass`; Momentum's names, case as Momentum's context keys are).
    pub fn overridden(&self, context: &[(String, String)]) -> AuthSettings {
        let mut out = self.clone();
        for (k, v) in context {
            match k.as_str() {
                CTX_TYPE => out.mechanism = Some(v.clone()),
                CTX_USER => out.user = Some(v.clone()),
                CTX_PASS => out.secret = Some(v.clone()),
                _ => {}
            }
        }
        out
    }
}

/// The message-context names of Momentum's `outbound_smtp_auth` settings.
pub const CTX_TYPE: &str = "outbound_smtp_auth_type";
pub const CTX_USER: &str = "outbound_smtp_auth_user";
pub const CTX_PASS: &str = "outbound_smtp_auth_pass";
pub const CTX_KEY: &str = "outbound_smtp_auth_key";

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str, domain: &str) -> DeliveryOptions {
        let snap = bindery_config::snapshot_from_str("t.conf", text).unwrap();
        let key = snap.domain_key(domain);
        DeliveryOptions::resolve(&snap, BindingId::DEFAULT, &key)
    }

    /// With nothing set, every value is the schema's default (Momentum's documented ones).
    #[test]
    fn empty_configuration_gives_the_schema_defaults() {
        let o = resolve("", "a.test");
        assert_eq!(
            o.retry,
            RetryPolicy {
                retry_interval: 1200,
                max_retry_interval: 43200,
                max_retries: MaxRetries::Auto,
                message_expiration: 86400,
                never_retry: false,
            }
        );
        let s = Duration::from_secs;
        assert_eq!(
            o.timeouts,
            Timeouts {
                connect: s(300),
                ehlo: s(300),
                mailfrom: s(300),
                rcptto: s(300),
                body: s(600),
                rset: s(30),
                idle: s(5),
            }
        );
        assert_eq!(o.max_connections, Some(32));
        assert_eq!(
            (o.max_recipients_per_batch, o.max_deliveries_per_connection),
            (100, 0)
        );
        assert_eq!((o.port, o.tls, o.tls_fallback), (25, TlsWish::No, true));
        assert!(o.generate_bounces && !o.suspend && !o.never_attempt_expired);
        assert_eq!(o.ehlo, EhloName::Hostname);
        assert_eq!(o.inline_original, InlineOriginal::Headers);
        assert_eq!((o.bind_address, o.gateway, o.routes), (None, None, None));
        assert_eq!((o.throttle_messages, o.throttle_connections), (None, None));
    }

    #[test]
    fn domain_values_override_and_unlimited_connections() {
        let o = resolve(
            "domain \"a.test\" { Max_Outbound_Connections = -1  Max_Retries = 3  TLS = required }",
            "a.test",
        );
        assert_eq!(o.max_connections, None);
        assert_eq!(o.retry.max_retries, MaxRetries::Count(3));
        assert_eq!(o.tls, TlsWish::Required);
    }

    #[test]
    fn tls_verify_and_tls_ca_resolve_per_domain() {
        let text = "TLS_CA = \"/etc/bindery/ca.pem\"\n\
                    domain \"a.test\" { TLS_Verify = host }\n\
                    domain \"b.test\" { TLS_Verify = optional  TLS_CA = \"b.pem\" }";
        let a = resolve(text, "a.test");
        assert_eq!(
            (a.tls_verify, a.tls_ca),
            (TlsVerify::Host, Some(PathBuf::from("/etc/bindery/ca.pem")))
        );
        let b = resolve(text, "b.test");
        assert_eq!(
            (b.tls_verify, b.tls_ca),
            (TlsVerify::Optional, Some(PathBuf::from("b.pem")))
        );
        assert_eq!(resolve(text, "c.test").tls_verify, TlsVerify::No);
    }
}

#[cfg(test)]
mod auth_settings_tests {
    use super::*;

    /// A message's context overrides the options' login field by field; a type no mechanism
    /// answers to, or a login with no password, is an error that names it.
    #[test]
    fn context_overrides_the_options_login() {
        let base = AuthSettings {
            key: Some("tenants".into()),
            mechanism: Some("PLAIN".into()),
            user: Some("nobody".into()),
            secret: Some("x".into()),
            plaintext: false,
        };
        let ctx = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let over = base.overridden(&ctx(&[
            (CTX_USER, "tenant-a"),
            (CTX_PASS, "pa"),
            (CTX_KEY, "k"),
        ]));
        let login = over.login().unwrap().unwrap();
        assert_eq!(
            (login.user.as_str(), login.secret.as_str()),
            ("tenant-a", "pa")
        );
        assert_eq!(
            over.key.as_deref(),
            Some("tenants"),
            "the key is the options' own"
        );
        assert_eq!(base.overridden(&ctx(&[(CTX_KEY, "k")])), base);
        let bad = base.overridden(&ctx(&[(CTX_TYPE, "CRAM-MD5")]));
        assert!(bad.login().unwrap_err().contains("outbound_smtp_auth_type"));
        let no_pass = AuthSettings {
            secret: None,
            ..base.clone()
        };
        assert!(
            no_pass
                .login()
                .unwrap_err()
                .contains("outbound_smtp_auth_pass")
        );
        assert!(!format!("{over:?}").contains("pa\""), "{over:?}");
    }
}
