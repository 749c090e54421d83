//! `require` as Momentum scripts use it: Lua 5.1's own (`package.loaded`, `module()`), with
//! the loaders replaced.
//!
//! - `msys` and `msys.*`: the API's table at that path (`require("msys.core")` is
//!   `msys.core`). A Momentum module bindery does not have raises an error that names it
//!   and says what Momentum does with it: a script never gets a table that silently lacks
//!   its functions.
//! - `json`: `msys.json`.
//! - Anything else is one of the policy's own files: `inbound.library` is
//!   `inbound/library.lua`, looked for beside each script and then along the configuration
//!   search path, read in Momentum's dialect (`dialect.rs`) and loaded under its own path,
//!   so an error inside it names that file and line.
//!
//! With `Allow_Unsafe_Libraries`, Lua's own loaders (`package.path`, C modules) come after
//! these.

use std::path::PathBuf;

use mlua::{Lua, Table, Value};

/// A Momentum Lua module bindery does not provide, and why.
struct Missing {
    name: &'static str,
    what: &'static str,
}

/// Momentum's Lua modules (SparkPost/support-docs `content/momentum/4/lua/`) that bindery
/// does not provide. A module with a later issue says so.
const MISSING: &[Missing] = &[
    Missing {
        name: "msys.av",
        what: "Momentum's antivirus engines (refused: bindery scans nothing; run a scanner before or after it)",
    },
    Missing {
        name: "msys.cloudmark",
        what: "Cloudmark's spam scanner (refused: bindery scans nothing)",
    },
    Missing {
        name: "msys.brightmail",
        what: "Symantec Brightmail's spam scanner (refused: bindery scans nothing)",
    },
    Missing {
        name: "msys.symantec_beik",
        what: "Symantec's BEIK scanner (refused: bindery scans nothing)",
    },
    Missing {
        name: "msys.expurgate",
        what: "eleven's eXpurgate scanner (refused: bindery scans nothing)",
    },
    Missing {
        name: "msys.commtouch",
        what: "Commtouch's spam scanner (refused: bindery scans nothing)",
    },
    Missing {
        name: "msys.gcm",
        what: "Google Cloud Messaging push delivery (refused: bindery delivers by SMTP and LMTP)",
    },
    Missing {
        name: "msys.apn",
        what: "Apple push notification delivery (refused: bindery delivers by SMTP and LMTP)",
    },
    Missing {
        name: "msys.snmp",
        what: "Momentum's SNMP agent (refused: bindery has Prometheus metrics instead)",
    },
    Missing {
        name: "msys.validate.dkim2",
        what: "the older DKIM module (refused: DKIM comes with the opendkim module, issue 20)",
    },
    Missing {
        name: "msys.validate.dk",
        what: "DomainKeys verification (refused: DomainKeys is obsolete, RFC 4870 was replaced by DKIM)",
    },
    Missing {
        name: "msys.sign.dk",
        what: "DomainKeys signing (refused: DomainKeys is obsolete)",
    },
    Missing {
        name: "msys.validate.openarc",
        what: "ARC signing and verification (refused: not built)",
    },
    Missing {
        name: "msys.extended.httpsrv",
        what: "Momentum's HTTP server for scripts (refused: bindery's HTTP listener serves its own API)",
    },
    Missing {
        name: "msys.httpclnt",
        what: "an HTTP client for scripts (refused: a callout must not wait on a remote web server)",
    },
    Missing {
        name: "msys.http.client",
        what: "an HTTP client for scripts (refused: a callout must not wait on a remote web server)",
    },
    Missing {
        name: "curl",
        what: "an HTTP client for scripts (refused: a callout must not wait on a remote web server)",
    },
    Missing {
        name: "msys.threadpool",
        what: "Momentum's thread pools for scripts (refused: each bindery thread has its own Lua state)",
    },
    Missing {
        name: "msys.timer",
        what: "timers that run Lua later (refused: not built)",
    },
    Missing {
        name: "msys.gauge_cache",
        what: "Momentum's cluster-wide gauge cache (refused: not built; see issue 23 for cluster state)",
    },
    Missing {
        name: "msys.os",
        what: "process and file functions for scripts (refused: the sandbox keeps scripts off the system)",
    },
    Missing {
        name: "msys.tls_params",
        what: "per-connection TLS settings from scripts (refused: not built)",
    },
    Missing {
        name: "msys.delivery",
        what: "delivery-side hooks for scripts (refused: not built)",
    },
    Missing {
        name: "msys.getopt",
        what: "command-line option parsing for ec_lua scripts (refused: bindery runs no stand-alone scripts)",
    },
    Missing {
        name: "xml",
        what: "Momentum's XML parser for scripts (refused: not built)",
    },
    Missing {
        name: "msys.smpp",
        what: "SMPP (SMS) delivery (refused: bindery delivers by SMTP and LMTP)",
    },
    Missing {
        name: "msys.pbp",
        what: "Momentum 3's policy-based protection helpers (whitelists, FCDNS checks), which Momentum 4's API does not have (refused: write the check with msys.dnsLookup and msys.cidr)",
    },
    Missing {
        name: "msys.policyeditor",
        what: "Momentum 3's Policy Editor API, replaced by msys.* in Momentum 4 (refused)",
    },
];

