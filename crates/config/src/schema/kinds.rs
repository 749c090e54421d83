//! What bindery does with each option: the promise `config check` makes.
//!
//! An option that loads and then does nothing is worse than one that is refused: the
//! operator believes something is in force that is not. So every option in
//! [`super::OPTIONS`] has exactly one kind here, and `tests/option_kinds.rs` (bindery crate)
//! fails when an option has none, has two, or is [`Kind::Implemented`] with no code outside
//! the schema that names it.
//!
//! The decision for each option is one line: what Momentum does with it, and why bindery
//! can do without it, or what to do instead.

use super::ScopeKind;
use super::options::OptionId;
use super::{OPTION_COUNT, OPTIONS};
use std::sync::LazyLock;

/// What setting an option does in bindery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Bindery does what Momentum does with it.
    Implemented,
    /// Loads with a warning: nothing that happens to mail depends on it in bindery's
    /// architecture. The text says why.
    Inert(&'static str),
    /// Tuning of Momentum's own internals (threads, event loops, buffers): loads quietly;
    /// `config check --verbose` lists it. The text says why it has no meaning here.
    Tuning(&'static str),
    /// Only its default is honoured (bindery behaves as the default says); any other value
    /// is refused. The text says what the other values do in Momentum.
    DefaultOnly(&'static str),
    /// Only the value given is honoured, because it is what bindery does (which is not
    /// Momentum's default); any other value is refused.
    Fixed(&'static str, &'static str),
    /// Implemented under these kinds of listener (the stanza and its `Listen` and `Peer`
    /// stanzas); refused elsewhere, where the text says what it would do.
    ListenerOnly(&'static [ScopeKind], &'static str),
    /// Only these values are honoured (the first is the default); any other is refused,
    /// and the text says what those do in Momentum.
    Values(&'static [&'static str], &'static str),
    /// A list whose every entry must be one of these words (any case): what bindery does
    /// already. Another entry is refused, and the text says what those do in Momentum.
    Subset(&'static [&'static str], &'static str),
    /// Refused: it would change what happens to mail and bindery does not do that (yet).
    /// The text says what Momentum does with it and what to do instead.
    Refused(&'static str),
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::Implemented => "implemented",
            Kind::Inert(_) => "inert",
            Kind::Tuning(_) => "inert (tuning)",
            Kind::DefaultOnly(_) => "default only",
            Kind::Fixed(..) => "one value only",
            Kind::Subset(..) => "some values only",
            Kind::Values(..) => "some values only",
            Kind::ListenerOnly(..) => "implemented on some listener kinds",
            Kind::Refused(_) => "refused",
        }
    }

    pub fn why(self) -> Option<&'static str> {
        match self {
            Kind::Implemented => None,
            Kind::Inert(w)
            | Kind::Tuning(w)
            | Kind::DefaultOnly(w)
            | Kind::Fixed(_, w)
            | Kind::Subset(_, w)
            | Kind::Values(_, w)
            | Kind::ListenerOnly(_, w)
            | Kind::Refused(w) => Some(w),
        }
    }
}

/// The adaptive module's options in binding and domain scopes.
const ADAPTIVE_LATER: &str = "read by Momentum's adaptive module for what bindery's adaptive delivery does not do (issue 22): its rules adjust connections, deliveries per connection, the message throttle and the retry interval, and its alert mail and timeouts are not built";

