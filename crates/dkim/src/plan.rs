//! The `opendkim` stanzas of a configuration, made ready to sign: Momentum's module.
//!
//! ```text
//! opendkim "opendkim1" {
//!   headerlist = ("from", "to", "subject", "date", "message-id")
//!   key = "/etc/bindery/dkim/%{d}/%{s}.key"
//!   selector = "s2026"                       # every responsible domain, if set
//!   dkim_domain "corp.example.com" { selector = "k1" base_domain = "example.com" }
//! }
//! ```
//!
//! Each instance makes one signature per message whose `opendkim_sign` (resolved per
//! binding and recipient domain by the caller) is on: with the `dkim_domain` stanza of the
//! message's responsible domain if there is one, else with the instance's own selector if it
//! has one, else none. Two instances sign twice (an ESP's second signature, or RSA plus
//! Ed25519 for one domain).
//!
//! Every key whose path is known without a message (`dkim_domain`s, and an instance key
//! without `%{d}`) is read here, so `config check` names a missing, unreadable or
//! malformed key, or one that does not match `digest`, with the line that set it. Keys that
//! depend on the message are read when first needed, through the [`KeyCache`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bindery_config::schema::{OptionId, ScopeKind, option_id};
use bindery_config::snapshot::{Snapshot, default_value};
use bindery_config::span::Span;
use bindery_config::tree::{ROOT, ScopeId};
use bindery_config::value::Value;

use crate::key::Key;
use crate::keycache::{self, CachePolicy, KeyCache};
use crate::sign::{Canon, Options};

/// A configuration error, with where it was written.
#[derive(Debug, Clone)]
pub struct PlanError {
    pub span: Option<Span>,
    pub message: String,
    pub help: Option<String>,
}

/// `digest`: the signature's algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digest {
    RsaSha256,
    Ed25519Sha256,
}

impl Digest {
    fn matches(self, key: &Key) -> bool {
        matches!(
            (self, key),
            (Digest::Ed25519Sha256, Key::Ed25519(_))
                | (Digest::RsaSha256, Key::Rsa(..) | Key::LegacyRsa(_))
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Digest::RsaSha256 => "rsa-sha256",
            Digest::Ed25519Sha256 => "ed25519-sha256",
        }
    }
}

/// The settings one signature is made with: an instance's, or a `dkim_domain`'s over them.
#[derive(Clone, Debug)]
struct Params {
    selector: Option<String>,
    /// The key path as written, `%{d}` and `%{s}` unexpanded.
    key: Option<String>,
    base_domain: Option<String>,
    header_canon: Canon,
    body_canon: Canon,
    digest: Digest,
    sign_condition: Option<String>,
    body_length: bool,
    cache: CachePolicy,
    send_unsigned: bool,
}

/// One `opendkim` stanza.
#[derive(Debug)]
struct Instance {
    name: String,
    /// `headerlist` without `skip_headerlist`.
    headers: Vec<String>,
    oversign: Vec<String>,
    /// `lifetime`, in seconds.
    expiration: u64,
    /// `copy_headers`: `z=`.
    copy_headers: bool,
    own: Params,
    /// `dkim_domain` stanzas by lowercased domain.
    domains: HashMap<String, Params>,
}

/// `signing_stats`: which statistics are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsMode {
    All,
    Global,
    Off,
}

/// Every `opendkim` instance of a configuration generation, and its keys.
pub struct Signers {
    instances: Vec<Instance>,
    keys: KeyCache,
    pub stats_mode: StatsMode,
    sign_option: OptionId,
}

impl std::fmt::Debug for Signers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signers")
            .field("instances", &self.instances)
            .finish()
    }
}

/// What one instance did with one message.
#[derive(Debug)]
pub enum Outcome {
    /// `DKIM-Signature` made, for signing domain `domain`.
    Signed { instance: String, domain: String },
    /// Not this instance's to sign: no `dkim_domain` and no selector for the responsible
    /// domain, `sign_condition` unmet, or the message has no responsible domain.
    Skipped {
        instance: String,
        domain: Option<String>,
    },
    /// Should have signed and could not. `send_unsigned` is the operator's choice for it.
    Failed {
        instance: String,
        domain: String,
        reason: String,
        send_unsigned: bool,
    },
}

