//! Scope kinds: the stanzas of the language and where each may be opened.

/// A kind of scope. `Global` is the file's top level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ScopeKind {
    Global = 0,
    BindingGroup,
    Binding,
    Domain,
    Host,
    EsmtpListener,
    ControlListener,
    HttpListener,
    Listen,
    Peer,
    Pathway,
    PathwayGroup,
    ThreadPool,
    Security,
    DebugFlags,
    /// `scriptlet "name" { }`: Momentum's Lua module instance.
    Scriptlet,
    /// `script "name" { source = ... }` inside a scriptlet: one policy script.
    Script,
    /// `ec_logger "name" { mainlog = ... }`: Momentum's `@`-separated logs.
    EcLogger,
    /// `bounce_logger "name" { bouncelog = ... }`: the bouncelog.
    BounceLogger,
    /// `Authorization { Role "r" { allow = ( ... ) } }`: which console commands a role runs.
    Authorization,
    /// `Role "name" { allow = ( "regex" ... ) }` inside `Authorization`.
    Role,
    /// `delay_dsn "name" { }`: Momentum's module that sends delay notices
    /// (`generate_delay_dsn`).
    DelayDsn,
    /// `Datasource "name" { uri = ( "sqlite:/path" ) }`: a database Lua's `msys.db` queries
    /// through a cache of that name.
    Datasource,
    /// `inbound_audit { monitors = ( "300,6" ) }`: connections, receptions and rejections per
    /// client address in time windows, for Lua's `msys.audit`.
    InboundAudit,
    /// `opendkim "name" { headerlist = ( ... ) key = ... }`: one DKIM signature each message
    /// whose `opendkim_sign` is on gets (issue 20).
    OpenDkim,
    /// `dkim_domain "example.com" { selector = ... }` inside `opendkim`: how mail whose
    /// responsible domain this is gets signed.
    DkimDomain,
    /// `outbound_smtp_auth { }`: Momentum's module that logs in to remote servers with the
    /// `Outbound_SMTP_AUTH_*` options (issue 21).
    OutboundSmtpAuth,
    /// `bounce_classifier_override { user_smtp_classification_override = ... }`: the rules
    /// bounce classification uses before the shipped ones (issue 22).
    BounceClassifierOverride,
    /// `fbl { Addresses = ( ... ) }`: Momentum's feedback-loop module (issue 22).
    Fbl,
    /// `adaptive { suspend_sweep_interval = 60 }`: adaptive delivery's module (issue 22).
    Adaptive,
    /// `adaptive_sweep_rule "name" { codes = ( "bc:10" ) }` in the global, binding_group,
    /// binding or domain scope: a threshold on a binding::domain's bounce or FBL rate.
    AdaptiveSweepRule,
}

impl ScopeKind {
    pub const fn bit(self) -> u32 {
        1 << (self as u8)
    }

    pub fn def(self) -> &'static ScopeDef {
        &SCOPES[self as usize]
    }

    /// Listener kinds: the scopes that hold `Listen` and `Peer`.
    pub fn is_listener(self) -> bool {
        matches!(
            self,
            ScopeKind::EsmtpListener | ScopeKind::ControlListener | ScopeKind::HttpListener
        )
    }
}

/// A set of scope kinds, as a bit mask of [`ScopeKind::bit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScopeSet(pub u32);

