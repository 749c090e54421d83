//! `msys.validate.opendkim.sign(msg, vctx, options)`: a DKIM signature made from a script,
//! in `core_final_validation` (after the binding is chosen, before the spool write, so the
//! spooled bytes are the signed bytes and a retry never signs again), with `bindery-dkim`.
//!
//! Options as Momentum's page lists them: `keyfile` (with `%{d}` and `%{s}`) or `keybuf`,
//! `selector`, `base_domain` / `signing_domain` (default: the responsible domain, Sender's
//! else From's), `header_canon` and `body_canon` (default `simple`), `digest` (`rsa-sha256`;
//! `rsa-sha1` is refused, RFC 8301), `headerlist` (default: RFC 6376 §5.4.1's list),
//! `identity`, `body_length_limit`. Without the `opendkim` module's stanza (issue 20's next
//! slice) there are no module defaults, so `keyfile`/`keybuf` and `selector` are required.
//! Keys are read once per policy generation (a `config reload` reads a changed file).
//!
//! `msys.validate.opendkim.verify(msg)` verifies every signature of the message (with
//! `bindery_dkim::verify`, key records asked through the policy's resolver seam, as
//! `msys.dnsLookup` asks) and returns a DKIM handle and a `DKIM_STAT_*` status; the getters
//! (`get_num_sigs`, `get_sig`, `get_sig_domain`, `get_sig_selector`, `get_sig_identity`,
//! `get_sig_signalg`, `get_sig_keysize`, `get_sig_canons`, `get_sig_flags`,
//! `get_sig_errorstr`, `get_sig_hdrsigned`) read it, each returning its value and a status as
//! OpenDKIM's do. The `DKIM_STAT_*`, `DKIM_SIGFLAG_*` and `DKIM_CANON_*` constants are on the
//! module table (also `require("opendkim.dkim")`).

use std::sync::Arc;

use bindery_dkim::{Canon, Key, Options};
use mlua::{Error as LuaError, IntoLua, Lua, Table, Value};

use crate::Callout;
use crate::dns::{Dns, DnsFailure, RecordType};
use crate::handles::Msg;

/// RFC 6376 §5.4.1: the header fields a signature should cover.
pub const DEFAULT_HEADERS: &[&str] = &[
    "from",
    "reply-to",
    "subject",
    "date",
    "to",
    "cc",
    "resent-date",
    "resent-from",
    "resent-to",
    "resent-cc",
    "in-reply-to",
    "references",
    "list-id",
    "list-help",
    "list-unsubscribe",
    "list-subscribe",
    "list-post",
    "list-owner",
    "list-archive",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
];

/// Keys by file for scripts (`bindery_dkim`'s cache): read once per policy generation and
/// kept for it, a file that could not be read asked again at the next call.
pub type KeyCache = bindery_dkim::keycache::KeyCache;

/// What the scripts' cache keeps: every key for the generation, no failure.
const SCRIPT_KEYS: bindery_dkim::keycache::CachePolicy = bindery_dkim::keycache::CachePolicy {
    positive: std::time::Duration::MAX,
    negative: std::time::Duration::ZERO,
    size: usize::MAX,
};

fn words(v: Value) -> Result<Vec<String>, LuaError> {
    match v {
        Value::Nil => Ok(Vec::new()),
        Value::String(s) => Ok(s
            .to_str()?
            .split(|c: char| c == ',' || c == ':' || c.is_whitespace())
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()),
        Value::Table(t) => t.sequence_values::<String>().collect(),
        other => Err(LuaError::runtime(format!(
            "msys.validate.opendkim.sign: headerlist is a string or a table, not a {}",
            other.type_name()
        ))),
    }
}