/// A message's signatures.
#[derive(Debug)]
pub struct Signed {
    /// The `DKIM-Signature` fields, in instance order, each ending in CRLF: written before
    /// the message.
    pub fields: String,
    /// The message the signatures cover when it is not the one given: line ends made CRLF,
    /// or a `DKIM-Signature` of ours (same `d=` and `s=`) from an earlier pass removed. This
    /// is then what is spooled; `None`: the message as given (no copy made).
    pub message: Option<Vec<u8>>,
    pub outcomes: Vec<Outcome>,
    pub elapsed: Duration,
}

impl Signed {
    /// The first failure the operator did not choose to send unsigned through.
    pub fn blocking_failure(&self) -> Option<(&str, &str)> {
        self.outcomes.iter().find_map(|o| match o {
            Outcome::Failed {
                domain,
                reason,
                send_unsigned: false,
                ..
            } => Some((domain.as_str(), reason.as_str())),
            _ => None,
        })
    }
}

fn words(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::List(items)) => items
            .iter()
            .flat_map(|i| i.split(|c: char| c == ',' || c == ':' || c.is_whitespace()))
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect(),
        Some(Value::Str(s)) => words(Some(&Value::List(vec![s.clone()]))),
        _ => Vec::new(),
    }
}

/// Reads one option of a scope, else the parent's value `inherit`, with the span it was set at.
struct Reader<'a> {
    snap: &'a Snapshot,
    scope: ScopeId,
}

impl Reader<'_> {
    fn get(&self, name: &'static str) -> Option<(&Value, Span)> {
        let s = self.snap.tree.scope(self.scope).setting(option_id(name))?;
        Some((&s.value, s.span))
    }

    fn string(&self, name: &'static str, inherit: &Option<String>) -> Option<String> {
        match self.get(name) {
            Some((Value::Str(s) | Value::Path(s), _)) => Some(s.clone()),
            _ => inherit.clone(),
        }
    }

    fn word(&self, name: &'static str) -> Option<&'static str> {
        match self.get(name) {
            Some((Value::Word(w), _)) => Some(w),
            _ => None,
        }
    }

    fn boolean(&self, name: &'static str, inherit: bool) -> bool {
        match self.get(name) {
            Some((Value::Bool(b), _)) => *b,
            _ => inherit,
        }
    }

    fn seconds(&self, name: &'static str, inherit: Duration) -> Duration {
        match self.get(name) {
            Some((Value::Seconds(n), _)) => Duration::from_secs(*n),
            _ => inherit,
        }
    }

    fn params(&self, inherit: &Params) -> Params {
        let canon = |name: &'static str, inherit: Canon| {
            self.word(name).and_then(Canon::parse).unwrap_or(inherit)
        };
        Params {
            selector: self.string("selector", &inherit.selector),
            key: self.string("key", &inherit.key),
            base_domain: self.string("base_domain", &inherit.base_domain),
            header_canon: canon("header_canon", inherit.header_canon),
            body_canon: canon("body_canon", inherit.body_canon),
            digest: match self.word("digest") {
                Some("ed25519-sha256") => Digest::Ed25519Sha256,
                Some(_) => Digest::RsaSha256,
                None => inherit.digest,
            },
            sign_condition: self.string("sign_condition", &inherit.sign_condition),
            body_length: self.boolean("body_length_limit", inherit.body_length),
            cache: CachePolicy {
                positive: self.seconds("pos_keycache_ttl", inherit.cache.positive),
                negative: self.seconds("neg_keycache_ttl", inherit.cache.negative),
                size: match self.get("keycache_size") {
                    Some((Value::Int(n), _)) if *n > 0 => *n as usize,
                    _ => inherit.cache.size,
                },
            },
            send_unsigned: self.boolean("send_unsigned_on_error", inherit.send_unsigned),
        }
    }
}

/// `key` with `%{d}` and `%{s}` expanded.
fn expand(template: &str, domain: &str, selector: &str) -> String {
    template.replace("%{d}", domain).replace("%{s}", selector)
}

