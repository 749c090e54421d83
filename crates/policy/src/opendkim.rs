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
//! Verification (`msys.validate.opendkim.verify`) is not built yet and raises saying so.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bindery_dkim::{Canon, Key, Options};
use mlua::{Error as LuaError, Lua, Table, Value};

use crate::Callout;
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

/// Keys by file, read once per policy generation.
#[derive(Default)]
pub struct KeyCache(Mutex<HashMap<String, Arc<Key>>>);

impl KeyCache {
    fn get(&self, path: &str) -> Result<Arc<Key>, String> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = all.get(path) {
            return Ok(Arc::clone(k));
        }
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read key {path}: {e}"))?;
        let key = Arc::new(Key::from_pem(&bytes).map_err(|e| format!("key {path}: {e}"))?);
        all.insert(path.to_string(), Arc::clone(&key));
        Ok(key)
    }
}

/// The responsible domain of a message: Sender's address, else From's (RFC 2047 words and
/// display names aside).
fn responsible_domain(body: &[u8]) -> Option<String> {
    for name in ["Sender", "From"] {
        let values = crate::headers::header_values(body, name);
        let domains = crate::addresses::domains(&values);
        if let Some(d) = domains.into_iter().next() {
            return Some(d.to_ascii_lowercase());
        }
    }
    None
}

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
pub fn install(lua: &Lua, msys: &Table, keys: Arc<KeyCache>) -> mlua::Result<Table> {
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
                        None => responsible_domain(&body)
                            .ok_or_else(|| fail("no Sender or From domain to sign for".into()))?,
                    };
                    let key = match (&keyfile, &keybuf) {
                        (_, Some(b)) => Arc::new(Key::from_base64(b).map_err(|e| fail(format!("keybuf: {e}")))?),
                        (Some(f), None) => {
                            let path = f.replace("%{d}", &domain).replace("%{s}", &selector);
                            keys.get(&path).map_err(fail)?
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
    t.set(
        "verify",
        lua.create_function(|_, _: mlua::Variadic<Value>| -> mlua::Result<()> {
            Err(LuaError::runtime(
                "msys.validate.opendkim.verify is not implemented by bindery yet (issue 20)",
            ))
        })?,
    )?;
    validate.set("opendkim", t.clone())?;
    Ok(t)
}