/// Installs `msys.validate.opendkim` (also `require("opendkim.dkim")`).
pub fn install(
    lua: &Lua,
    msys: &Table,
    keys: Arc<KeyCache>,
    dns: Option<Arc<dyn Dns>>,
) -> mlua::Result<Table> {
    let validate = crate::require::table_at(lua, msys, "msys.validate")?;
    let t = lua.create_table()?;
    t.set(
        "sign",
        lua.create_function(
            move |_, (msg, _vctx, options): (mlua::AnyUserData, Value, Option<Table>)| {
                let fail = |e: String| LuaError::runtime(format!("msys.validate.opendkim.sign: {e}"));
                let o = options.ok_or_else(|| {
                    fail("options are required: keyfile or keybuf, and selector (the opendkim module's defaults are not built yet)".into())
                })?;
                let msg = msg.borrow::<Msg>()?;
                let selector: String = o
                    .get::<Option<String>>("selector")?
                    .ok_or_else(|| fail("no selector".into()))?;
                let digest = o
                    .get::<Option<String>>("digest")?
                    .unwrap_or_else(|| "rsa-sha256".into());
                if !digest.eq_ignore_ascii_case("rsa-sha256") && !digest.eq_ignore_ascii_case("ed25519-sha256") {
                    return Err(fail(format!(
                        "digest {digest:?} is not implemented by bindery: rsa-sha1 signatures are refused by verifiers (RFC 8301); use rsa-sha256"
                    )));
                }
                let canon = |k: &str| -> Result<Canon, LuaError> {
                    match o.get::<Option<String>>(k)? {
                        None => Ok(Canon::Simple),
                        Some(v) => Canon::parse(&v)
                            .ok_or_else(|| fail(format!("{k} {v:?} is not simple or relaxed"))),
                    }
                };
                let (header_canon, body_canon) = (canon("header_canon")?, canon("body_canon")?);
                let mut headers = words(o.get::<Value>("headerlist")?)?;
                if headers.is_empty() {
                    headers = DEFAULT_HEADERS.iter().map(|s| s.to_string()).collect();
                }
                let identity = o.get::<Option<String>>("identity")?;
                let body_length = match o.get::<Value>("body_length_limit")? {
                    Value::Boolean(b) => b,
                    Value::Integer(n) => n != 0,
                    Value::Number(n) => n != 0.0,
                    Value::String(s) => matches!(s.to_str()?.as_ref(), "true" | "1" | "yes"),
                    _ => false,
                };
                let keyfile = o.get::<Option<String>>("keyfile")?;
                let keybuf = o.get::<Option<String>>("keybuf")?;
                let base = match o.get::<Option<String>>("base_domain")? {
                    Some(d) => Some(d),
                    None => o.get::<Option<String>>("signing_domain")?,
                };
                msg.0.with(|c| {
                    if c.phase != Callout::FinalValidation {
                        return Err(fail(format!(
                            "it signs in core_final_validation only (after every change to the message), not in {}",
                            c.phase.name()
                        )));
                    }
                    let body = bindery_dkim::crlf(&c.msg.body).into_owned();
                    let domain = match &base {
                        Some(d) => d.clone(),
                        None => bindery_dkim::responsible::responsible_domain(&body)
                            .ok_or_else(|| fail("no Sender or From domain to sign for".into()))?,
                    };
                    let key = match (&keyfile, &keybuf) {
                        (_, Some(b)) => Arc::new(Key::from_base64(b).map_err(|e| fail(format!("keybuf: {e}")))?),
                        (Some(f), None) => {
                            let path = f.replace("%{d}", &domain).replace("%{s}", &selector);
                            keys.get(&path, SCRIPT_KEYS).map_err(fail)?
                        }
                        (None, None) => return Err(fail("keyfile or keybuf is required".into())),
                    };
                    let options = Options {
                        domain,
                        selector: selector.clone(),
                        headers,
                        oversign: Vec::new(),
                        header_canon,
                        body_canon,
                        body_length,
                        expiration: 0,
                        identity,
                        copy_headers: false,
                    };
                    let header = bindery_dkim::sign(&body, &key, &options)
                        .map_err(|e| fail(e.to_string()))?;
                    let mut signed = header.into_bytes();
                    signed.extend_from_slice(&body);
                    c.msg.body = signed;
                    Ok(true)
                })
            },
        )?,
    )?;
    install_verify(lua, &t, dns)?;
    validate.set("opendkim", t.clone())?;
    Ok(t)
}

/// `msys.validate.opendkim.verify`'s result: every signature of the message.
struct Verified(Arc<Vec<bindery_dkim::verify::SigInfo>>);
impl mlua::UserData for Verified {}

/// One signature (`DKIM_SIGINFO`).
struct Sig(bindery_dkim::verify::SigInfo);
impl mlua::UserData for Sig {}

fn canon_number(c: Canon) -> i64 {
    match c {
        Canon::Simple => 0,
        Canon::Relaxed => 1,
    }
}