/// Options bindery implements: each is read by code outside the schema.
pub const IMPLEMENTED: &[&str] = &[
    "Bind_Address",
    "EHLO_Hostname",
    "Generate_Bounces",
    "Max_Outbound_Connections",
    "Outbound_Throttle_Messages",
    "Outbound_Throttle_Connections",
    "Server_Max_Outbound_Connections",
    "Server_Reserve_Outbound_Connections",
    "Scope_Max_Outbound_Connections",
    "Host_Max_Connects_In_Progress",
    "Host_Connect_Rate",
    "Connection_Allocation_Aggressiveness",
    "Max_Deliveries_Per_Connection",
    "Max_Recipients_Per_Batch",
    "Suspend_Delivery",
    "Max_Retries",
    "Retry_Interval",
    "Max_Retry_Interval",
    "Message_Expiration",
    "Never_Attempt_Expired_Messages",
    "Never_Retry",
    "Gateway",
    "Routes",
    "Remote_SMTP_Port",
    "Prohibited_Hosts",
    "Resolv_Conf",
    "Prefer_IPv6_MXs",
    "Use_IPv6",
    "Min_DNS_TTL",
    "Max_DNS_TTL",
    "Connect_Timeout",
    "EHLO_Timeout",
    "MailFrom_Timeout",
    "RcptTo_Timeout",
    "Body_Timeout",
    "RSET_Timeout",
    "Idle_Timeout",
    "TLS",
    "TLS_IfAvailable_Fallback",
    "Send_8BitMIME",
    "Delayed_Binding_Domain_Fuzz",
    "Chroot",
    "MX_Failures_Fallback_To_A",
    "DNS_Failures_To_Purge",
    "Host_Failure_Retry",
    "XClient",
    "Transform_8BitMIME_Content",
    "MX_Failures_To_Delay",
    "Connect_Timeout_To_Delay",
    "Generate_Delay_DSN",
    "Delay_DSN_Retry_Interval",
    "Delay_DSN_Max_Retry_Interval",
    "LMTP_Port",
    "Blackhole",
    "Max_Recipients_Per_Connection",
    "Allow_Trailing_Whitespace_In_Commands",
    "TLS_Verify",
    "TLS_CA",
    "TLS_Certificate",
    "TLS_Key",
    "MailerDaemon",
    "Bounces_Inline_Original",
    "Default_Binding",
    "Hostname",
    "Spoolbase",
    "Spool_Mode",
    "Spool_Sync",
    "Local_Changes_File",
    "Permastore_Interval",
    "Timeout",
    "Mainlog",
    "Relay_Hosts",
    "Relay_Domains",
    "Open_Relay",
    "Max_Message_Size",
    "Max_Recipients_Per_Message",
    "Max_Receptions_Per_Connection",
    "Idle_Time",
    "Session_Timeout",
    "Banner_Hostname",
    "Postmaster_Address",
    "Context",
    "Enable",
    "Concurrency",
    "File_Mode",
    "Source",
    "Instruction_Limit",
    "Time_Limit",
    "Allow_Unsafe_Libraries",
    "User",
    "Group",
    "Require_EHLO",
    "PidFile",
    "Allow_Null_Envelope_Sender",
    "Allow_IP_Literal",
    "Relay_For_Sending_Domains",
    "Listener_Sessions",
    "Service_Sessions",
    "Static_Banner",
    "Domain_For_Unqualified_Sender_Address",
    "TLS_Protocols",
    "TLS_Client_CA",
    "TLS_Verify_Mode",
    "TLS_Verified_Peer_Can_Relay",
    "Domain_For_Unqualified_Recipient_Addresses",
    "Received_Hostname",
    "Supplemental_Groups",
    "Rejectlog",
    "Allow",
    "Paniclog",
    "Acctlog",
    "Bouncelog",
    "Heartbeat",
    "Mainlog_Mode",
    "Rejectlog_Mode",
    "Paniclog_Mode",
    "Acctlog_Log_Mode",
    "Bouncelog_Mode",
    "Uri",
    "Cache_Size",
    "Cache_Life",
    "No_Cache",
    "Max_Rows",
    "Monitors",
    "User_SMTP_Classification_Override",
    "User_MDN_Classification_Override",
    "System_SMTP_Classification_Override",
    "System_MDN_Classification_Override",
    "Enable_System_Updates",
    "Refresh",
    "Custom_Classes",
    // Out-of-band bounces and the fbl module (issue 22).
    "Bounce_Behavior",
    "Bounce_Pattern",
    "Bounce_Domains",
    "Bounce_Suppress_List",
    "Log_Outofband_Bounces",
    "Enable_FBL_Header_Insertion",
    "Addresses",
    "Auto_Log",
    "Log_Path",
    "Header_Name",
    "Message_Disposition",
    "Maintenance_Interval",
    "Log_Receptions",
    "Log_Deliveries",
    "Log_Transient_Failures",
    "Log_Permanent_Failures",
    "Log_Rejections",
    "Log_Errors",
    "Log_Inband_Bounces",
    "OpenDKIM_Sign",
    "Header_Canon",
    "Body_Canon",
    "Headerlist",
    "Oversign_Headerlist",
    "Skip_Headerlist",
    "Key",
    "Selector",
    "Base_Domain",
    "Sign_Condition",
    "Body_Length_Limit",
    "Lifetime",
    "Keycache_Size",
    "Pos_Keycache_Ttl",
    "Neg_Keycache_Ttl",
    "Send_Unsigned_On_Error",
    "Signing_Stats",
    "Copy_Headers",
    // SMTP AUTH (issue 21); the last two are bindery's own.
    "Allow_Plaintext_Auth",
    "Auth_Failure_Delay",
    // outbound_smtp_auth (issue 21); the last is bindery's own.
    "Outbound_SMTP_AUTH_Type",
    "Outbound_SMTP_AUTH_User",
    "Outbound_SMTP_AUTH_Pass",
    "Outbound_SMTP_AUTH_Key",
    "Outbound_SMTP_AUTH_Allow_Plaintext",
    // Adaptive delivery (issue 22).
    "Adaptive_Enabled",
    "Adaptive_Max_Deliveries_Per_Connection",
    "Adaptive_Max_Outbound_Connections",
    "Adaptive_Outbound_Throttle_Messages",
    "Adaptive_Retry_Interval",
    "Adaptive_Positive_Adjustment_Interval",
    "Suspend_Sweep_Interval",
    "Bounce_Sweep_Interval",
    "Adaptive_Attempt_Threshold",
    "Adaptive_FBL_Volume_Threshold",
    "Adaptive_Sweep_Rule_Enabled",
    "Enable_Bounce_Stats",
    "Enable_Fbl_Stats",
    "Fbl_Stats_Monitor",
    "Warmup_Plan",
    "Warmup_Start",
    "Adaptive_Default_Suspension",
    "Adaptive_Adjustment_Interval",
    "Adaptive_Default_Suspension_Enabled",
    "Adaptive_Rejection_Rate_Suspension_Percentage",
    "Codes",
    "Low_Threshold",
    "Low_Action",
    "High_Threshold",
    "High_Action",
];