/// The error a script gets for a module in [`MISSING`], if `name` is one.
pub fn missing(name: &str) -> Option<String> {
    MISSING
        .iter()
        .find(|m| m.name == name)
        .map(|m| format!("module '{name}' is not implemented by bindery: {}", m.what))
}

/// The empty namespaces Momentum scripts `require` for their side effects: in bindery the
/// functions they would add are always on the handles.
const NAMESPACES: &[&str] = &[
    "msys.extended.message",
    "msys.extended.vctx",
    "msys.extended.ac",
    "msys.extended.message_routing",
];

/// Momentum functions outside the modules above that bindery does not provide, and why.
const MISSING_FUNCTIONS: &[Missing] = &[
    Missing {
        name: "msys.runInInst",
        what: "running a function on another scheduler instance (refused: each bindery thread has its own Lua state; msys.runInPool runs a function in place)",
    },
    Missing {
        name: "msys.core.scheduler_for_domain",
        what: "Momentum's scheduler instances (refused: bindery's delivery is not split into scripted instances)",
    },
    Missing {
        name: "msys.registerControl",
        what: "console commands written in Lua (refused: not built)",
    },
    Missing {
        name: "msys.registerAuth",
        what: "SMTP AUTH written in Lua (issue 21)",
    },
];

/// The table at a dotted path under `msys`, made where missing.
pub(crate) fn table_at(lua: &Lua, msys: &Table, path: &str) -> mlua::Result<Table> {
    let mut t = msys.clone();
    for part in path.split('.').skip(1) {
        t = match t.get::<Value>(part)? {
            Value::Table(next) => next,
            _ => {
                let next = lua.create_table()?;
                t.set(part, next.clone())?;
                next
            }
        };
    }
    Ok(t)
}

/// Stand-ins for what [`MISSING`] and [`MISSING_FUNCTIONS`] name, where a script reaches
/// them without `require` (`msys.timer.after(...)`, the `xml` and `curl` globals): calling
/// one, or any function in one, raises the same "not implemented by bindery" error as
/// `require`, never "attempt to index a nil value".
fn refusing_stand_ins(lua: &Lua, msys: &Table) -> mlua::Result<()> {
    let raiser = |what: String| {
        lua.create_function(move |_, _: mlua::Variadic<Value>| -> mlua::Result<()> {
            Err(mlua::Error::runtime(what.clone()))
        })
    };
    for m in MISSING {
        let why = format!(
            "module '{}' is not implemented by bindery: {}",
            m.name, m.what
        );
        let proxy = lua.create_table()?;
        let mt = lua.create_table()?;
        let (name, w) = (m.name, why.clone());
        mt.set(
            "__index",
            lua.create_function(move |_, (_, key): (Value, Value)| -> mlua::Result<()> {
                let key = match key {
                    Value::String(s) => s.to_string_lossy(),
                    _ => "?".into(),
                };
                Err(mlua::Error::runtime(format!("{name}.{key}: {w}")))
            })?,
        )?;
        mt.set("__call", raiser(why)?)?;
        proxy.set_metatable(Some(mt))?;
        match m.name.rsplit_once('.') {
            None => lua.globals().set(m.name, proxy)?,
            Some((parent, last)) if parent == "msys" || parent.starts_with("msys.") => {
                let t = table_at(lua, msys, parent)?;
                if t.get::<Value>(last)?.is_nil() {
                    t.set(last, proxy)?;
                }
            }
            Some(_) => {}
        }
    }
    for f in MISSING_FUNCTIONS {
        let Some((parent, last)) = f.name.rsplit_once('.') else {
            continue;
        };
        let t = table_at(lua, msys, parent)?;
        t.set(
            last,
            raiser(format!(
                "{} is not implemented by bindery: {}",
                f.name, f.what
            ))?,
        )?;
    }
    Ok(())
}