impl Signers {
    /// The instances of `snap`; `None` when it has no `opendkim` stanza.
    pub fn plan(snap: &Snapshot) -> Result<Option<Signers>, PlanError> {
        let tree = &snap.tree;
        let stanzas: Vec<ScopeId> = tree.children_of(ROOT, ScopeKind::OpenDkim).collect();
        if stanzas.is_empty() {
            return Ok(None);
        }
        let keys = KeyCache::default();
        let defaults = Params {
            selector: None,
            key: None,
            base_domain: None,
            header_canon: Canon::Simple,
            body_canon: Canon::Simple,
            digest: Digest::RsaSha256,
            sign_condition: None,
            body_length: false,
            cache: CachePolicy::default(),
            send_unsigned: false,
        };
        let mut instances = Vec::with_capacity(stanzas.len());
        for id in stanzas {
            let scope = tree.scope(id);
            let name = scope.name.clone().unwrap_or_default();
            let opened = scope.opened.first().copied();
            let r = Reader { snap, scope: id };
            let skip: Vec<String> = words(r.get("skip_headerlist").map(|(v, _)| v));
            let headers: Vec<String> = words(r.get("headerlist").map(|(v, _)| v))
                .into_iter()
                .filter(|h| !skip.iter().any(|s| s.eq_ignore_ascii_case(h)))
                .collect();
            if r.get("headerlist").is_none() {
                return Err(PlanError {
                    span: opened,
                    message: format!("opendkim \"{name}\" has no headerlist"),
                    help: Some(
                        "headerlist is required: the headers signed, in order, e.g. headerlist = ( \"from\" \"to\" \"subject\" \"date\" \"message-id\" )".into(),
                    ),
                });
            }
            if !headers.iter().any(|h| h.eq_ignore_ascii_case("from")) {
                return Err(PlanError {
                    span: r.get("headerlist").map(|(_, s)| s).or(opened),
                    message: format!(
                        "opendkim \"{name}\": headerlist does not sign From (after skip_headerlist)"
                    ),
                    help: Some(
                        "RFC 6376 §5.4 requires From in every signature: add \"from\"".into(),
                    ),
                });
            }
            let expiration = match r.get("lifetime") {
                Some((Value::Int(h), _)) if *h > 0 => *h as u64 * 3600,
                _ => 0,
            };
            let own = r.params(&defaults);
            let mut domains = HashMap::new();
            for d in tree.children_of(id, ScopeKind::DkimDomain) {
                let ds = tree.scope(d);
                let dname = ds.name.clone().unwrap_or_default().to_ascii_lowercase();
                let params = Reader { snap, scope: d }.params(&own);
                let at = ds.opened.first().copied();
                let Some(selector) = &params.selector else {
                    return Err(PlanError {
                        span: at,
                        message: format!(
                            "dkim_domain \"{dname}\" of opendkim \"{name}\" has no selector"
                        ),
                        help: Some("set selector here or in the opendkim stanza".into()),
                    });
                };
                let Some(template) = &params.key else {
                    return Err(PlanError {
                        span: at,
                        message: format!(
                            "dkim_domain \"{dname}\" of opendkim \"{name}\" has selector \"{selector}\" and no key"
                        ),
                        help: Some(
                            "set key here or in the opendkim stanza (%{d} and %{s} expand)".into(),
                        ),
                    });
                };
                let signing = params.base_domain.clone().unwrap_or_else(|| dname.clone());
                let path = expand(template, &signing, selector);
                let key_at = Reader { snap, scope: d }
                    .get("key")
                    .or_else(|| r.get("key"))
                    .map(|(_, s)| s)
                    .or(at);
                load(&keys, &path, params.digest, key_at, &dname)?;
                domains.insert(dname, params);
            }
            if let (Some(selector), Some(template)) = (&own.selector, &own.key)
                && !template.contains("%{d}")
            {
                let path = expand(template, "", selector);
                load(
                    &keys,
                    &path,
                    own.digest,
                    r.get("key").map(|(_, s)| s),
                    &name,
                )?;
            }
            if own.selector.is_some() && own.key.is_none() {
                return Err(PlanError {
                    span: r.get("selector").map(|(_, s)| s).or(opened),
                    message: format!("opendkim \"{name}\" has a selector and no key"),
                    help: Some("set key, e.g. key = \"/etc/bindery/dkim/%{d}/%{s}.key\"".into()),
                });
            }
            instances.push(Instance {
                copy_headers: r.boolean("copy_headers", false),
                name,
                headers,
                oversign: words(r.get("oversign_headerlist").map(|(v, _)| v)),
                expiration,
                own,
                domains,
            });
        }
        let stats_mode = match snap.global(option_id("signing_stats")) {
            Some(Value::Word("off")) => StatsMode::Off,
            Some(Value::Word("global")) => StatsMode::Global,
            _ => StatsMode::All,
        };
        Ok(Some(Signers {
            instances,
            keys,
            stats_mode,
            sign_option: option_id("opendkim_sign"),
        }))
    }