/// `verify` and the getters, and the constants they return.
fn install_verify(lua: &Lua, t: &Table, dns: Option<Arc<dyn Dns>>) -> mlua::Result<()> {
    use bindery_dkim::verify::{self, Status, TxtAnswer};
    for (name, s) in Status::ALL {
        t.set(*name, *s as i64)?;
    }
    for (name, v) in [
        ("DKIM_SIGFLAG_IGNORE", verify::SIGFLAG_IGNORE),
        ("DKIM_SIGFLAG_PROCESSED", verify::SIGFLAG_PROCESSED),
        ("DKIM_SIGFLAG_PASSED", verify::SIGFLAG_PASSED),
        ("DKIM_SIGFLAG_TESTKEY", verify::SIGFLAG_TESTKEY),
        ("DKIM_SIGFLAG_NOSUBDOMAIN", verify::SIGFLAG_NOSUBDOMAIN),
        ("DKIM_CANON_SIMPLE", 0),
        ("DKIM_CANON_RELAXED", 1),
    ] {
        t.set(name, v)?;
    }
    let ok = Status::Ok as i64;
    t.set(
        "verify",
        lua.create_function(move |lua, msg: mlua::AnyUserData| {
            let fail = |e: &str| LuaError::runtime(format!("msys.validate.opendkim.verify: {e}"));
            let msg = msg.borrow::<Msg>()?;
            let body: Vec<u8> = msg.0.with(|c| Ok(c.msg.body.clone()))?;
            if body.is_empty() {
                return Err(fail(
                    "the message has no data yet: call it from validate_data or later",
                ));
            }
            let dns = dns.clone();
            let answer = move |name: &str| -> TxtAnswer {
                let Some(dns) = &dns else {
                    return TxtAnswer::TempFail("no resolver".into());
                };
                match dns.lookup(name, RecordType::Txt, None) {
                    Ok(records) if records.is_empty() => TxtAnswer::NotFound,
                    Ok(records) => {
                        TxtAnswer::Records(records.into_iter().map(|r| r.text).collect())
                    }
                    Err(DnsFailure::NxDomain) => TxtAnswer::NotFound,
                    Err(DnsFailure::Failed(why)) => TxtAnswer::TempFail(why),
                }
            };
            let (sigs, status) = verify::verify(&body, &answer);
            let handle = lua.create_userdata(Verified(Arc::new(sigs)))?;
            Ok((handle, status as i64))
        })?,
    )?;
    t.set(
        "get_num_sigs",
        lua.create_function(move |_, d: mlua::UserDataRef<Verified>| Ok((d.0.len() as i64, ok)))?,
    )?;
    t.set(
        "get_sig",
        lua.create_function(
            move |lua, (d, n): (mlua::UserDataRef<Verified>, Option<i64>)| {
                let i = n.unwrap_or(0);
                match usize::try_from(i).ok().and_then(|i| d.0.get(i)) {
                    Some(s) => Ok((Value::UserData(lua.create_userdata(Sig(s.clone()))?), ok)),
                    None => Ok((Value::Nil, Status::Invalid as i64)),
                }
            },
        )?,
    )?;
    let getter = |f: fn(&Lua, &bindery_dkim::verify::SigInfo) -> mlua::Result<Value>| {
        lua.create_function(move |lua, s: mlua::UserDataRef<Sig>| Ok((f(lua, &s.0)?, ok)))
    };
    t.set(
        "get_sig_domain",
        getter(|lua, s| s.domain.clone().into_lua(lua))?,
    )?;
    t.set(
        "get_sig_selector",
        getter(|lua, s| s.selector.clone().into_lua(lua))?,
    )?;
    t.set(
        "get_sig_signalg",
        getter(|lua, s| s.algorithm.into_lua(lua))?,
    )?;
    t.set(
        "get_sig_keysize",
        getter(|lua, s| i64::from(s.key_bits).into_lua(lua))?,
    )?;
    t.set("get_sig_flags", getter(|lua, s| s.flags.into_lua(lua))?)?;
    t.set(
        "get_sig_errorstr",
        getter(|lua, s| s.error.clone().unwrap_or_default().into_lua(lua))?,
    )?;
    t.set(
        "get_sig_canons",
        lua.create_function(move |_, s: mlua::UserDataRef<Sig>| {
            Ok((
                canon_number(s.0.header_canon),
                canon_number(s.0.body_canon),
                ok,
            ))
        })?,
    )?;
    t.set(
        "get_sig_hdrsigned",
        lua.create_function(move |_, (s, name): (mlua::UserDataRef<Sig>, String)| {
            let name = name.to_ascii_lowercase();
            Ok((s.0.signed_headers.contains(&name), ok))
        })?,
    )?;
    t.set(
        "get_sig_identity",
        lua.create_function(
            move |_, (_d, s): (mlua::UserDataRef<Verified>, mlua::UserDataRef<Sig>)| {
                Ok((s.0.identity.clone(), ok))
            },
        )?,
    )?;
    Ok(())
}
