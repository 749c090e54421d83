//! SMTP AUTH on ESMTP listeners, configured as Momentum documents it (`inbound-smtp.md`):
//!
//! ```text
//! ESMTP_Listener {
//!   Listen ":587" {
//!     SMTP_Extensions = ( "ENHANCEDSTATUSCODES" "AUTH PLAIN" "AUTH LOGIN" )
//!     AuthPlainParameters = [ uri = "digest:///etc/bindery/smtp_passwd" realm = "mail" ]
//!     AuthLoginParameters = [ uri = "digest:///etc/bindery/smtp_passwd" realm = "mail" ]
//!   }
//! }
//! ```
//!
//! Each mechanism listed needs its `Auth*Parameters`, and each `Auth*Parameters` its
//! mechanism; a CRAM-MD5 file must hold clear-text passwords. All of it is checked when the
//! configuration loads, the password files read, so `config check` finds a missing one.
//! AUTH is offered under TLS only, unless bindery's `Allow_Plaintext_Auth` is set for the
//! client (a trusted network); a listener that could never offer it is refused at load.
//!
//! A login is checked off the event loop (bcrypt takes milliseconds). A failure waits
//! `Auth_Failure_Delay` before its 535; ten failures from one address within a minute lock
//! it out for the rest of that minute (454, nothing checked). Every attempt is logged with
//! the user name, never the password, and with `log_authentication = true` also written to
//! the acctlog. `Always_Allow` / `Always_Deny` decide a client's logins without a password
//! check, as on the console.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bindery_auth::{FileStore, PasswordStore, Scheme, Source};
use bindery_config::inbound;
use bindery_config::schema::{OptionId, ScopeKind, option_id as opt};
use bindery_config::snapshot::Snapshot;
use bindery_config::span::Span;
use bindery_config::tree::ScopeId;
use bindery_config::value::Value;
use bindery_control::injections::Via;
use bindery_smtp::session::{AuthOffer, AuthVerdict, Login, Mechanism, Proof};

use crate::settings::located;
use crate::{ServerError, Shared};

/// The option that holds a mechanism's password file.
fn params_option(m: Mechanism) -> OptionId {
    opt(match m {
        Mechanism::Plain => "authplainparameters",
        Mechanism::Login => "authloginparameters",
        Mechanism::CramMd5 => "authcrammd5parameters",
    })
}

/// One generation's password files, one [`FileStore`] per (file, scheme, realm), so every
/// connection shares its cache.
#[derive(Default)]
pub struct Stores {
    by_file: HashMap<(PathBuf, Scheme, String), Arc<FileStore>>,
}

impl Stores {
    fn get(&self, s: &Source) -> Option<Arc<FileStore>> {
        self.by_file
            .get(&(s.path.clone(), s.scheme, s.realm.clone()))
            .cloned()
    }
}

/// What a connection needs to check its logins.
pub struct SmtpAuth {
    pub mechanisms: Vec<(Mechanism, Arc<dyn PasswordStore>, Source)>,
    /// `Auth_Failure_Delay`.
    pub delay: Duration,
}

/// Reads and checks every `Auth*Parameters` under the ESMTP listeners, and the AUTH offer of
/// every Listen (for each of its `Peer` scopes too).
pub fn plan(snap: &Snapshot, hostname: &str) -> Result<Stores, ServerError> {
    let tree = &snap.tree;
    let mut stores = Stores::default();
    for id in tree.scope_ids() {
        if !under_esmtp(snap, id) {
            continue;
        }
        for m in Mechanism::ALL {
            let Some(st) = tree.scope(id).setting(params_option(m)) else {
                continue;
            };
            let source = source_of(snap, st, hostname)?;
            if m == Mechanism::CramMd5 && !source.scheme.has_cleartext() {
                return Err(located(
                    snap,
                    Some(st.span),
                    format!(
                        "CRAM-MD5 needs the passwords in clear, and {}{} holds hashes",
                        source.scheme.prefix(),
                        source.path.display()
                    ),
                    Some(
                        "use a file:// password file for CRAM-MD5, or offer AUTH PLAIN over TLS instead",
                    ),
                ));
            }
            let key = (source.path.clone(), source.scheme, source.realm.clone());
            if stores.by_file.contains_key(&key) {
                continue;
            }
            let store = FileStore::from_source(&source);
            if let Err(e) = store.table() {
                return Err(located(
                    snap,
                    Some(st.span),
                    format!("cannot use the password file: {e}"),
                    Some(
                        "the file must exist, be readable by the daemon and hold one USER:SECRET per line",
                    ),
                ));
            }
            stores.by_file.insert(key, Arc::new(store));
        }
    }
    for site in inbound::listens(tree, ScopeKind::EsmtpListener) {
        let mut peers: Vec<Option<IpAddr>> = vec![None];
        for &parent in [site.listen, site.listener].iter() {
            for &c in &tree.scope(parent).children {
                if tree.scope(c).kind == ScopeKind::Peer
                    && let Some(net) = tree
                        .scope(c)
                        .name
                        .as_deref()
                        .and_then(bindery_config::value::parse_cidr)
                {
                    peers.push(Some(net.network()));
                }
            }
        }
        for peer in peers {
            let chain = inbound::chain(tree, &site, peer);
            let (offer, _) = for_chain(snap, &chain, &stores, hostname)?;
            if !offer.mechanisms.is_empty() && !offer.plaintext && !can_tls(snap, &chain) {
                return Err(located(
                    snap,
                    setting_span(snap, &chain, opt("smtp_extensions")),
                    "AUTH would never be offered here: this listener has no TLS certificate, and \
                     logins are made only under TLS"
                        .into(),
                    Some(
                        "set TLS_Certificate and TLS_Key (STARTTLS or Use_SSL), or Allow_Plaintext_Auth = true in a Peer for a trusted network",
                    ),
                ));
            }
        }
    }
    Ok(stores)
}