impl ScopeSet {
    pub fn contains(self, kind: ScopeKind) -> bool {
        self.0 & kind.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = ScopeKind> {
        SCOPES
            .iter()
            .map(|d| d.kind)
            .filter(move |k| self.contains(*k))
    }

    /// Keywords joined for messages: "global, binding_group, binding".
    pub fn describe(self) -> String {
        self.iter()
            .map(|k| k.def().keyword)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub const G: u32 = ScopeKind::Global.bit();
pub const BG: u32 = ScopeKind::BindingGroup.bit();
pub const B: u32 = ScopeKind::Binding.bit();
pub const D: u32 = ScopeKind::Domain.bit();
pub const H: u32 = ScopeKind::Host.bit();
pub const ESMTP: u32 = ScopeKind::EsmtpListener.bit();
pub const CTRL: u32 = ScopeKind::ControlListener.bit();
pub const HTTP: u32 = ScopeKind::HttpListener.bit();
pub const LISTEN: u32 = ScopeKind::Listen.bit();
pub const PEER: u32 = ScopeKind::Peer.bit();
pub const PW: u32 = ScopeKind::Pathway.bit();
pub const PWG: u32 = ScopeKind::PathwayGroup.bit();
pub const TP: u32 = ScopeKind::ThreadPool.bit();
pub const SEC: u32 = ScopeKind::Security.bit();
pub const DBG: u32 = ScopeKind::DebugFlags.bit();
pub const SCRIPTLET: u32 = ScopeKind::Scriptlet.bit();
pub const SCRIPT: u32 = ScopeKind::Script.bit();
pub const ECLOG: u32 = ScopeKind::EcLogger.bit();
pub const BLOG: u32 = ScopeKind::BounceLogger.bit();
pub const AUTHZ: u32 = ScopeKind::Authorization.bit();
pub const ROLE: u32 = ScopeKind::Role.bit();
pub const DELAYDSN: u32 = ScopeKind::DelayDsn.bit();
pub const DATASRC: u32 = ScopeKind::Datasource.bit();
pub const INAUDIT: u32 = ScopeKind::InboundAudit.bit();
pub const OPENDKIM: u32 = ScopeKind::OpenDkim.bit();
pub const DKIMDOM: u32 = ScopeKind::DkimDomain.bit();
pub const OUTAUTH: u32 = ScopeKind::OutboundSmtpAuth.bit();
pub const BCO: u32 = ScopeKind::BounceClassifierOverride.bit();
pub const FBL: u32 = ScopeKind::Fbl.bit();
pub const ADAPT: u32 = ScopeKind::Adaptive.bit();
pub const SWEEP: u32 = ScopeKind::AdaptiveSweepRule.bit();

/// What the schema knows about one scope kind.
#[derive(Debug)]
pub struct ScopeDef {
    pub kind: ScopeKind,
    /// The keyword that opens it, in Momentum's canonical capitalisation.
    pub keyword: &'static str,
    /// Whether the stanza takes an instance name (`binding "x" {}`) or not (`Security {}`).
    pub named: bool,
    /// Scopes in which the stanza may be opened.
    pub parents: ScopeSet,
}

/// Indexed by `ScopeKind as usize`.
pub static SCOPES: [ScopeDef; 31] = [
    ScopeDef {
        kind: ScopeKind::Global,
        keyword: "global",
        named: false,
        parents: ScopeSet(0),
    },
    ScopeDef {
        kind: ScopeKind::BindingGroup,
        keyword: "Binding_Group",
        named: true,
        parents: ScopeSet(G),
    },
    ScopeDef {
        kind: ScopeKind::Binding,
        keyword: "Binding",
        named: true,
        parents: ScopeSet(G | BG),
    },
    ScopeDef {
        kind: ScopeKind::Domain,
        keyword: "Domain",
        named: true,
        parents: ScopeSet(G | BG | B),
    },
    ScopeDef {
        kind: ScopeKind::Host,
        keyword: "Host",
        named: true,
        parents: ScopeSet(G | BG | B),
    },
    ScopeDef {
        kind: ScopeKind::EsmtpListener,
        keyword: "ESMTP_Listener",
        named: false,
        parents: ScopeSet(G),
    },
    ScopeDef {
        kind: ScopeKind::ControlListener,
        keyword: "Control_Listener",
        named: false,
        parents: ScopeSet(G),
    },
    ScopeDef {
        kind: ScopeKind::HttpListener,
        keyword: "HTTP_Listener",
        named: false,
        parents: ScopeSet(G),
    },
    ScopeDef {
        kind: ScopeKind::Listen,
        keyword: "Listen",
        named: true,
        parents: ScopeSet(ESMTP | CTRL | HTTP),
    },
    ScopeDef {
        kind: ScopeKind::Peer,
        keyword: "Peer",
        named: true,
        parents: ScopeSet(ESMTP | CTRL | HTTP | LISTEN),
    },
    ScopeDef {
        kind: ScopeKind::Pathway,
        keyword: "Pathway",
        named: true,
        parents: ScopeSet(G | PWG),
    },
    ScopeDef {
        kind: ScopeKind::PathwayGroup,
        keyword: "Pathway_Group",
        named: true,
        parents: ScopeSet(G),
    },
    ScopeDef {
        kind: ScopeKind::ThreadPool,
        keyword: "ThreadPool",
        named: true,
        parents: ScopeSet(G),
    },
    ScopeDef {
        kind: ScopeKind::Security,
        keyword: "Security",
        named: false,
        parents: ScopeSet(G),
    },
    ScopeDef {
        kind: ScopeKind::DebugFlags,
        keyword: "Debug_Flags",
        named: false,
        parents: ScopeSet(G),
    },
    ScopeDef {
        kind: ScopeKind::Scriptlet,
        keyword: "scriptlet",
        named: true,
        parents: ScopeSet(G),
    },
    ScopeDef {
        kind: ScopeKind::Script,
        keyword: "script",
        named: true,
        parents: ScopeSet(SCRIPTLET),
    },
    ScopeDef {
        kind: ScopeKind::EcLogger,
        keyword: "ec_logger",
        named: true,
        parents: ScopeSet(G),
    },
    ScopeDef {
        kind: ScopeKind::BounceLogger,
        keyword: "bounce_logger",
        named: true,
        parents: ScopeSet(G),
    },
    ScopeDef {
        kind: ScopeKind::Authorization,
        keyword: "Authorization",
        named: false,
        parents: ScopeSet(G),
    },
    ScopeDef {
        kind: ScopeKind::Role,
        keyword: "Role",
        named: true,
        parents: ScopeSet(AUTHZ),
    },
    ScopeDef {
        kind: ScopeKind::DelayDsn,
        keyword: "delay_dsn",
        named: true,
        parents: ScopeSet(G),
    },
    ScopeDef {
        kind: ScopeKind::Datasource,
        keyword: "Datasource",
        named: true,
        parents: ScopeSet(G),
    },
    ScopeDef {
        kind: ScopeKind::InboundAudit,
        keyword: "inbound_audit",
        named: false,
        parents: ScopeSet(G),
    },
    ScopeDef {
        kind: ScopeKind::OpenDkim,
        keyword: "opendkim",
        named: true,
        parents: ScopeSet(G),
    },
    ScopeDef {
        kind: ScopeKind::DkimDomain,
        keyword: "dkim_domain",
        named: true,
        parents: ScopeSet(OPENDKIM),
    },
    ScopeDef {
        kind: ScopeKind::OutboundSmtpAuth,
        keyword: "outbound_smtp_auth",
        named: false,
        parents: ScopeSet(G),
    },
    ScopeDef {
        kind: ScopeKind::BounceClassifierOverride,
        keyword: "bounce_classifier_override",
        named: false,
        parents: ScopeSet(G),
    },
    ScopeDef {
        kind: ScopeKind::Fbl,
        keyword: "fbl",
        named: false,
        parents: ScopeSet(G),
    },
    ScopeDef {
        kind: ScopeKind::Adaptive,
        keyword: "adaptive",
        named: false,
        parents: ScopeSet(G),
    },
    ScopeDef {
        kind: ScopeKind::AdaptiveSweepRule,
        keyword: "adaptive_sweep_rule",
        named: true,
        parents: ScopeSet(G | BG | B | D),
    },
];
