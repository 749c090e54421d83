//! The option table.
//!
//! Names, defaults and scopes follow Momentum 4's "Configuration Options Summary" and the
//! per-option pages (see `../shared/reference/momentum.md` §3). Where bindery deliberately
//! differs, the row's comment says so.

use super::scopes::*;

/// Index of an option in [`OPTIONS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OptionId(pub u16);

impl OptionId {
    pub fn def(self) -> &'static OptionDef {
        &OPTIONS[self.0 as usize]
    }

    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// How an option's value is written and checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// Any string.
    Str,
    /// A file or directory path.
    Path,
    /// A signed integer.
    Int,
    /// A TCP port, 1..=65535.
    Port,
    /// `true/false`, `yes/no`, `on/off`, `enabled/disabled`, `1/0`.
    Bool,
    /// One word out of a fixed set, compared case-insensitively.
    Enum(&'static [&'static str]),
    /// A non-negative integer or one word out of a set (`max_retries = auto|none|N`).
    IntOrEnum(&'static [&'static str]),
    /// `"N"` (per second) or `"N/S"` (N per S seconds); `0` means unlimited.
    Throttle,
    /// `*`, an IP address, or a host name: a binding's source address.
    BindAddress,
    /// A host name or IP address, IPv6 in brackets, with an optional `:port`.
    HostPort,
    /// A list of IP addresses and CIDR blocks.
    CidrList,
    /// A list of domains; `*.example.com` matches every subdomain.
    DomainList,
    /// A list of words or strings.
    List,
    /// A dictionary `[ key = value ]`.
    Dict,
    /// A file mode in octal, e.g. `0640`.
    Mode,
    /// A non-negative number of seconds.
    Seconds,
    /// A non-negative number of bytes.
    Bytes,
    /// A regular expression.
    Regex,
    /// A list of regular expressions.
    RegexList,
    /// Momentum's `TLS_Protocols` list (`"+ALL:-TLSv1.0"`), see `tls_protocols`.
    TlsProtocols,
    /// `( min max )`: two whole numbers, the least first (the adaptive module's bounds).
    Range,
    /// A percentage from 0 to 100, decimals allowed (`0.2`): kept as written.
    Percent,
    /// A list of positive whole numbers `( 50 100 500 )`.
    Counts,
    /// A calendar day `YYYY-MM-DD` (UTC).
    Date,
}

impl ValueType {
    pub fn describe(self) -> String {
        match self {
            ValueType::Str => "a string".into(),
            ValueType::Path => "a path".into(),
            ValueType::Int => "an integer".into(),
            ValueType::Port => "a port number (1-65535)".into(),
            ValueType::Bool => {
                "a boolean (true/false, yes/no, on/off, enabled/disabled, 1/0)".into()
            }
            ValueType::Enum(words) => format!("one of {}", words.join(", ")),
            ValueType::IntOrEnum(words) => {
                format!("a non-negative integer or one of {}", words.join(", "))
            }
            ValueType::Throttle => "a throttle, \"N\" or \"N/SECONDS\"".into(),
            ValueType::BindAddress => "`*`, an IP address or a host name".into(),
            ValueType::HostPort => "a host name or IP address, optionally with :port".into(),
            ValueType::CidrList => "a list of IP addresses or CIDR blocks".into(),
            ValueType::DomainList => "a list of domains (`*.example.com` allowed)".into(),
            ValueType::List => "a list `( a b \"c d\" )`".into(),
            ValueType::Dict => "a dictionary `[ key = value ]`".into(),
            ValueType::Mode => "an octal file mode such as 0640".into(),
            ValueType::Seconds => "a number of seconds".into(),
            ValueType::Bytes => "a number of bytes".into(),
            ValueType::Regex => "a regular expression".into(),
            ValueType::RegexList => "a list of regular expressions `( \"^config\" )`".into(),
            ValueType::TlsProtocols => "a protocol list such as \"+ALL:-TLSv1.0:-TLSv1.1\"".into(),
            ValueType::Range => "a range `( min max )` of two whole numbers".into(),
            ValueType::Percent => "a percentage from 0 to 100 such as 5 or 0.2".into(),
            ValueType::Counts => "a list of positive whole numbers `( 50 100 500 )`".into(),
            ValueType::Date => "a day written YYYY-MM-DD".into(),
        }
    }
}

/// Everything bindery knows about one option.
#[derive(Debug)]
pub struct OptionDef {
    /// Canonical spelling, used whenever the option is printed.
    pub name: &'static str,
    pub ty: ValueType,
    /// Built-in default, written as it would be in a file; `None` means unset.
    pub default: Option<&'static str>,
    /// Scopes where the option may be set.
    pub scopes: ScopeSet,
    /// `false` for Momentum's "(non-dynamic)" options: a run-time change needs a restart.
    pub dynamic: bool,
    /// Value when a host-scope lookup finds nothing: host scope never falls back to the
    /// binding/domain/global chain (an unset `max_outbound_connections` in a host is -1).
    pub host_default: Option<&'static str>,
}