    /// `opendkim_sign` for mail on `binding` to `domain`, through the fallback chain.
    pub fn wanted(&self, snap: &Snapshot, binding: &str, domain: &str) -> bool {
        let key = snap.domain_key(domain);
        let chain = snap.chain(snap.binding_id(binding), None, Some(&key));
        match chain.get(self.sign_option).map(|r| r.value) {
            Some(Value::Bool(b)) => *b,
            _ => matches!(default_value(self.sign_option), Some(Value::Bool(true))),
        }
    }

    /// Which instances sign a message with header section `head`, with what; the others'
    /// outcomes (`Skipped`) go in `outcomes`.
    fn planned<'s>(
        &'s self,
        head: &[u8],
        context: &dyn Fn(&str) -> bool,
        outcomes: &mut Vec<Outcome>,
    ) -> Vec<Planned<'s>> {
        let responsible = crate::responsible::responsible_domain(head);
        let mut plans = Vec::new();
        for inst in &self.instances {
            let skip = |domain: Option<&String>| Outcome::Skipped {
                instance: inst.name.clone(),
                domain: domain.cloned(),
            };
            let Some(resp) = &responsible else {
                outcomes.push(skip(None));
                continue;
            };
            let params = match inst.domains.get(resp) {
                Some(p) => p,
                None if inst.own.selector.is_some() => &inst.own,
                None => {
                    outcomes.push(skip(Some(resp)));
                    continue;
                }
            };
            if params
                .sign_condition
                .as_deref()
                .is_some_and(|c| !context(c))
            {
                outcomes.push(skip(Some(resp)));
                continue;
            }
            plans.push(Planned {
                inst,
                params,
                signing: params.base_domain.clone().unwrap_or_else(|| resp.clone()),
                selector: params.selector.clone().unwrap_or_default(),
            });
        }
        plans
    }

    /// The key of a planned signature, checked against its digest.
    fn key(&self, p: &Planned<'_>) -> Result<std::sync::Arc<Key>, Outcome> {
        let path = expand(
            p.params.key.as_deref().unwrap_or_default(),
            &p.signing,
            &p.selector,
        );
        let key = self
            .keys
            .get(&path, p.params.cache)
            .map_err(|e| p.failed(e))?;
        if !p.params.digest.matches(&key) {
            return Err(p.failed(format!(
                "key {path} is {} and digest is {}",
                key.describe(),
                p.params.digest.name()
            )));
        }
        Ok(key)
    }

    /// Signs `message` (the header section and body as received) with every instance that
    /// applies. `context` answers whether a validation-context key exists
    /// (`sign_condition`).
    pub fn sign(&self, message: &[u8], context: &dyn Fn(&str) -> bool) -> Signed {
        let started = Instant::now();
        let mut outcomes = Vec::with_capacity(self.instances.len());
        // Which instances sign, with what, before anything is signed: our old signatures
        // are removed first, and every new one covers the same bytes.
        let plans = self.planned(message, context, &mut outcomes);
        let mut clean = crate::sign::crlf(message);
        if !plans.is_empty() && crate::strip::has_signature(&clean) {
            let ours: Vec<(&str, &str)> = plans
                .iter()
                .map(|p| (p.signing.as_str(), p.selector.as_str()))
                .collect();
            clean = std::borrow::Cow::Owned(crate::strip::strip_signatures(&clean, &ours));
        }
        let mut fields = String::new();
        for p in &plans {
            let key = match self.key(p) {
                Ok(k) => k,
                Err(failed) => {
                    outcomes.push(failed);
                    continue;
                }
            };
            match crate::sign::sign(&clean, &key, &p.options()) {
                Ok(field) => {
                    fields.push_str(&field);
                    outcomes.push(p.signed());
                }
                Err(e) => outcomes.push(p.failed(e.to_string())),
            }
        }
        Signed {
            fields,
            message: match clean {
                std::borrow::Cow::Owned(changed) => Some(changed),
                std::borrow::Cow::Borrowed(_) => None,
            },
            outcomes,
            elapsed: started.elapsed(),
        }
    }

    /// Signs a message too large to hold in memory, already in the spool: `head` is its
    /// header section; `feed` hands every chunk of the message as spooled (our Received
    /// header first) to the function it is given, once for every signature. The spooled
    /// bytes cannot change, so `Signed::message` is `None`: line ends are hashed as they are,
    /// and an earlier signature of ours is not removed.
    pub fn sign_streamed(
        &self,
        head: &[u8],
        context: &dyn Fn(&str) -> bool,
        feed: crate::sign::Feed<'_>,
    ) -> Signed {
        let started = Instant::now();
        let mut outcomes = Vec::with_capacity(self.instances.len());
        let plans = self.planned(head, context, &mut outcomes);
        let mut ready = Vec::with_capacity(plans.len());
        for p in &plans {
            match self.key(p) {
                Ok(k) => ready.push((p, k, p.options())),
                Err(failed) => outcomes.push(failed),
            }
        }
        let mut fields = String::new();
        if !ready.is_empty() {
            let keys: Vec<(&Key, &Options)> = ready.iter().map(|(_, k, o)| (&**k, o)).collect();
            match crate::sign::sign_streamed(&keys, head, feed) {
                Ok(made) => {
                    for ((p, _, _), field) in ready.iter().zip(made) {
                        fields.push_str(&field);
                        outcomes.push(p.signed());
                    }
                }
                Err(e) => {
                    for (p, _, _) in &ready {
                        outcomes.push(p.failed(e.to_string()));
                    }
                }
            }
        }
        Signed {
            fields,
            message: None,
            outcomes,
            elapsed: started.elapsed(),
        }
    }
}

