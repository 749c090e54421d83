//! Momentum's modules, each known by name with the decision bindery takes about it.
//!
//! A Momentum configuration loads modules by writing their stanza at the top level
//! (`ec_logger "mainlog" { ... }`, `dnsbuf { ... }`). The modules are those of Momentum 4's
//! "Modules Summary" (SparkPost/support-docs `content/momentum/4/modules/`), plus the
//! stanzas the cluster manager's files use. Each is one of three kinds:
//!
//! - **implemented**: it does in bindery what it does in Momentum (`scriptlet`, `ec_logger`
//!   and `bounce_logger`, which the scope table carries with their options);
//! - **inert**: nothing that happens to mail depends on it in bindery (tuning, the cluster
//!   manager's own processes on a single node, definitions nothing here reads). It loads
//!   with a warning that says why; its options are checked against its table, so a typo is
//!   still an error;
//! - **refused**: it would change what happens to mail, or write a log an operator's tools
//!   read, and bindery does not do that. The stanza is an error that says what Momentum does
//!   with it and what to do instead. Loggers are refused, not inert: a log the operator
//!   expects and that is never written is the silent failure this table exists to prevent.
//!
//! One line each. The option tables of inert modules come from their pages.

use super::options::ValueType::{self, *};

/// How many instances a module stanza may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instances {
    /// `dnsbuf { }`: one, without a name.
    Singleton,
    /// `ec_logger "name" { }` or `ec_logger { }`: any number.
    Named,
}

/// What bindery does with a module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleKind {
    Implemented,
    Inert(&'static str),
    Refused(&'static str),
}

impl ModuleKind {
    pub fn word(self) -> &'static str {
        match self {
            ModuleKind::Implemented => "implemented",
            ModuleKind::Inert(_) => "inert",
            ModuleKind::Refused(_) => "refused",
        }
    }
}

/// One module.
#[derive(Debug)]
pub struct ModuleDef {
    pub name: &'static str,
    pub instances: Instances,
    pub kind: ModuleKind,
    /// The options an inert module takes, with their types (refused modules are refused
    /// whole, so theirs are not listed).
    pub options: &'static [(&'static str, ValueType)],
    /// Stanzas an inert module may hold (`Listen` in a cluster listener); their contents are
    /// not checked, as nothing reads them.
    pub stanzas: &'static [&'static str],
}

use Instances::{Named as N, Singleton as S};
use ModuleKind::{Implemented as Impl, Inert, Refused};

const fn m(
    name: &'static str,
    instances: Instances,
    kind: ModuleKind,
    options: &'static [(&'static str, ValueType)],
    stanzas: &'static [&'static str],
) -> ModuleDef {
    ModuleDef {
        name,
        instances,
        kind,
        options,
        stanzas,
    }
}

const NONE: &[(&str, ValueType)] = &[];
const NO_STANZAS: &[&str] = &[];
const LISTEN_AND_PEER: &[&str] = &["Listen", "Peer"];

const CLUSTER_LATER: &str =
    "arrives with cluster throttles on Redis (issue 23); until then run each node on its own";
const DKIM_LATER: &str = "arrives with DKIM signing (issue 20)";
const AUTH_ELSEWHERE: &str = "checks SMTP AUTH logins against another source; bindery checks them against password files (file://, digest://, crypt:// in AuthPlainParameters and the like): not built";
const SCANNER: &str = "bindery does not scan content: scan before injection, or from a Lua policy that calls your scanner";
const LOG_NOT_YET: &str = "bindery writes its JSON mainlog (`Mainlog`) and nothing else yet: point your tools at it, or wait for this format";