/// Every other option, with its kind and the one line that decides it.
#[rustfmt::skip]
pub const NOT_IMPLEMENTED: &[(&str, Kind)] = &[
    // ---- Loggers ----
    ("User_String", Kind::Refused("expands Sieve++ macros (`%{vctx_mess:NAME}`) into the FBL header's user field and the fbllog; bindery leaves that field empty: remove the option")),
    ("Condition", Kind::Refused("marks up only messages whose context has this variable for FBL; bindery marks what Enable_FBL_Header_Insertion enables: remove the option and set that per binding or domain")),
    ("Importlog", Kind::Inert("Momentum logs the outcome of `spool import` there; bindery has no spool import, so that log would stay empty and is not opened")),
    ("Importlog_Mode", Kind::Inert("the importlog's file mode; bindery writes no importlog (it has no spool import)")),
    // ---- Cluster (issue 23) ----
    ("Cluster_Max_Outbound_Connections", Kind::DefaultOnly("caps connections across a Momentum cluster; bindery runs one node until cluster throttles on Redis land (issue 23): use Server_Max_Outbound_Connections per node")),
    ("Cluster_Outbound_Throttle_Messages", Kind::Refused("throttles messages across a Momentum cluster; bindery has no cluster yet (issue 23): use Outbound_Throttle_Messages per node")),
    ("Cluster_Outbound_Throttle_Connections", Kind::Refused("throttles connections across a Momentum cluster; bindery has no cluster yet (issue 23): use Outbound_Throttle_Connections per node")),
    ("Enable_Duravip", Kind::DefaultOnly("moves a binding's IP to another cluster node when its node fails; bindery has no cluster yet (issue 23)")),
    ("Duravip_Preference", Kind::Refused("names the cluster node that should own a DuraVIP address; bindery has no cluster yet (issue 23)")),
    ("Duravip_Follow", Kind::Refused("makes a listener's address follow a DuraVIP binding between cluster nodes; bindery has no cluster yet (issue 23)")),
    // ---- Connections and queues ----
    ("Max_Resident_Active_Queue", Kind::Inert("Momentum moves message bodies out of memory past this many per active queue; bindery never holds bodies in memory, they stay in the spool until sent")),
    ("Max_Resident_Messages", Kind::Inert("Momentum moves message bodies out of memory past this many in all; bindery never holds bodies in memory, they stay in the spool until sent")),
    ("Drop_Body_After_Trans_Fail", Kind::Inert("Momentum frees a message body from memory after that many failed attempts; bindery never holds bodies in memory")),
    // ---- Routing and DNS ----
    ("Delivery_Method", Kind::Values(&["ESMTP", "SMTP", "LMTP"], "ECSTREAM is Momentum's own cluster stream and APN, GCM and MM7 are mobile push and multimedia messaging protocols; bindery sends ESMTP, SMTP (HELO only) and LMTP")),
    ("ECStream_Port", Kind::DefaultOnly("the port for Delivery_Method = ECSTREAM, which bindery does not send")),
    ("Fully_Resolve_Before_SMTP", Kind::DefaultOnly("false lets Momentum connect before every MX host is resolved; bindery always resolves them first")),
    // ---- TLS ----
    ("TLS_Ciphers", Kind::Fixed("DEFAULT", "an OpenSSL cipher list; bindery uses rustls's safe default suites, which is what `DEFAULT` asks for, and cannot take another list")),
    ("Enable_MTA_STS", Kind::DefaultOnly("enforces the recipient domain's MTA-STS policy; not built yet")),
    // ---- Signing, FBL, adaptive (issues 20 and 22) ----
    ("Digest", Kind::Values(&["rsa-sha256", "ed25519-sha256"], "rsa-sha1 signatures are no longer accepted by verifiers (RFC 8301)")),
    ("Testing", Kind::DefaultOnly("Momentum documents it only as \"for a test environment\" without saying what changes; bindery refuses `true` rather than guess")),
    ("DomainKeys", Kind::DefaultOnly("signs with DomainKeys (the pre-DKIM scheme); bindery does not sign it")),
    ("Adaptive_Alert_Email_Destination", Kind::Refused(ADAPTIVE_LATER)),
    ("Adaptive_Body_Timeout", Kind::Refused(ADAPTIVE_LATER)),
    ("Adaptive_EHLO_Timeout", Kind::Refused(ADAPTIVE_LATER)),
    ("Adaptive_Idle_Timeout", Kind::Refused(ADAPTIVE_LATER)),
    ("Adaptive_MailFrom_Timeout", Kind::Refused(ADAPTIVE_LATER)),
    ("Adaptive_Max_Recipients_Per_Batch", Kind::Refused(ADAPTIVE_LATER)),
    ("Adaptive_Max_Recipients_Per_Connection", Kind::Refused(ADAPTIVE_LATER)),
    ("Adaptive_Max_Resident_Active_Queue", Kind::Refused(ADAPTIVE_LATER)),
    ("Adaptive_Max_Retries", Kind::Refused(ADAPTIVE_LATER)),
    ("Adaptive_Max_Retry_Interval", Kind::Refused(ADAPTIVE_LATER)),
    ("Adaptive_Notification_Events", Kind::Refused(ADAPTIVE_LATER)),
    ("Adaptive_Notification_Interval", Kind::Refused(ADAPTIVE_LATER)),
    ("Adaptive_RcptTo_Timeout", Kind::Refused(ADAPTIVE_LATER)),
    ("Adaptive_Retry_Fuzz", Kind::Refused(ADAPTIVE_LATER)),
    ("Adaptive_Rset_Timeout", Kind::Refused(ADAPTIVE_LATER)),
    ("Rollup_MX", Kind::DefaultOnly("queues the domains whose MX is this host as one routing domain, so adaptive delivery's limits apply to them together; arrives with adaptive delivery (issue 22). Bindery already shares connections among domains that route to the same hosts (sites), with limits kept per domain")),
    ("Rollup_MX_Name", Kind::Refused("the routing domain of Rollup_MX; arrives with adaptive delivery (issue 22)")),
    ("Reroute_Domain", Kind::Refused("the xfer module's rerouting of a domain's mail to another Momentum node; bindery has no xfer module")),
    ("Delayed_Reroute_Domain", Kind::Refused("the xfer module's rerouting of delayed mail to another Momentum node; bindery has no xfer module")),
    // ---- Bounces and DSNs (issue 22) ----
    ("MDN_Failures_Notify", Kind::Refused("sends failure notices for mobile (MM7) delivery; bindery does not deliver MM7")),
    ("Generate_Bounces_For_Multi_Recipient_Policy_Rejections", Kind::Refused("whether Momentum bounces the recipients a policy rejects after DATA in multi-recipient mail; bindery answers the DATA for the whole message")),
    ("Async_Bounce_Rendering", Kind::Inert("Momentum renders bounces off its event loop; bindery renders them on delivery's own tasks either way")),
    // ---- Global: node, spool, files ----
    ("Binding_Auto_Replumb", Kind::DefaultOnly("`enabled` makes Momentum add binding addresses to the network interface; bindery expects them to be configured on the host")),
    ("Force_Fsync", Kind::Inert("Momentum's switch to fsync spool writes; bindery makes every message durable before it answers 250 (Spool_Sync) and cannot be told not to")),
    ("Keep_Message_Dicts_In_Memory", Kind::Inert("Momentum keeps message metadata in memory instead of re-reading it; bindery keeps envelopes in memory always")),
    ("Local_Changes_Only", Kind::Fixed("true", "false, Momentum's default, writes a run-time change into the operator's own file where the option was last set; bindery never writes to a file the operator wrote and keeps every change in Local_Changes_File, which is what true asks for")),
    ("Large_Message_Threshold", Kind::Inert("Momentum keeps bodies above this size on disk instead of in memory; bindery keeps every body on disk")),
    ("Masterdb_File", Kind::Inert("Momentum's internal database of runtime state; bindery keeps no such file")),
    ("Server_Max_File_Descriptors", Kind::Inert("the descriptor limit Momentum asks for; bindery raises its limit to the system's hard limit at start and sizes its caps to it")),
    ("TimestampFormat", Kind::Inert("the time format of what Momentum prints to stderr when run with -d; bindery's stderr log is tracing's, with RFC 3339 times, and Momentum's own logs keep their documented formats")),
    // ---- Inbound SMTP ----
    ("Reconfig_Message", Kind::DefaultOnly("the reply while Momentum reloads; bindery installs a new configuration without refusing sessions")),
    // Momentum offers PIPELINING, 8BITMIME and STARTTLS by itself and adds the listed ones;
    // bindery offers every one of these on every listener (STARTTLS where a certificate is set).
    ("SMTP_Extensions", Kind::Subset(&["ENHANCEDSTATUSCODES", "ENHANCEDSTATUSCODE", "STARTTLS", "PIPELINING", "8BITMIME", "SIZE", "DSN", "SMTPUTF8", "AUTH PLAIN", "AUTH LOGIN", "AUTH CRAM-MD5"], "list each AUTH mechanism as its own entry (\"AUTH PLAIN\" \"AUTH LOGIN\"); AUTH DIGEST-MD5 is not built (RFC 6331 made it historic): offer AUTH PLAIN over TLS with the same digest:// file in AuthPlainParameters; XCLIENT, XREMOTEIP and XSETCONTEXT let a trusted client change its address or context, and ALWAYS-ALLOW authenticates everyone, which bindery does not offer (use Proxy_Protocol for the client's address, Always_Allow in a Peer for trusted logins)")),
    ("STARTTLS_Injection_Policy", Kind::Fixed("ignore", "`reject` (Momentum's default) answers commands a client pipelined after STARTTLS with an error; bindery drops them unread (CVE-2011-0411)")),
    ("Use_SSL", Kind::ListenerOnly(&[ScopeKind::EsmtpListener], "implicit TLS (port 465 style) on an ESMTP listener; bindery's console and HTTP listeners do not take it")),
    ("Proxy_Protocol", Kind::ListenerOnly(&[ScopeKind::EsmtpListener], "reads the client's address from a PROXY header; bindery's console and HTTP listeners do not take it")),
    ("Proxy_Protocol_Timeout", Kind::ListenerOnly(&[ScopeKind::EsmtpListener], "how long a PROXY header may take; bindery's console and HTTP listeners do not take PROXY")),
    ("Pathway", Kind::Refused("names the pathway stanza a listener's sessions take their options from; not built yet")),
    ("Inbound_Throttle_Messages", Kind::Refused("limits the rate of messages a pathway accepts; not built yet")),
    // ---- Listener tuning ----
    ("Connection_Cache_Size", Kind::Tuning("database connections Momentum keeps per datasource; bindery keeps one per SQLite file open")),
    ("Connection_Cache_Life", Kind::Tuning("how long Momentum keeps an idle database connection; bindery keeps its SQLite file open")),
    ("Password", Kind::Inert("a database login; SQLite, bindery's one datasource driver, has none")),
    ("Alias_Schemes", Kind::Inert("maps URI schemes to datasource drivers; bindery has one driver, sqlite:")),
    ("Log_Dir", Kind::Inert("where Momentum writes audit series defined with `serialize`; msys.audit_series.define refuses `serialize`, so nothing is written there")),
    ("Serialize_Dir", Kind::Refused("Momentum keeps the inbound_audit counts in this folder across a restart; bindery's start at zero after a restart (they outlive a config reload), so limits built on them would reset: remove the option")),
    ("Assume_Charset", Kind::Inert("the charset of text a driver cannot label; SQLite text is UTF-8")),
    ("Listen_Backlog", Kind::Tuning("the kernel's accept backlog for the socket; bindery listens with the system's default")),
    ("Accept_Queue_Backlog", Kind::Tuning("Momentum's queue of accepted connections waiting for a thread")),
    ("Pool_Name", Kind::Tuning("the Momentum thread pool a listener's work runs on; bindery has one task scheduler")),
    ("Event_Loop", Kind::Tuning("the Momentum event loop a listener runs on; bindery has one task scheduler")),
    ("Disable_Nagle_Algorithm", Kind::Tuning("sets TCP_NODELAY on sessions; bindery writes whole replies, so Nagle's delay never holds one")),
    ("TCP_Recv_Buffer_Size", Kind::Tuning("the socket's receive buffer; the kernel sizes it")),
    ("TCP_Send_Buffer_Size", Kind::Tuning("the socket's send buffer; the kernel sizes it")),
    ("Control_Client_Timeout", Kind::Inert("the timeout of the control connections Momentum opens as a client (eccmgrio:// in a cluster); bindery opens none. A console connection's idle timeout is the Control_Listener's Timeout")),
    // ---- Authentication and authorization (SMTP AUTH in issue 21; the console's in issue 18) ----
    ("Enable_Authorization", Kind::ListenerOnly(&[ScopeKind::ControlListener], "authorization of SMTP AUTH users; on the console (Authorization stanza) it is implemented")),
    ("Always_Allow", Kind::ListenerOnly(&[ScopeKind::ControlListener, ScopeKind::EsmtpListener], "makes every login succeed for these clients; implemented for the console and SMTP AUTH, not for HTTP listeners (their API keys are checked always)")),
    ("Always_Deny", Kind::ListenerOnly(&[ScopeKind::ControlListener, ScopeKind::EsmtpListener], "makes every login fail for these clients; implemented for the console and SMTP AUTH, not for HTTP listeners")),
    ("AuthorizationParameters", Kind::ListenerOnly(&[ScopeKind::ControlListener], "where SMTP AUTH users' roles come from; arrives with SMTP AUTH (issue 21); on the console it is implemented (groups:// files)")),
    ("AuthDigestMD5Parameters", Kind::ListenerOnly(&[ScopeKind::ControlListener], "DIGEST-MD5 for SMTP AUTH is not built (RFC 6331 made it historic); point AuthPlainParameters or AuthLoginParameters at the same digest:// file and offer \"AUTH PLAIN\" over TLS. On the console it is implemented")),
    ("Enable_Authentication", Kind::ListenerOnly(&[ScopeKind::ControlListener], "on an ESMTP listener, listing \"AUTH PLAIN\" (or LOGIN, CRAM-MD5) in SMTP_Extensions with its Auth*Parameters turns SMTP AUTH on; HTTP listeners check API keys always. On the console it is implemented")),
    ("AuthLoginParameters", Kind::ListenerOnly(&[ScopeKind::EsmtpListener], "the password file of SMTP AUTH LOGIN; the console logs in with AuthDigestMD5Parameters only")),
    ("AuthPlainParameters", Kind::ListenerOnly(&[ScopeKind::EsmtpListener], "the password file of SMTP AUTH PLAIN; HTTP listeners check API keys instead")),
    ("AuthCramMD5Parameters", Kind::ListenerOnly(&[ScopeKind::EsmtpListener], "the password file of SMTP AUTH CRAM-MD5; the console logs in with AuthDigestMD5Parameters only")),
    ("API_Key_File", Kind::ListenerOnly(&[ScopeKind::HttpListener], "bindery's key file of the Transmissions API, which HTTP listeners serve")),
    ("API_Max_Request_Size", Kind::ListenerOnly(&[ScopeKind::HttpListener], "bindery's limit on a Transmissions API request, which HTTP listeners serve")),
    // ---- ThreadPool, Security, Debug_Flags ----
    ("Backlog", Kind::Tuning("a Momentum thread pool's job queue length; bindery has one task scheduler")),
    ("Stack_Size", Kind::Tuning("a Momentum thread pool's thread stack size; bindery has one task scheduler")),
    ("Capabilities", Kind::Inert("the capabilities Momentum keeps after it drops root (to bind ports a reload adds, to plumb addresses); bindery binds every listener before the drop, opens new ones only at a restart and never plumbs, so it keeps none")),
    ("Critical", Kind::Inert("which Momentum subsystems log at this level; bindery's log level is BINDERY_LOG")),
    ("Error", Kind::Inert("which Momentum subsystems log at this level; bindery's log level is BINDERY_LOG")),
    ("Warning", Kind::Inert("which Momentum subsystems log at this level; bindery's log level is BINDERY_LOG")),
    ("Notice", Kind::Inert("which Momentum subsystems log at this level; bindery's log level is BINDERY_LOG")),
    ("Info", Kind::Inert("which Momentum subsystems log at this level; bindery's log level is BINDERY_LOG")),
    ("Adaptive_Cache_Size", Kind::Tuning("the size of Momentum's cache of adaptive parameters; bindery keeps every binding::domain it acted on in memory")),
    ("Adaptive_Cache_Ttl", Kind::Tuning("how long Momentum caches adaptive parameters; bindery keeps them in memory until they climb back")),
    ("Binding_Domain_Cache_Size", Kind::Tuning("the size of Momentum's binding::domain cache in front of Riak; bindery has no such store")),
    ("Binding_Domain_Cache_Max_Ttl", Kind::Tuning("how long Momentum's binding::domain cache keeps an entry in front of Riak; bindery has no such store")),
    ("Data_Store", Kind::Refused("the Riak servers Momentum keeps adaptive parameters in; bindery keeps them in `adaptive.state` beside the spool: remove the option")),
    ("Data_Store_Sync_Interval", Kind::Inert("how often Momentum copies its tables to Riak or LevelDB; bindery writes `adaptive.state` at every change")),
    ("Backing_Store_Connect_Timeout", Kind::Inert("the connect timeout to Momentum's Riak store; bindery has no such store")),
    ("Backing_Store_Timeout", Kind::Inert("the reply timeout of Momentum's Riak store; bindery has no such store")),
    ("Enable_Jlog", Kind::DefaultOnly("writes adaptive changes to a jlog journal; bindery writes them to the paniclog (`adaptive:` lines) and its JSON mainlog")),
    ("Jlog_File", Kind::Inert("where the jlog journal of Enable_Jlog goes; bindery writes none")),
    ("Log_Base", Kind::Refused("the folder of Momentum's adaptive operational logs; bindery writes `adaptive:` lines to the paniclog and records to the JSON mainlog: remove the option")),
    ("Split_Logs_By_Binding", Kind::DefaultOnly("one adaptive operational log per binding; bindery writes the paniclog's `adaptive:` lines")),
    ("Operational_Log_Level", Kind::Inert("the level of Momentum's adaptive operational log; bindery logs every adjustment")),
    ("Enable_Logging", Kind::DefaultOnly("false turns Momentum's adaptive operational log off; bindery always logs adjustments")),
    ("Adaptive_Manage_Options", Kind::Refused("lets rules adjust more options (timeouts, batch sizes); bindery's rules adjust connections, deliveries per connection, the message throttle and the retry interval: remove the option")),
    ("Adaptive_Unmanage_Options", Kind::Refused("stops the rules adjusting an option; bindery's rules always may: clip it with a range such as adaptive_max_outbound_connections = ( 20 20 ) instead")),
    ("Force_Max_Binding_Age", Kind::DefaultOnly("treats every binding as fully warmed up in Momentum's age-based throttles; bindery has no age-based throttles (it has warm-up plans)")),
    ("Read_Cache_After_Suspension", Kind::DefaultOnly("resumes a suspended domain with the throttles it had before; bindery keeps a binding::domain's lowered limits through its suspension")),
    ("Debug", Kind::Inert("which Momentum subsystems log at this level; bindery's log level is BINDERY_LOG")),
    ("Debug_Level", Kind::Inert("how much Momentum (or one module) writes to the paniclog; bindery writes every warning and error there, and its stderr level is BINDERY_LOG")),
];

static KINDS: LazyLock<Vec<Option<Kind>>> = LazyLock::new(|| {
    let mut kinds = vec![None; OPTION_COUNT];
    let mut put = |name: &str, kind: Kind| {
        if let Some(i) = OPTIONS.iter().position(|o| o.name == name) {
            kinds[i] = Some(kind);
        }
    };
    for name in IMPLEMENTED {
        put(name, Kind::Implemented);
    }
    for (name, kind) in NOT_IMPLEMENTED {
        put(name, *kind);
    }
    kinds
});

/// The option's kind. An option missing from both lists (which the kinds test forbids) is
/// refused rather than silently accepted.
pub fn kind_of(id: OptionId) -> Kind {
    KINDS
        .get(id.index())
        .copied()
        .flatten()
        .unwrap_or(Kind::Refused("bindery has not decided what to do with it"))
}