impl OptionDef {
    /// Options whose values are resolved through the binding/domain fallback chain.
    pub fn is_delivery(&self) -> bool {
        self.scopes.0 & (BG | B | D) != 0
    }
}

macro_rules! options {
    ($( $name:literal : $ty:expr, $default:expr, $scopes:expr $(, $flag:ident)* ; )*) => {
        /// Every option, in one table.
        pub static OPTIONS: &[OptionDef] = &[
            $( option_row!($name, $ty, $default, $scopes $(, $flag)*), )*
        ];
        /// The number of rows in [`OPTIONS`], usable in constants.
        pub const OPTION_COUNT: usize = [$($name),*].len();
    };
}

macro_rules! option_row {
    ($name:literal, $ty:expr, $default:expr, $scopes:expr) => {
        OptionDef {
            name: $name,
            ty: $ty,
            default: $default,
            scopes: ScopeSet($scopes),
            dynamic: true,
            host_default: None,
        }
    };
    ($name:literal, $ty:expr, $default:expr, $scopes:expr, restart) => {
        OptionDef {
            name: $name,
            ty: $ty,
            default: $default,
            scopes: ScopeSet($scopes),
            dynamic: false,
            host_default: None,
        }
    };
    ($name:literal, $ty:expr, $default:expr, $scopes:expr, host_unlimited) => {
        OptionDef {
            name: $name,
            ty: $ty,
            default: $default,
            scopes: ScopeSet($scopes),
            dynamic: true,
            host_default: Some("-1"),
        }
    };
}

use ValueType::*;

/// Binding/domain scopes: global, binding_group, binding, domain.
const DELIV: u32 = G | BG | B | D;
/// Inbound SMTP scopes: the listener, its Listen and Peer scopes, and pathways.
const INBOUND: u32 = ESMTP | LISTEN | PEER | PW | PWG;
/// Every listener kind and Listen.
const LISTENERS: u32 = ESMTP | CTRL | HTTP | LISTEN;
/// TLS certificate options: outbound (delivery scopes) and inbound (listener scopes).
const TLS_BOTH: u32 = DELIV | ESMTP | HTTP | LISTEN | PEER | PW | PWG;

const TLS_MODES: &[&str] = &["no", "ifavailable", "required"];
const TRANSFORM_8BIT: &[&str] = &["ifneeded", "no", "strict", "strip"];
const DELIVERY_METHODS: &[&str] = &["ESMTP", "SMTP", "LMTP", "ECSTREAM", "APN", "GCM", "MM7"];
const CANONS: &[&str] = &["simple", "relaxed"];
const DEBUG_LEVELS: &[&str] = &["DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL"];