/// Every module bindery knows, by Momentum's name.
#[rustfmt::skip]
pub static MODULES: &[ModuleDef] = &[
    m("ac_auth", N, Refused("lets a Lua module decide SMTP AUTH; bindery checks SMTP AUTH against password files (AuthPlainParameters and the like), and the policy sees the outcome in auth_user and auth_status"), NONE, NO_STANZAS),
    m("adaptive", S, Impl, NONE, NO_STANZAS),
    m("adaptive_backstore_leveldb", S, Refused("adaptive delivery's store in Riak or LevelDB; bindery keeps suspensions and adjustments in `adaptive.state` beside the spool: remove this stanza"), NONE, NO_STANZAS),
    m("adaptive_backstore_riak", S, Refused("adaptive delivery's store in Riak or LevelDB; bindery keeps suspensions and adjustments in `adaptive.state` beside the spool: remove this stanza"), NONE, NO_STANZAS),
    m("alerting", S, Refused("sends alert mail from Lua policies and on events; not built yet"), NONE, NO_STANZAS),
    m("alias", N, Refused("rewrites recipients from an alias datasource; not built yet: rewrite in a Lua policy"), NONE, NO_STANZAS),
    m("antivirus", N, Refused(SCANNER), NONE, NO_STANZAS),
    m("apn", S, Refused("delivers Apple push notifications; bindery delivers mail only"), NONE, NO_STANZAS),
    m("apn_logger", N, Refused("logs Apple push notifications; bindery delivers mail only"), NONE, NO_STANZAS),
    m("as_logger", S, Refused("replicates inbound_audit's audit series to disk; bindery has no audit series"), NONE, NO_STANZAS),
    m("auth_ds", S, Refused(AUTH_ELSEWHERE), NONE, NO_STANZAS),
    m("auth_radius", S, Refused(AUTH_ELSEWHERE), NONE, NO_STANZAS),
    m("beik", S, Refused(SCANNER), NONE, NO_STANZAS),
    m("bind_address_secondary", N, Refused("gives a binding a second (IPv6) source address; not built yet: one binding per address"), NONE, NO_STANZAS),
    m("bounce_classifier_override", S, Impl, NONE, NO_STANZAS),
    m("bounce_logger", N, Impl, NONE, NO_STANZAS),
    m("brightmail", N, Refused(SCANNER), NONE, NO_STANZAS),
    m("bzip2io", S, Inert("bzip2 compression for compress_spool; bindery's spool format is its own and uncompressed"), NONE, NO_STANZAS),
    m("cassandra_client", N, Inert("the client the cluster manager and adaptive use for their Cassandra store; bindery runs one node and keeps no Cassandra data"), &[("uri", List), ("keyspace", Str), ("consistency", Str)], NO_STANZAS),
    m("chunk_logger", N, Refused(LOG_NOT_YET), NONE, NO_STANZAS),
    m("cidrdb", S, Refused("gives Lua IP lookups in CIDR files; not built yet (issue 19)"), NONE, NO_STANZAS),
    m("clamav", N, Refused(SCANNER), NONE, NO_STANZAS),
    m("cloudmark", S, Refused(SCANNER), NONE, NO_STANZAS),
    m("cluster", S, Refused(CLUSTER_LATER), NONE, NO_STANZAS),
    m("commtouch_ctasd", N, Refused(SCANNER), NONE, NO_STANZAS),
    m("compress_spool", S, Inert("compresses large spool files; bindery's spool format is its own and uncompressed"), &[("compress", Str), ("minimum_size", Bytes), ("read_only", Bool)], NO_STANZAS),
    m("conntrol", N, Refused("limits inbound connections per client address; not built yet: use Concurrency and Peer stanzas"), NONE, NO_STANZAS),
    m("csapi", N, Refused(SCANNER), NONE, NO_STANZAS),
    m("curfew", S, Refused("suspends delivery for bindings, groups or domains on a schedule; not built yet: set Suspend_Delivery from cron through the console"), NONE, NO_STANZAS),
    m("custom_bounce_logger", N, Refused(LOG_NOT_YET), NONE, NO_STANZAS),
    m("custom_logger", N, Refused(LOG_NOT_YET), NONE, NO_STANZAS),
    m("dane", N, Refused("verifies TLS by DANE TLSA records; not built yet: use TLS_Verify"), NONE, NO_STANZAS),
    m("delay_dsn", N, Impl, NONE, NO_STANZAS),
    m("dkim2", N, Refused(DKIM_LATER), NONE, NO_STANZAS),
    m("dk_sign", N, Refused("signs with DomainKeys (the scheme before DKIM); bindery will sign DKIM only (issue 20)"), NONE, NO_STANZAS),
    m("dk_validate", N, Refused("checks DomainKeys on inbound mail; bindery does not"), NONE, NO_STANZAS),
    m("dkim_sign", N, Refused(DKIM_LATER), NONE, NO_STANZAS),
    m("dkim_validate", N, Refused("checks DKIM on inbound mail; not built yet"), NONE, NO_STANZAS),
    m("dnsbuf", S, Inert("sizes the DNS socket's buffers; bindery's resolver (hickory) sizes its own"), &[("sndbuf_size", Bytes), ("rcvbuf_size", Bytes), ("interval", Seconds)], NO_STANZAS),
    m("ds_ldap", S, Inert("the LDAP driver for datasources; it does nothing by itself, and the modules that query it are refused"), NONE, NO_STANZAS),
    m("ds_core", S, Inert("the datasource layer; it does nothing by itself, and the modules that query it are refused"), &[("serialized", Bool)], NO_STANZAS),
    m("Datasource", N, Impl, NONE, NO_STANZAS),
    m("ec_logger", N, Impl, NONE, NO_STANZAS),
    m("ECCluster_Listener", S, Inert("the cluster manager's listener (eccmgr, not the MTA); bindery runs one node"), &[("logs", Dict), ("control_group", Str), ("cluster_group", Str)], LISTEN_AND_PEER),
    m("ECStream_Listener", S, Refused("accepts mail over Momentum's ECStream protocol; bindery takes SMTP only"), NONE, NO_STANZAS),
    m("Destination", N, Refused("where SNMP traps go; bindery exposes its figures at /metrics (Prometheus) instead"), NONE, NO_STANZAS),
    m("eleven", S, Refused(SCANNER), NONE, NO_STANZAS),
    m("EventLoop", N, Inert("a Momentum event loop and its threads; bindery has one task scheduler"), &[("concurrency", Int)], NO_STANZAS),
    m("engagement_tracker", N, Refused("rewrites links for open and click tracking; not built yet"), NONE, NO_STANZAS),
    m("event_hydrant", N, Refused("streams delivery events to a collector; not built yet: read the JSON mainlog"), NONE, NO_STANZAS),
    m("exim_logger", N, Refused(LOG_NOT_YET), NONE, NO_STANZAS),
    m("fbl", S, Impl, NONE, NO_STANZAS),
    m("fingerprint", N, Refused("guesses a client's OS from its TCP packets for policy; not built yet"), NONE, NO_STANZAS),
    m("gcm", S, Refused("delivers Google Cloud Messaging pushes; bindery delivers mail only"), NONE, NO_STANZAS),
    m("gcm_logger", N, Refused("logs Google Cloud Messaging pushes; bindery delivers mail only"), NONE, NO_STANZAS),
    m("gzipio", S, Inert("gzip compression for compress_spool; bindery's spool format is its own and uncompressed"), NONE, NO_STANZAS),
    m("ha_proxy_client", N, Refused("sends outbound connections through HAProxy; not built yet"), NONE, NO_STANZAS),
    m("http_logger", N, Refused(LOG_NOT_YET), NONE, NO_STANZAS),
    m("httpsrv", S, Inert("Momentum's HTTP server module; bindery's HTTP_Listener serves without it (/metrics, and the Transmissions API where its Listen names an API_Key_File)"), NONE, NO_STANZAS),
    m("icu", S, Inert("Unicode support Momentum loads for other modules; bindery is Unicode-aware throughout"), NONE, NO_STANZAS),
    m("ilf_logger", S, Inert("logs usage for Message Systems' usage-based licence; bindery has no licence to count"), &[("filename_format", Str), ("write_interval", Seconds)], NO_STANZAS),
    m("inbound_audit", S, Impl, NONE, NO_STANZAS),
    m("ipv6_lookup", N, Refused("looks up A records for IPv6 MX hosts; bindery follows Use_IPv6"), NONE, NO_STANZAS),
    m("jlog", S, Refused("writes logs as jlog journals other tools read; not built yet"), NONE, NO_STANZAS),
    m("live_bounce_updates", N, Refused("fetches Message Systems' bounce rule updates from their service; bindery ships its own rules (crates/bounce/rules/shipped.rules) and reads rule updates from bounce_classifier_override's system_smtp_classification_override and system_mdn_classification_override files: put updates there and remove this stanza"), NONE, NO_STANZAS),
    m("Logs", S, Inert("the cluster manager's log collection (eccmgr, not the MTA); bindery runs one node"), &[("logfile", Str), ("file_mode", Mode), ("dir_mode", Mode)], &["Subscriber", "Publisher", "Manager"]),
    m("mail_loop", N, Refused("suppresses mail that loops back; not built yet"), NONE, NO_STANZAS),
    m("maildir", N, Refused("stores mail in local maildirs instead of delivering it; bindery delivers by SMTP only"), NONE, NO_STANZAS),
    m("mm7", S, Refused("delivers MMS by MM7; bindery delivers mail only"), NONE, NO_STANZAS),
    m("mm7_serv", S, Refused("accepts MMS by MM7; bindery takes mail only"), NONE, NO_STANZAS),
    m("mms_bounce_logger", N, Refused("logs MMS bounces; bindery delivers mail only"), NONE, NO_STANZAS),
    m("mms_logger", N, Refused("logs MMS; bindery delivers mail only"), NONE, NO_STANZAS),
    m("msg_gen", S, Refused("Momentum's message generation on its Cassandra cluster store (stored templates, recipient lists, deferred generation); bindery generates each transmission in the request: set API_Key_File in the HTTP_Listener's Listen and remove this module"), NONE, NO_STANZAS),
    m("msgcserver_listener", S, Inert("the cluster message bus's listener; bindery runs one node"), NONE, LISTEN_AND_PEER),
    m("msgc_client", S, Inert("the cluster's message bus client; bindery runs one node"), &[("server", List), ("bind_address", Str), ("connect_timeout", Seconds), ("reconnect_interval", Seconds), ("keepalive_interval", Seconds), ("idle_timeout", Seconds), ("debug_level", Str)], NO_STANZAS),
    m("msgc_server", S, Inert("the cluster's message bus server; bindery runs one node"), &[("peers", Dict), ("manager", Str), ("port", Int), ("max_backlog", Int), ("messages_per_iter", Int), ("tcpbuf_size", Bytes), ("debug_level", Str)], NO_STANZAS),
    m("mxip", N, Refused("delivers to domains whose MX is a literal IP address; not built yet"), NONE, NO_STANZAS),
    m("openarc", N, Refused("signs and checks ARC headers; not built yet"), NONE, NO_STANZAS),
    m("opendkim", N, Impl, NONE, NO_STANZAS),
    m("outbound_audit", N, Refused("keeps time series of remote domains' replies for Lua; not built yet"), NONE, NO_STANZAS),
    m("outbound_smtp_auth", S, Impl, NONE, NO_STANZAS),
    m("persist_io", S, Inert("a disk cache between Momentum's loggers and their IO wrappers; bindery's loggers write their files directly"), &[("persist_path", Path), ("dirmode", Mode), ("filemode", Mode)], NO_STANZAS),
    m("pipe_io", S, Refused("writes logs through a program; not built yet"), NONE, NO_STANZAS),
    m("pipe_transport", N, Refused("delivers mail to a local program; bindery delivers by SMTP only"), NONE, NO_STANZAS),
    m("postfix_logger", N, Refused(LOG_NOT_YET), NONE, NO_STANZAS),
    m("reception_timing", N, Refused(LOG_NOT_YET), NONE, NO_STANZAS),
    m("response_transcode", S, Refused("rewrites remote replies that are known to be wrong; not built yet"), NONE, NO_STANZAS),
    m("restinjector", S, Refused("Momentum 3's /v1.0/inject; bindery serves Momentum 4's POST /api/v1/transmissions instead: set API_Key_File in the HTTP_Listener's Listen"), NONE, NO_STANZAS),
    m("sched", S, Refused("runs console commands on a schedule; not built yet: run `bindery console` from cron"), NONE, NO_STANZAS),
    m("scriptlet", N, Impl, NONE, NO_STANZAS),
    m("securecreds", S, Refused("decrypts passwords the configuration holds encrypted; not built yet: keep them in files readable by bindery's user"), NONE, NO_STANZAS),
    m("seedlist", N, Refused("copies mail to a seed list for deliverability monitoring; not built yet"), NONE, NO_STANZAS),
    m("senderid", N, Refused("checks Sender ID on inbound mail; not built yet"), NONE, NO_STANZAS),
    m("sendmail_logger", N, Refused(LOG_NOT_YET), NONE, NO_STANZAS),
    m("SNMP", S, Refused("answers SNMP queries about the MTA's state; bindery exposes its figures at /metrics (Prometheus) instead"), NONE, NO_STANZAS),
    m("SNMP_TRAPS", S, Refused("sends SNMP traps on alerts; bindery exposes its figures at /metrics (Prometheus) instead"), NONE, NO_STANZAS),
    m("smpp", S, Refused("delivers SMS by SMPP; bindery delivers mail only"), NONE, NO_STANZAS),
    m("smpp_bounce_logger", N, Refused("logs SMS bounces; bindery delivers mail only"), NONE, NO_STANZAS),
    m("smpp_logger", N, Refused("logs SMS; bindery delivers mail only"), NONE, NO_STANZAS),
    m("smtp_auth_proxy", N, Refused(AUTH_ELSEWHERE), NONE, NO_STANZAS),
    m("smtp_cbv", N, Refused("verifies senders by calling their MX back; not built yet"), NONE, NO_STANZAS),
    m("smtp_rcptto_proxy", N, Refused("checks recipients with the next hop before accepting them; not built yet"), NONE, NO_STANZAS),
    m("spamassassin", S, Refused(SCANNER), NONE, NO_STANZAS),
    m("spf_macros", S, Inert("SPF macro expansion for spf_v1 and senderid, which are refused; alone it does nothing"), NONE, NO_STANZAS),
    m("spf_v1", N, Refused("checks SPF on inbound mail; not built yet"), NONE, NO_STANZAS),
    m("static_routes", N, Refused("routes domains to fixed servers; use Gateway or Routes in the domain stanza, which bindery implements"), NONE, NO_STANZAS),
    m("substitution_engine", S, Inert("Momentum's template substitution for message generation; bindery's Transmissions API substitutes itself (SparkPost's template language)"), NONE, NO_STANZAS),
    m("suppress_spool", N, Refused("accepts mail without writing it to disk until delivery fails; bindery makes every accepted message durable first"), NONE, NO_STANZAS),
    m("syslog_io", S, Refused("writes logs to syslog; not built yet: bindery logs to stderr, which journald keeps"), NONE, NO_STANZAS),
    m("tls_macros", N, Inert("TLS fields for custom_logger's formats, which is refused; alone it does nothing"), NONE, NO_STANZAS),
    m("url_ripper", N, Refused("extracts URLs from bodies for DNS blocklist checks; not built yet"), NONE, NO_STANZAS),
];

/// Finds a module by name, ignoring case (`EC_logger` is `ec_logger`).
pub fn module_by_name(name: &str) -> Option<&'static ModuleDef> {
    MODULES.iter().find(|m| m.name.eq_ignore_ascii_case(name))
}