/// Installs the loaders. `dirs` are where the policy's own modules are looked for, in
/// order.
pub fn install(lua: &Lua, dirs: Vec<PathBuf>, unsafe_libraries: bool) -> mlua::Result<()> {
    let msys: Table = lua.globals().get("msys")?;
    refusing_stand_ins(lua, &msys)?;
    for path in NAMESPACES {
        table_at(lua, &msys, path)?;
    }
    let package: Table = lua.globals().get("package")?;
    let old: Table = package.get("loaders")?;
    let api = lua.create_function(|lua, name: String| api_loader(lua, &name))?;
    let files = lua.create_function(move |lua, name: String| file_loader(lua, &name, &dirs))?;
    let loaders = lua.create_sequence_from([old.get::<Value>(1)?, Value::Function(api)])?;
    loaders.push(files)?;
    if unsafe_libraries {
        for f in old.sequence_values::<Value>().skip(1) {
            loaders.push(f?)?;
        }
    } else {
        package.set("loadlib", Value::Nil)?;
        package.set("cpath", "")?;
    }
    package.set("path", "")?;
    package.set("loaders", loaders)
}

/// Lua's `strict` module (etc/strict.lua of the Lua 5.1 distribution, which Momentum's
/// pages `require`): reading a global that was never assigned raises instead of giving nil.
/// Assigning declares, wherever it happens (the original also refuses a first assignment
/// inside a function, which needs the `debug` library the sandbox withholds).
const STRICT: &str = r#"
local declared = {}
for k in pairs(_G) do declared[k] = true end
local mt = getmetatable(_G) or {}
mt.__newindex = function(t, k, v) declared[k] = true; rawset(t, k, v) end
mt.__index = function(_, k)
  if not declared[k] then error("variable '" .. tostring(k) .. "' is not declared", 2) end
  return nil
end
setmetatable(_G, mt)
"#;

/// `msys`, `msys.*` and `json`: a loader that returns the table, or the reason there is none.
fn api_loader(lua: &Lua, name: &str) -> mlua::Result<Value> {
    if let Some(why) = missing(name) {
        return Err(mlua::Error::runtime(why));
    }
    let path = match name {
        "strict" => {
            let f = lua.load(STRICT).set_name("=strict").into_function()?;
            return Ok(Value::Function(f));
        }
        "json" => "msys.json",
        // Momentum's scripts require the opendkim binding by this name too.
        "opendkim.dkim" => "msys.validate.opendkim",
        "thread" => {
            let t: Value = lua.globals().get("thread")?;
            let f = lua.create_function(move |_, _: mlua::Variadic<Value>| Ok(t.clone()))?;
            return Ok(Value::Function(f));
        }
        n if n == "msys" || n.starts_with("msys.") => n,
        _ => return Ok(Value::Nil),
    };
    let mut t: Value = Value::Table(lua.globals().get("msys")?);
    for part in path.split('.').skip(1) {
        t = match t {
            Value::Table(tab) => tab.get(part)?,
            _ => Value::Nil,
        };
    }
    match t {
        Value::Table(found) => {
            let f = lua.create_function(move |_, _: mlua::Variadic<Value>| Ok(found.clone()))?;
            Ok(Value::Function(f))
        }
        _ => Err(mlua::Error::runtime(format!(
            "module '{name}' is not implemented by bindery (no such Momentum module is known \
             to it; the msys modules bindery has are listed in ARCHITECTURE.md)"
        ))),
    }
}

/// One of the policy's own files, or the list of places it was not (Lua 5.1's convention:
/// `require` puts the strings of every loader in its error).
fn file_loader(lua: &Lua, name: &str, dirs: &[PathBuf]) -> mlua::Result<Value> {
    let rel = format!("{}.lua", name.replace('.', "/"));
    let mut tried = String::new();
    for d in dirs {
        let p = d.join(&rel);
        if !p.is_file() {
            tried.push_str(&format!("\n\tno file '{}'", p.display()));
            continue;
        }
        let text = std::fs::read_to_string(&p)
            .map_err(|e| mlua::Error::runtime(format!("cannot read {}: {e}", p.display())))?;
        // A syntax error keeps its place: `path:LINE: message`.
        let f = lua
            .load(crate::dialect::translate(&text).as_ref())
            .set_name(format!("@{}", p.display()))
            .into_function()
            .map_err(|e| mlua::Error::runtime(syntax_text(&e)))?;
        return Ok(Value::Function(f));
    }
    Ok(Value::String(lua.create_string(&tried)?))
}

/// A syntax error's message without mlua's "syntax error: " prefix.
fn syntax_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