fn setting_span(snap: &Snapshot, chain: &[ScopeId], id: OptionId) -> Option<Span> {
    inbound::setting(&snap.tree, chain, id).map(|s| s.span)
}

fn can_tls(snap: &Snapshot, chain: &[ScopeId]) -> bool {
    inbound::resolve(&snap.tree, chain, opt("tls_certificate")).is_some()
}

/// Whether `id` is an ESMTP listener or sits inside one.
fn under_esmtp(snap: &Snapshot, id: ScopeId) -> bool {
    snap.tree
        .lineage(id)
        .iter()
        .any(|&s| snap.tree.scope(s).kind == ScopeKind::EsmtpListener)
}

fn source_of(
    snap: &Snapshot,
    st: &bindery_config::tree::Setting,
    hostname: &str,
) -> Result<Source, ServerError> {
    let Value::Dict(entries) = &st.value else {
        return Err(located(
            snap,
            Some(st.span),
            "expected a dictionary: [ uri = \"file:///path\" ]".into(),
            None,
        ));
    };
    Source::parse(entries, hostname).map_err(|e| located(snap, Some(st.span), e, None))
}

/// The AUTH offer of one chain of scopes (a client's), and the stores behind it.
pub fn for_chain(
    snap: &Snapshot,
    chain: &[ScopeId],
    stores: &Stores,
    hostname: &str,
) -> Result<(AuthOffer, Option<Arc<SmtpAuth>>), ServerError> {
    let tree = &snap.tree;
    let get = |name: &'static str| inbound::resolve(tree, chain, opt(name));
    let mut mechanisms = Vec::new();
    if let Some(Value::List(entries)) = get("smtp_extensions") {
        for e in entries {
            let mut words = e.split_whitespace();
            if words.next().is_some_and(|w| w.eq_ignore_ascii_case("AUTH")) {
                // The schema let only "AUTH <one known mechanism>" through.
                if let Some(m) = words.next().and_then(Mechanism::parse)
                    && !mechanisms.contains(&m)
                {
                    mechanisms.push(m);
                }
            }
        }
    }
    let mut with_stores = Vec::new();
    for m in Mechanism::ALL {
        let st = inbound::setting(tree, chain, params_option(m));
        match (mechanisms.contains(&m), st) {
            (true, Some(st)) => {
                let source = source_of(snap, st, hostname)?;
                let Some(store) = stores.get(&source) else {
                    // `plan` made one for every setting; a generation without it is a bug.
                    return Err(ServerError::Config(format!(
                        "error: no password store for {}",
                        source.path.display()
                    )));
                };
                with_stores.push((m, store as Arc<dyn PasswordStore>, source));
            }
            (true, None) => {
                return Err(located(
                    snap,
                    setting_span(snap, chain, opt("smtp_extensions")),
                    format!(
                        "SMTP_Extensions offers \"AUTH {}\" but no {} names its password file",
                        m.name(),
                        params_option(m).def().name
                    ),
                    Some(
                        "add it beside SMTP_Extensions: [ uri = \"digest:///path\" realm = \"mail\" ]",
                    ),
                ));
            }
            (false, Some(st)) => {
                return Err(located(
                    snap,
                    Some(st.span),
                    format!(
                        "{} is set but SMTP_Extensions does not offer \"AUTH {}\", so nothing would use it",
                        params_option(m).def().name,
                        m.name()
                    ),
                    Some("list the mechanism in SMTP_Extensions, or remove the parameters"),
                ));
            }
            (false, None) => {}
        }
    }
    let on = |name: &'static str| matches!(get(name), Some(Value::Bool(true)));
    let offer = AuthOffer {
        mechanisms,
        plaintext: on("allow_plaintext_auth"),
        always_allow: on("always_allow"),
        always_deny: on("always_deny"),
    };
    if with_stores.is_empty() {
        return Ok((offer, None));
    }
    let delay = match get("auth_failure_delay") {
        Some(Value::Seconds(s)) => Duration::from_secs(s),
        _ => Duration::from_secs(1),
    };
    Ok((
        offer,
        Some(Arc::new(SmtpAuth {
            mechanisms: with_stores,
            delay,
        })),
    ))
}