options! {
    // ---- Sending identity and outbound connection limits (binding / domain chain) ----
    // Momentum marks it non-dynamic; bindery reads it for every new outbound connection, so
    // a run-time change (a binding created from Lua, say) applies at the next connection.
    "Bind_Address": BindAddress, Some("*"), G | BG | B;
    "EHLO_Hostname": Str, Some("__hostname__"), DELIV;
    "Generate_Bounces": Bool, Some("true"), DELIV;
    "Max_Outbound_Connections": Int, Some("32"), DELIV | H, host_unlimited;
    "Outbound_Throttle_Messages": Throttle, None, DELIV | H;
    "Outbound_Throttle_Connections": Throttle, None, DELIV | H;
    "Server_Max_Outbound_Connections": Int, Some("20000"), G | BG | B;
    "Server_Reserve_Outbound_Connections": Int, Some("200"), G;
    "Scope_Max_Outbound_Connections": Int, None, DELIV | H;
    "Cluster_Max_Outbound_Connections": Int, Some("-1"), G | B | D | H;
    // Bindery's own: connection attempts in progress (from the SYN until the greeting and
    // EHLO are done) to one remote address, from every binding together; more wait their
    // turn. 16 stays under Exim's default accept backlog (`smtp_connect_backlog` = 20), so a
    // remote slow to accept never drops our SYNs into the kernel's 1 s, 3 s, 7 s retries.
    // Global, or in a global `host` stanza for that host. 0: no limit.
    "Host_Max_Connects_In_Progress": Int, Some("16"), G | H;
    // Bindery's own: new connections per second to one remote address, from every binding
    // together (a token bucket whose burst is the count). Global, or in a global `host`
    // stanza. 0: no limit.
    "Host_Connect_Rate": Throttle, Some("2000/1"), G | H;
    "Cluster_Outbound_Throttle_Messages": Throttle, None, G | BG | D;
    "Cluster_Outbound_Throttle_Connections": Throttle, None, G | BG | D;
    "Connection_Allocation_Aggressiveness": Enum(&["normal", "high"]), Some("normal"), DELIV;
    "Max_Deliveries_Per_Connection": Int, Some("0"), DELIV;
    "Max_Recipients_Per_Batch": Int, Some("100"), DELIV;
    "Max_Recipients_Per_Connection": Int, Some("0"), DELIV | ESMTP | LISTEN | PEER;
    "Max_Resident_Active_Queue": Int, Some("250"), DELIV;
    "Max_Resident_Messages": Int, Some("32768"), G | BG | B;
    "Delayed_Binding_Domain_Fuzz": Seconds, Some("0"), G | BG | B;
    "Suspend_Delivery": Bool, Some("false"), DELIV;
    "Blackhole": Enum(&["false", "true", "inline", "internal"]), Some("false"), DELIV;
    "Enable_Duravip": Bool, Some("false"), B | LISTEN;
    "Duravip_Preference": Str, None, B | LISTEN;
    "Duravip_Follow": Str, None, LISTEN;

    // ---- Retries and expiry ----
    "Max_Retries": IntOrEnum(&["auto", "none"]), Some("auto"), DELIV;
    "Retry_Interval": Seconds, Some("1200"), DELIV;
    "Max_Retry_Interval": Seconds, Some("43200"), DELIV;
    "Message_Expiration": Seconds, Some("86400"), DELIV;
    "Never_Attempt_Expired_Messages": Bool, Some("false"), DELIV;
    "Never_Retry": Bool, Some("false"), DELIV;
    "Drop_Body_After_Trans_Fail": Int, Some("3"), DELIV;
    "Host_Failure_Retry": Seconds, Some("120"), G | D;

    // ---- Routing ----
    "Gateway": HostPort, None, DELIV;
    "Routes": List, None, G | D;
    "Remote_SMTP_Port": Port, Some("25"), DELIV;
    "Delivery_Method": Enum(DELIVERY_METHODS), Some("ESMTP"), DELIV;
    "LMTP_Port": Port, Some("2003"), DELIV;
    "ECStream_Port": Port, Some("1825"), DELIV;
    "Fully_Resolve_Before_SMTP": Bool, Some("true"), DELIV;
    "MX_Failures_To_Delay": Int, Some("50"), G | D;
    "MX_Failures_Fallback_To_A": Int, Some("3"), G | D;
    "DNS_Failures_To_Purge": Int, Some("10"), G | D;
    "Prohibited_Hosts": CidrList, None, G;
    "Resolv_Conf": Path, None, G, restart;
    "Prefer_IPv6_MXs": Bool, Some("false"), G;
    "Use_IPv6": Bool, Some("false"), G;
    "Min_DNS_TTL": Seconds, Some("0"), G;
    "Max_DNS_TTL": Seconds, Some("4294967295"), G;

    // ---- Outbound SMTP timeouts (seconds) ----
    "Connect_Timeout": Seconds, Some("300"), DELIV;
    "Connect_Timeout_To_Delay": Seconds, Some("900"), DELIV;
    "EHLO_Timeout": Seconds, Some("300"), DELIV;
    "MailFrom_Timeout": Seconds, Some("300"), DELIV;
    "RcptTo_Timeout": Seconds, Some("300"), DELIV;
    "Body_Timeout": Seconds, Some("600"), DELIV;
    "RSET_Timeout": Seconds, Some("30"), DELIV;
    "Idle_Timeout": Seconds, Some("5"), DELIV;

    // ---- Outbound TLS and extensions ----
    "TLS": Enum(TLS_MODES), Some("no"), DELIV;
    "TLS_IfAvailable_Fallback": Bool, Some("true"), DELIV;
    "TLS_Verify": Enum(&["no", "ca", "host", "optional"]), Some("no"), DELIV;
    "TLS_CA": Path, None, DELIV;
    "TLS_Certificate": Path, None, TLS_BOTH;
    "TLS_Key": Path, None, TLS_BOTH;
    "TLS_Ciphers": Str, None, TLS_BOTH;
    "TLS_Protocols": TlsProtocols, Some("+ALL"), TLS_BOTH;
    "TLS_Client_CA": Path, None, G | ESMTP | HTTP | LISTEN | PEER | PW | PWG;
    "TLS_Verify_Mode": Enum(&["none", "require"]), None, ESMTP | HTTP | LISTEN | PEER | PW | PWG;
    "TLS_Verified_Peer_Can_Relay": Bool, Some("false"), ESMTP | LISTEN | PEER | PW | PWG;
    "XClient": Enum(TLS_MODES), Some("no"), DELIV;
    "Send_8BitMIME": Enum(&["no", "ifavailable"]), Some("no"), DELIV;
    "Transform_8BitMIME_Content": Enum(TRANSFORM_8BIT), Some("ifneeded"), DELIV;
    "Enable_MTA_STS": Bool, Some("false"), DELIV;
    "OpenDKIM_Sign": Bool, Some("true"), DELIV, restart;
    "DomainKeys": Bool, Some("false"), DELIV;
    "Enable_FBL_Header_Insertion": Bool, Some("false"), DELIV;
    "Adaptive_Enabled": Bool, Some("false"), DELIV;
    // The adaptive module's bounds and switches (modules/4-adaptive.md). Those bindery does
    // not act on are typed as lists, which also take a single value, so that whatever is
    // written gets its refusal rather than a type error.
    // A lowered limit is lowered again no sooner than this after the last change.
    "Adaptive_Adjustment_Interval": Seconds, Some("60"), DELIV;
    "Adaptive_Alert_Email_Destination": List, None, DELIV;
    // The sweep rules' volumes: attempts (bounce rules) and deliveries (FBL rules) a
    // binding::domain needs in the window before a rule may fire.
    "Adaptive_Attempt_Threshold": Int, Some("2000"), DELIV;
    "Adaptive_Body_Timeout": List, None, DELIV;
    // The rejection-rate suspension (Momentum 4.2): off unless enabled; past the
    // percentage of attempts refused in a sweep window, suspended for the default length.
    "Adaptive_Default_Suspension": Str, Some("4 hours"), DELIV;
    "Adaptive_Default_Suspension_Enabled": Bool, Some("false"), DELIV;
    "Adaptive_EHLO_Timeout": List, None, DELIV;
    "Adaptive_FBL_Volume_Threshold": Int, Some("20000"), DELIV;
    "Adaptive_Idle_Timeout": List, None, DELIV;
    "Adaptive_MailFrom_Timeout": List, None, DELIV;
    "Adaptive_Max_Deliveries_Per_Connection": Range, None, DELIV;
    "Adaptive_Max_Outbound_Connections": Range, None, DELIV;
    "Adaptive_Max_Recipients_Per_Batch": List, None, DELIV;
    "Adaptive_Max_Recipients_Per_Connection": List, None, DELIV;
    "Adaptive_Max_Resident_Active_Queue": List, None, DELIV;
    "Adaptive_Max_Retries": List, None, DELIV;
    "Adaptive_Max_Retry_Interval": List, None, DELIV;
    "Adaptive_Notification_Events": List, None, DELIV;
    "Adaptive_Notification_Interval": List, None, DELIV;
    "Adaptive_Outbound_Throttle_Messages": Range, None, DELIV;
    "Adaptive_Positive_Adjustment_Interval": Seconds, Some("3600"), DELIV;
    "Adaptive_RcptTo_Timeout": List, None, DELIV;
    "Adaptive_Rejection_Rate_Suspension_Percentage": Percent, Some("20"), DELIV;
    "Adaptive_Retry_Fuzz": List, None, DELIV;
    "Adaptive_Retry_Interval": Range, None, DELIV;
    "Adaptive_Rset_Timeout": List, None, DELIV;
    // 0 in a scope: the sweep rules written there (and, for the binding::domain pairs it
    // governs, every rule and the defaults) do not apply. Also valid in a rule's stanza.
    "Adaptive_Sweep_Rule_Enabled": Bool, Some("true"), DELIV | SWEEP;
    // Bindery's warm-up plans (issue 22; no Momentum option): the most recipients a
    // binding::domain may be sent each UTC day, day by day from Warmup_Start; past the
    // plan's last day, no cap. Mail over the day's cap waits for the next day.
    "Warmup_Plan": Counts, None, DELIV;
    "Warmup_Start": Date, None, DELIV;
    // MX rollup (config/ref-rollup-mx.md): queue by the MX host's routing domain.
    "Rollup_MX": Bool, Some("false"), H;
    "Rollup_MX_Name": Str, None, H;
    // The xfer module's rerouting (outbound-xfer.md).
    "Reroute_Domain": Str, None, DELIV;
    "Delayed_Reroute_Domain": Str, None, DELIV;

    // ---- Bounces and DSNs ----
    "MailerDaemon": Str, None, DELIV;
    "MDN_Failures_Notify": Str, None, DELIV;
    "Bounces_Inline_Original": Enum(&["none", "headers", "all"]), Some("headers"), DELIV;
    "Generate_Delay_DSN": Bool, Some("false"), DELIV;
    "Delay_DSN_Retry_Interval": Seconds, Some("3600"), DELIV;
    "Delay_DSN_Max_Retry_Interval": Seconds, Some("43200"), DELIV;
    "Bounce_Behavior": Enum(&["pass", "blackhole"]), Some("pass"), G | D;
    "Bounce_Pattern": Regex, None, G | D;
    "Bounce_Domains": DomainList, None, G | PW | PWG;
    // "bounces@x.test,@y.test": never taken as an out-of-band bounce's original recipient.
    "Bounce_Suppress_List": Str, None, G;
    "Generate_Bounces_For_Multi_Recipient_Policy_Rejections": Bool, Some("true"), G | PW | PWG;
    "Async_Bounce_Rendering": Bool, Some("true"), G;

    // ---- Global: identity, spool, node ----
    "Default_Binding": Enum(&["normal", "suspended", "none"]), Some("normal"), G;
    "Binding_Auto_Replumb": Enum(&["enabled", "disabled"]), Some("disabled"), G;
    "Hostname": Str, None, G;
    "Spoolbase": Path, Some("/var/spool/ecelerity"), G, restart;
    "Spool_Mode": Mode, Some("0640"), G, restart;
    // Bindery's own: how a group commit is made durable (`fsync` every file and folder, or one
    // `syncfs` per batch for a spool on its own file system). See ARCHITECTURE.md.
    "Spool_Sync": Enum(&["fsync", "syncfs"]), Some("fsync"), G, restart;
    "Force_Fsync": Bool, Some("false"), G;
    "Keep_Message_Dicts_In_Memory": Bool, Some("false"), G, restart;
    "Local_Changes_File": Path, Some("/opt/msys/ecelerity/etc/local_changes.conf"), G;
    "Local_Changes_Only": Bool, Some("false"), G;
    // Momentum's default path; bindery writes a pid file only when this is set.
    "PidFile": Path, Some("/var/run/ecelerity.pid"), G, restart;
    "Large_Message_Threshold": Bytes, Some("131072"), G;
    "Permastore_Interval": Seconds, Some("300"), G;
    "Masterdb_File": Path, Some("/var/log/ecelerity/ecdb"), G, restart;
    "Control_Client_Timeout": Seconds, Some("60"), G;
    "Server_Max_File_Descriptors": Int, Some("3000000"), G;
    "TimestampFormat": Str, Some("[%a %d %b %Y %H:%M:%S]"), G;
    // Bindery's own: where the JSON-lines reception/delivery log goes (Momentum's ec_logger
    // module is configured elsewhere).
    // Global: bindery's JSON-lines log. In an `ec_logger` stanza: Momentum's `@` mainlog.
    "Mainlog": Path, None, G | ECLOG, restart;

    // ---- Inbound: relay control and SMTP limits ----
    "Relay_Hosts": CidrList, None, G | INBOUND;
    "Relay_Domains": DomainList, None, G | PW | PWG;
    "Relay_For_Sending_Domains": DomainList, None, INBOUND;
    "Open_Relay": Bool, Some("false"), INBOUND;
    // Bindery's default: 20 MiB, KumoMTA's. Postfix takes 10 MB; the big mailbox providers
    // take 20-25 MB, so a larger message could rarely be delivered anyway, and unlimited let
    // one client fill the spool. 0 still means no limit.
    "Max_Message_Size": Bytes, Some("20971520"), INBOUND;
    // Bindery's default: 1,000 (Postfix's smtpd_recipient_limit; KumoMTA: 1,024). RFC 5321
    // asks for at least 100; unlimited let one message carry 100,000 recipients into memory
    // and the spool. 0 still means no limit.
    "Max_Recipients_Per_Message": Int, Some("1000"), INBOUND;
    "Max_Receptions_Per_Connection": Int, Some("0"), G | INBOUND;
    "Listener_Sessions": Int, Some("0"), INBOUND;
    "Service_Sessions": Int, Some("0"), INBOUND;
    "Idle_Time": Seconds, Some("300"), INBOUND | HTTP;
    // Bindery's own: the Transmissions API on an HTTP listener (issue 21). Its API keys,
    // one `NAME:SHA256:PERMISSIONS` line each (`bindery api-key NAME`), and the largest
    // request body it reads.
    "API_Key_File": Path, None, HTTP | LISTEN;
    "API_Max_Request_Size": Bytes, Some("20971520"), HTTP | LISTEN;
    // Bindery's own: the longest an inbound SMTP connection may last, whatever it does.
    "Session_Timeout": Seconds, Some("1800"), INBOUND;
    "Require_EHLO": Bool, Some("false"), G | INBOUND;
    "Allow_Null_Envelope_Sender": Bool, Some("true"), G | INBOUND;
    "Allow_IP_Literal": Bool, Some("true"), G | INBOUND;
    "Allow_Trailing_Whitespace_In_Commands": Bool, Some("false"), G | INBOUND;
    "Banner_Hostname": Str, None, INBOUND;
    // Bindery's own: where mail to `<Postmaster>` and `postmaster@` the host name goes, taken
    // from anyone (RFC 5321 §4.5.1). Unset, such mail is relayed like any other.
    "Postmaster_Address": Str, None, G | INBOUND;
    "Static_Banner": Str, None, INBOUND;
    "Domain_For_Unqualified_Sender_Address": Str, None, G | INBOUND;
    "Domain_For_Unqualified_Recipient_Addresses": Str, None, G | INBOUND;
    "Received_Hostname": Str, None, INBOUND;
    "Reconfig_Message": Str, Some("4.3.2 Reconfiguration in progress"), ESMTP;
    "SMTP_Extensions": List, None, INBOUND;
    "STARTTLS_Injection_Policy": Enum(&["reject", "ignore"]), Some("reject"), INBOUND;
    "Context": Dict, None, INBOUND;
    "Pathway": Str, None, ESMTP | LISTEN | PEER;
    "Inbound_Throttle_Messages": Throttle, None, G | PW | PWG;
    // Implicit TLS: the handshake comes first, then the greeting (port 465).
    "Use_SSL": Bool, Some("false"), ESMTP | LISTEN;
    // A PROXY protocol header (v1 or v2) starts every connection; its client address is
    // the one relay control, policy and logs see. Its timeout covers the header only.
    "Proxy_Protocol": Bool, Some("false"), ESMTP | LISTEN;
    "Proxy_Protocol_Timeout": Seconds, Some("60"), ESMTP | LISTEN;

    // ---- Listeners (every kind) ----
    "Enable": Bool, Some("true"), LISTENERS;
    "Concurrency": Int, Some("0"), LISTENERS | TP;
    "Listen_Backlog": Int, Some("500"), LISTENERS;
    "Accept_Queue_Backlog": Int, Some("0"), LISTENERS;
    "Pool_Name": Str, None, LISTENERS;
    "Event_Loop": Str, None, ESMTP | LISTEN, restart;
    "Disable_Nagle_Algorithm": Bool, Some("false"), G | LISTENERS;
    "TCP_Recv_Buffer_Size": Bytes, None, LISTENERS;
    "TCP_Send_Buffer_Size": Bytes, None, LISTENERS;
    // Momentum documents 0660; bindery creates the control socket 0600 unless told otherwise,
    // because the console can change the configuration.
    "File_Mode": Mode, Some("0600"), LISTENERS;
    "Timeout": Seconds, Some("60"), CTRL;
    "Enable_Authentication": Bool, Some("false"), CTRL | ESMTP | HTTP | LISTEN | PEER | PW | PWG;
    "Enable_Authorization": Bool, Some("false"), CTRL | LISTEN | PEER;
    "Always_Allow": Bool, Some("false"), CTRL | ESMTP | HTTP | LISTEN | PEER | PW | PWG;
    "Always_Deny": Bool, Some("false"), CTRL | ESMTP | HTTP | LISTEN | PEER | PW | PWG;
    "AuthDigestMD5Parameters": Dict, None, CTRL | ESMTP | HTTP | LISTEN | PEER | PW | PWG;
    "AuthLoginParameters": Dict, None, CTRL | ESMTP | LISTEN | PEER | PW | PWG;
    "AuthPlainParameters": Dict, None, ESMTP | HTTP | LISTEN | PEER | PW | PWG;
    "AuthCramMD5Parameters": Dict, None, CTRL | ESMTP | LISTEN | PEER | PW | PWG;
    // Momentum's outbound_smtp_auth module (modules/outbound-smtp-auth.md): log in to the
    // remote server, in binding_group, binding, domain and global scopes.
    "Outbound_SMTP_AUTH_Type": Enum(&["PLAIN", "LOGIN", "XOAUTH2"]), None, DELIV;
    "Outbound_SMTP_AUTH_User": Str, None, DELIV;
    "Outbound_SMTP_AUTH_Pass": Str, None, DELIV;
    "Outbound_SMTP_AUTH_Key": Str, None, DELIV;
    // Bindery's own: the login may go out on a connection without TLS.
    "Outbound_SMTP_AUTH_Allow_Plaintext": Bool, Some("false"), DELIV;
    // Bindery's own: SMTP AUTH may be used before STARTTLS by these clients (a trusted
    // network). Without it AUTH is offered only under TLS.
    "Allow_Plaintext_Auth": Bool, Some("false"), INBOUND;
    // Bindery's own: how long a failed SMTP AUTH login waits before its 535 (and a locked-out
    // address before its 454), so that guessing is slow.
    "Auth_Failure_Delay": Seconds, Some("1"), INBOUND;
    "AuthorizationParameters": Dict, None, CTRL | ESMTP | LISTEN;
    // Inside `Authorization { Role "name" { ... } }`: Perl regexes matched against a
    // console command line.
    "Allow": RegexList, None, ROLE;

    // ---- ThreadPool, Security, Debug_Flags (accepted so Momentum files load) ----
    "Backlog": Int, Some("0"), TP, restart;
    "Stack_Size": Bytes, Some("0"), TP, restart;
    // Momentum's default user; bindery drops to it only when `User` is set (`privileges.rs`
    // in the server crate says why).
    "User": Str, Some("ecuser"), SEC | DATASRC, restart;
    "Group": Str, Some("ecuser"), SEC, restart;
    "Chroot": Path, None, SEC, restart;
    "Capabilities": List, None, SEC, restart;
    "Supplemental_Groups": List, None, SEC, restart;
    "Critical": List, None, DBG;
    "Error": List, None, DBG;
    "Warning": List, None, DBG;
    "Notice": List, None, DBG;
    "Info": List, None, DBG;
    "Debug": List, None, DBG;
    // Every Momentum module takes a `debug_level` of its own, the loggers too.
    "Debug_Level": Enum(DEBUG_LEVELS), Some("ERROR"), G | ECLOG | BLOG | DELAYDSN | OUTAUTH | BCO | FBL | ADAPT;

    // ---- Lua policy (Momentum's scriptlet module) ----
    // A script's file: a path (absolute, or relative to the file that says it) with or
    // without `.lua`, or a dotted module name looked up along the config search path.
    "Source": Str, None, SCRIPT;
    // Bindery's own: how much one callout may run before it is stopped, in Lua VM
    // instructions and in seconds of wall-clock time.
    "Instruction_Limit": Int, Some("10000000"), SCRIPTLET, restart;
    "Time_Limit": Seconds, Some("1"), SCRIPTLET, restart;
    // Bindery's own: let scripts use Lua's `io`, `os` and file-loading functions. Off by
    // default: a policy script decides about mail, it does not touch the machine.
    "Allow_Unsafe_Libraries": Bool, Some("false"), SCRIPTLET, restart;

    // ---- Momentum's loggers (ec_logger, bounce_logger modules) ----
    // A log whose path is not given is not written. Paths are opened at start.
    "Rejectlog": Path, None, ECLOG, restart;
    "Paniclog": Path, None, ECLOG, restart;
    "Acctlog": Path, None, ECLOG, restart;
    "Importlog": Path, None, ECLOG, restart;
    "Bouncelog": Path, None, BLOG, restart;
    // Seconds between heartbeat lines; 0 writes none.
    "Heartbeat": Seconds, Some("60"), ECLOG | BLOG, restart;
    "Mainlog_Mode": Mode, Some("0644"), ECLOG, restart;
    "Rejectlog_Mode": Mode, Some("0644"), ECLOG, restart;
    "Paniclog_Mode": Mode, Some("0644"), ECLOG, restart;
    "Acctlog_Log_Mode": Mode, Some("0644"), ECLOG, restart;
    "Importlog_Mode": Mode, Some("0644"), ECLOG, restart;
    "Bouncelog_Mode": Mode, Some("0644"), BLOG, restart;
    "Log_Receptions": Bool, Some("true"), ECLOG;
    "Log_Deliveries": Bool, Some("true"), ECLOG;
    "Log_Transient_Failures": Bool, Some("true"), ECLOG | BLOG;
    "Log_Permanent_Failures": Bool, Some("true"), ECLOG;
    "Log_Rejections": Bool, Some("true"), ECLOG;
    "Log_Errors": Bool, Some("true"), ECLOG;
    "Log_Inband_Bounces": Bool, Some("true"), BLOG;
    "Log_Outofband_Bounces": Bool, Some("true"), BLOG;

    // ---- Datasources (ds_core; Lua's msys.db) ----
    // One or more `driver:details` URIs, used in turn; bindery's driver is sqlite.
    "Uri": List, None, DATASRC;
    // Query results kept, and for how long.
    "Cache_Size": Int, Some("1000"), DATASRC;
    "Cache_Life": Seconds, Some("3600"), DATASRC;
    "No_Cache": Bool, Some("false"), DATASRC;
    // A query returning more rows fails; 0: no limit.
    "Max_Rows": Int, Some("0"), DATASRC;
    "Connection_Cache_Size": Int, None, DATASRC;
    "Connection_Cache_Life": Seconds, None, DATASRC;
    "Password": Str, None, DATASRC;
    "Alias_Schemes": List, None, DATASRC;
    "Assume_Charset": Str, None, DATASRC;

    // ---- bounce_classifier_override (modules/bounce-classifier-override.md) ----
    // A file of `domain,bounce_code,rule` lines, or `:datasource:NAME:QUERY` returning
    // those three columns. Unset: Momentum's default file, used when it exists.
    "User_SMTP_Classification_Override": Str, Some("/opt/msys/ecelerity/etc/user_smtp_classification.ovr"), BCO;
    // `bounce_code,rule` lines for out-of-band mail.
    "User_MDN_Classification_Override": Str, Some("/opt/msys/ecelerity/etc/user_mdn_classification.ovr"), BCO;
    // Momentum's "Live Bounce Updates" files: the same formats, after the user's.
    "System_SMTP_Classification_Override": Str, Some("/opt/msys/ecelerity/etc/updates/smtp_classification.ovr"), BCO;
    "System_MDN_Classification_Override": Str, Some("/opt/msys/ecelerity/etc/updates/mdn_classification.ovr"), BCO;
    // Read the system files at all.
    "Enable_System_Updates": Bool, Some("true"), BCO;
    // How often every override source is read again.
    "Refresh": Seconds, Some("300"), BCO;
    // `[ 99 = "profanity" ]`: classes under 100 the overrides may give.
    "Custom_Classes": Dict, None, BCO;

    // ---- adaptive (modules/4-adaptive.md): the module's own stanza ----
    // How often suspensions that ended are lifted (and held queues looked at again).
    "Suspend_Sweep_Interval": Seconds, Some("60"), ADAPT;
    // How often the sweep rules look at each binding::domain's bounce and FBL rates; 0: never.
    "Bounce_Sweep_Interval": Seconds, Some("3600"), ADAPT;
    "Adaptive_Cache_Size": Int, Some("1048576"), ADAPT;
    "Adaptive_Cache_Ttl": Seconds, Some("43200"), ADAPT;
    "Binding_Domain_Cache_Size": Int, Some("999999"), ADAPT;
    "Binding_Domain_Cache_Max_Ttl": Seconds, Some("86400"), ADAPT;
    "Data_Store": List, None, ADAPT;
    "Data_Store_Sync_Interval": Seconds, Some("3600"), ADAPT;
    "Backing_Store_Connect_Timeout": Seconds, Some("5"), ADAPT;
    "Backing_Store_Timeout": Seconds, Some("5"), ADAPT;
    "Enable_Jlog": Bool, Some("false"), ADAPT;
    "Jlog_File": Str, None, ADAPT;
    "Log_Base": Path, None, ADAPT;
    "Split_Logs_By_Binding": Bool, Some("false"), ADAPT;
    "Operational_Log_Level": Str, None, ADAPT;
    "Enable_Logging": Bool, Some("true"), ADAPT;
    "Adaptive_Manage_Options": List, None, ADAPT;
    "Adaptive_Unmanage_Options": List, None, ADAPT;
    "Force_Max_Binding_Age": Bool, Some("false"), ADAPT;
    "Read_Cache_After_Suspension": Bool, Some("false"), ADAPT;
    // false: bounce (FBL) sweep rules never fire.
    "Enable_Bounce_Stats": Bool, Some("true"), ADAPT;
    "Enable_Fbl_Stats": Bool, Some("true"), ADAPT;
    // "SIZE,COUNT": the FBL rules' window is COUNT windows of SIZE seconds (a day).
    "Fbl_Stats_Monitor": Str, Some("14400,6"), ADAPT;

    // ---- adaptive_sweep_rule "name" { } (modules/4-adaptive.md) ----
    // `bc:N` bounce classes or `fbl:TYPE` feedback types; their rates are summed.
    "Codes": List, None, SWEEP;
    "Low_Threshold": Percent, Some("5"), SWEEP;
    // `( "throttle" "down" )`, `( "suspend" "4 hours" )`: Momentum's rule actions.
    "Low_Action": List, None, SWEEP;
    "High_Threshold": Percent, Some("10"), SWEEP;
    "High_Action": List, None, SWEEP;

    // ---- fbl (modules/fbl.md): feedback-loop reports ----
    // Regular expressions of the mailboxes FBL reports arrive at.
    "Addresses": List, None, FBL;
    // Write the fbllog (and allow Enable_FBL_Header_Insertion).
    "Auto_Log": Bool, Some("false"), FBL;
    "Log_Path": Path, Some("/var/log/ecelerity/fbllog.ec"), FBL;
    // The header our mark goes in, and is read back from.
    "Header_Name": Str, Some("X-MSFBL"), FBL;
    "User_String": Str, None, FBL;
    "Message_Disposition": Enum(&["blackhole", "pass"]), Some("blackhole"), FBL;
    "Condition": Str, None, FBL;

    // ---- inbound_audit (Lua's msys.audit) ----
    // "window-seconds,number-of-windows" for each series kept.
    "Monitors": List, None, INAUDIT;
    // How often windows older than every series' reach are dropped.
    "Maintenance_Interval": Seconds, Some("300"), INAUDIT;
    "Log_Dir": Path, Some("/var/log/ecelerity/audit_series_logs"), INAUDIT;
    "Serialize_Dir": Path, Some("/var/log/ecelerity/audit_series_persist"), INAUDIT;

    // ---- opendkim (DKIM signing; Momentum 4's modules/opendkim page) ----
    // `dkim_domain` overrides the instance's value for mail of its responsible domain.
    "Header_Canon": Enum(CANONS), Some("simple"), OPENDKIM | DKIMDOM;
    "Body_Canon": Enum(CANONS), Some("simple"), OPENDKIM | DKIMDOM;
    // Bindery adds ed25519-sha256 (RFC 8463), which Momentum's DKIM1 lacks.
    "Digest": Enum(&["rsa-sha256", "rsa-sha1", "ed25519-sha256"]), Some("rsa-sha256"), OPENDKIM | DKIMDOM;
    // Required: the headers signed, in order; one absent from a message is asserted absent.
    "Headerlist": List, None, OPENDKIM;
    // Signed once more than they occur, so that none can be added after signing.
    "Oversign_Headerlist": List, None, OPENDKIM;
    // Never signed, even when `headerlist` names them.
    "Skip_Headerlist": List, None, OPENDKIM;
    // PEM private key; `%{d}` is the signing domain, `%{s}` the selector.
    "Key": Path, None, OPENDKIM | DKIMDOM;
    "Selector": Str, None, OPENDKIM | DKIMDOM;
    // Signs with this parent domain (`d=`) instead of the responsible domain.
    "Base_Domain": Str, None, DKIMDOM;
    // A validation-context key that must exist for the message to be signed.
    "Sign_Condition": Str, None, OPENDKIM | DKIMDOM;
    "Body_Length_Limit": Bool, Some("false"), OPENDKIM | DKIMDOM;
    "Copy_Headers": Bool, Some("false"), OPENDKIM;
    // Hours a signature stays valid (`x=`); 0: no expiry.
    "Lifetime": Int, Some("0"), OPENDKIM;
    "Keycache_Size": Int, Some("2048"), OPENDKIM | DKIMDOM;
    "Pos_Keycache_Ttl": Seconds, Some("300"), OPENDKIM | DKIMDOM;
    "Neg_Keycache_Ttl": Seconds, Some("3600"), OPENDKIM | DKIMDOM;
    "Testing": Bool, Some("false"), OPENDKIM | DKIMDOM;
    // Bindery's own: a message that should be signed and cannot be (its key is missing or
    // broken) goes out unsigned instead of waiting (4xx) for the key to be fixed.
    "Send_Unsigned_On_Error": Bool, Some("false"), OPENDKIM | DKIMDOM;
    // Which signing statistics are kept (console `signing_stats`): all, global only, none.
    "Signing_Stats": Enum(&["all", "global", "off"]), Some("all"), G;
}