/// One signature an instance is to make.
struct Planned<'s> {
    inst: &'s Instance,
    params: &'s Params,
    /// `d=`.
    signing: String,
    /// `s=`.
    selector: String,
}

impl Planned<'_> {
    fn options(&self) -> Options {
        Options {
            domain: self.signing.clone(),
            selector: self.selector.clone(),
            headers: self.inst.headers.clone(),
            oversign: self.inst.oversign.clone(),
            header_canon: self.params.header_canon,
            body_canon: self.params.body_canon,
            body_length: self.params.body_length,
            expiration: self.inst.expiration,
            identity: None,
            copy_headers: self.inst.copy_headers,
        }
    }

    fn signed(&self) -> Outcome {
        Outcome::Signed {
            instance: self.inst.name.clone(),
            domain: self.signing.clone(),
        }
    }

    fn failed(&self, reason: String) -> Outcome {
        Outcome::Failed {
            instance: self.inst.name.clone(),
            domain: self.signing.clone(),
            reason,
            send_unsigned: self.params.send_unsigned,
        }
    }
}

/// Reads a key at configuration time and checks it against `digest`.
fn load(
    keys: &KeyCache,
    path: &str,
    digest: Digest,
    at: Option<Span>,
    whose: &str,
) -> Result<(), PlanError> {
    let key = keycache::read(path).map_err(|e| PlanError {
        span: at,
        message: format!("{whose}: {e}"),
        help: Some(
            "a PEM private key (RSA 1024 to 4096 bits, or Ed25519), readable by bindery".into(),
        ),
    })?;
    if !digest.matches(&key) {
        return Err(PlanError {
            span: at,
            message: format!(
                "{whose}: key {path} is {} and digest is {}",
                key.describe(),
                digest.name()
            ),
            help: Some(match digest {
                Digest::RsaSha256 => "an Ed25519 key signs with digest = \"ed25519-sha256\"".into(),
                Digest::Ed25519Sha256 => "an RSA key signs with digest = \"rsa-sha256\"".into(),
            }),
        });
    }
    keys.put(path, key);
    Ok(())
}