/// Checks one login and says what the session answers. Counts, logs and delays as the
/// module comment says.
pub async fn check(
    shared: &Shared,
    auth: &SmtpAuth,
    offer: &AuthOffer,
    listener: &str,
    peer: IpAddr,
    login: &Login,
) -> AuthVerdict {
    let now = crate::unix_now();
    let entry = auth.mechanisms.iter().find(|(m, ..)| *m == login.mechanism);
    let verdict = if shared.auth_lockout.locked(peer, now) {
        AuthVerdict::Locked
    } else if offer.always_deny {
        AuthVerdict::Invalid
    } else if offer.always_allow {
        AuthVerdict::Accepted
    } else if let Some((_, store, source)) = entry {
        let (store, realm, login) = (Arc::clone(store), source.realm.clone(), login.clone());
        let checked = tokio::task::spawn_blocking(move || {
            let table = store.table()?;
            let proof = match &login.proof {
                Proof::Password(p) => bindery_auth::Proof::Password(p),
                Proof::CramMd5 { challenge, digest } => {
                    bindery_auth::Proof::CramMd5 { challenge, digest }
                }
            };
            Ok::<bool, bindery_auth::StoreError>(table.check(&login.user, &realm, proof))
        })
        .await;
        match checked {
            Ok(Ok(true)) => AuthVerdict::Accepted,
            Ok(Ok(false)) => AuthVerdict::Invalid,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "SMTP AUTH password file unusable; logins get 454");
                AuthVerdict::Unavailable
            }
            Err(e) => {
                tracing::error!(error = %e, "SMTP AUTH check failed");
                AuthVerdict::Unavailable
            }
        }
    } else {
        AuthVerdict::Invalid
    };
    let user = login.user.as_str();
    let mechanism = login.mechanism.name();
    match verdict {
        AuthVerdict::Accepted => {
            shared.auth_lockout.succeeded(peer);
            tracing::info!(%peer, %listener, %user, %mechanism, "SMTP AUTH succeeded");
        }
        AuthVerdict::Invalid => {
            let failures = shared.auth_lockout.failed(peer, now);
            tracing::warn!(%peer, %listener, %user, %mechanism, failures, "SMTP AUTH failed");
        }
        AuthVerdict::Locked => {
            tracing::warn!(%peer, %listener, %user, %mechanism, "SMTP AUTH refused: too many failed logins from this address");
        }
        AuthVerdict::Unavailable => {}
    }
    if verdict != AuthVerdict::Unavailable {
        let ok = verdict == AuthVerdict::Accepted;
        shared.injections.login(Via::Smtp, user, ok);
    }
    if entry.is_some_and(|(_, _, s)| s.log) {
        let peer = peer.to_string();
        let ok = verdict == AuthVerdict::Accepted;
        shared
            .eclogs
            .authentication(now, &acct_listener(listener), &peer, user, ok);
    }
    if matches!(verdict, AuthVerdict::Invalid | AuthVerdict::Locked) {
        tokio::time::sleep(auth.delay).await;
    }
    verdict
}

/// A listener as the acctlog shows it: Momentum writes `Listen ":587"` as `*:587` (the
/// console's records use it too).
pub(crate) fn acct_listener(name: &str) -> String {
    if name.starts_with(':') {
        format!("*{name}")
    } else {
        name.to_string()
    }
}

/// Momentum's connection context after an AUTH attempt: `auth_name` (the mechanism),
/// `auth_user`, `auth_status` (`pass`, `fail` or `error`), and `can_relay = true` on a pass.
pub fn context(conn: &mut bindery_policy::Conn, login: &Login, verdict: &AuthVerdict) {
    let status = match verdict {
        AuthVerdict::Accepted => "pass",
        AuthVerdict::Invalid | AuthVerdict::Locked => "fail",
        AuthVerdict::Unavailable => "error",
    };
    let c = &mut conn.context;
    c.insert("auth_name".into(), login.mechanism.name().into());
    c.insert("auth_user".into(), login.user.clone());
    c.insert("auth_status".into(), status.into());
    if *verdict == AuthVerdict::Accepted {
        c.insert("can_relay".into(), "true".into());
    }
}
