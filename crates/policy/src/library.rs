//! Momentum's Lua library functions that need nothing of the message: `msys.pcre`,
//! `msys.dumper` and `msys.json` (`json.rs`).
//!
//! `msys.pcre` runs on the `regex` crate (linear time, no catastrophic backtracking in a
//! callout's budget). PCRE syntax it lacks (look-around, back-references) is a compilation
//! error, returned the way `msys.pcre.match` documents errors (`nil, errstr, errnum`), with
//! a text that names the construct; never a silent non-match.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use mlua::{Lua, Table, Value};

/// Compiled patterns, kept per Lua state; bounded so a script that builds patterns from
/// message data cannot grow it without end.
#[derive(Default)]
struct Patterns(RefCell<HashMap<String, Rc<regex::Regex>>>);

const PATTERNS_KEPT: usize = 512;

impl Patterns {
    fn get(&self, pattern: &str) -> Result<Rc<regex::Regex>, String> {
        if let Some(r) = self.0.borrow().get(pattern) {
            return Ok(Rc::clone(r));
        }
        let r = Rc::new(regex::Regex::new(pattern).map_err(|e| compile_error(pattern, &e))?);
        let mut map = self.0.borrow_mut();
        if map.len() >= PATTERNS_KEPT {
            map.clear();
        }
        map.insert(pattern.to_string(), Rc::clone(&r));
        Ok(r)
    }
}

/// A compilation error's text; PCRE constructs `regex` does not have are named.
pub(crate) fn compile_error(pattern: &str, e: &regex::Error) -> String {
    let unsupported = ["(?=", "(?!", "(?<=", "(?<!", "\\1", "\\2", "(?>", "(*"]
        .iter()
        .find(|c| pattern.contains(**c));
    match unsupported {
        Some(c) => format!(
            "pattern {pattern:?} uses `{c}`, a PCRE construct bindery's regex engine does not have (no look-around, back-references or atomic groups): {e}"
        ),
        None => format!("pattern {pattern:?}: {e}"),
    }
}

/// Installs `msys.pcre` and `msys.dumper`.
pub fn install(lua: &Lua, msys: &Table) -> mlua::Result<()> {
    let patterns = Rc::new(Patterns::default());
    let pcre = lua.create_table()?;
    let p = Rc::clone(&patterns);
    // match(subject, pattern): nil, or {[0] = whole, [1] = first capture, ..., name = ...};
    // a bad pattern gives nil, errstr, errnum.
    pcre.set(
        "match",
        lua.create_function(move |lua, (subject, pattern): (mlua::LuaString, String)| {
            let subject = subject.to_str()?.to_string();
            let re = match p.get(&pattern) {
                Ok(r) => r,
                Err(e) => return Ok((Value::Nil, Some(e), Some(-1))),
            };
            let Some(caps) = re.captures(&subject) else {
                return Ok((Value::Nil, None, None));
            };
            let t = lua.create_table()?;
            for (i, m) in caps.iter().enumerate() {
                if let Some(m) = m {
                    t.set(i, m.as_str())?;
                }
            }
            for name in re.capture_names().flatten() {
                if let Some(m) = caps.name(name) {
                    t.set(name, m.as_str())?;
                }
            }
            Ok((Value::Table(t), None, None))
        })?,
    )?;
    let p = Rc::clone(&patterns);
    // replace(subject, pattern, replacement): every match replaced; `$1`, `${name}`.
    pcre.set(
        "replace",
        lua.create_function(
            move |_, (subject, pattern, replacement): (String, String, String)| {
                let re = p.get(&pattern).map_err(mlua::Error::runtime)?;
                Ok(re.replace_all(&subject, replacement.as_str()).into_owned())
            },
        )?,
    )?;
    let p = Rc::clone(&patterns);
    // split(subject, pattern): the pieces between matches.
    pcre.set(
        "split",
        lua.create_function(move |lua, (subject, pattern): (String, String)| {
            let re = p.get(&pattern).map_err(mlua::Error::runtime)?;
            lua.create_sequence_from(re.split(&subject).map(str::to_string))
        })?,
    )?;
    msys.set("pcre", pcre)?;
    // msys.log(level, text...): to the daemon's log at the syslog level's counterpart;
    // `msys.core.LOG_*` are syslog's numbers.
    let core: Table = msys.get("core")?;
    for (name, n) in [
        ("LOG_EMERG", 0),
        ("LOG_ALERT", 1),
        ("LOG_CRIT", 2),
        ("LOG_ERR", 3),
        ("LOG_WARNING", 4),
        ("LOG_NOTICE", 5),
        ("LOG_INFO", 6),
        ("LOG_DEBUG", 7),
    ] {
        core.set(name, n)?;
    }
    msys.set(
        "log",
        lua.create_function(|lua, (level, rest): (i64, mlua::Variadic<Value>)| {
            let tostring: mlua::Function = lua.globals().get("tostring")?;
            let mut parts = Vec::with_capacity(rest.len());
            for v in rest {
                parts.push(tostring.call::<String>(v)?);
            }
            let text = parts.join(" ");
            match level {
                ..=3 => tracing::error!(target: "policy", "{text}"),
                4 => tracing::warn!(target: "policy", "{text}"),
                5 | 6 => tracing::info!(target: "policy", "{text}"),
                _ => tracing::debug!(target: "policy", "{text}"),
            }
            Ok(())
        })?,
    )?;
    crate::addresses::install(lua, msys)?;
    // `json` is a global too: Momentum's scripts share one Lua state, where the first
    // `require("json")` makes it one for all, and the multi-channel demo's scripts use it
    // without requiring it themselves.
    let json = crate::json::module(lua)?;
    msys.set("json", json.clone())?;
    lua.globals().set("json", json)?;
    // msys.audit: `connections`, `receptions` and `rejections` read the inbound_audit
    // module's series (`audit_series::install_inbound`), `inbound_session_count` the live
    // sessions (`newmsg.rs`).
    let audit = lua.create_table()?;
    msys.set("audit", audit)?;
    // `thread` (a global in Momentum's Lua, and `require("thread")`): its mutexes guard
    // globals Momentum's threads share. Each bindery thread has a Lua state of its own, so
    // nothing is shared and a lock is always free at once; an error-checking mutex still
    // refuses an unlock it does not hold.
    let thread: Table = lua.load(THREAD).set_name("=thread").eval()?;
    // msys.runInPool(pool, closure [, async | completion [, mode]]): Momentum runs the
    // closure in another thread pool. Waited for (no third argument, or false), it runs
    // here on the calling thread, whose Lua state it needs, and gives pcall's results,
    // which the caller cannot tell apart. Asynchronous (true, or a completion function),
    // it runs when the callout has returned, as Momentum's does, then its completion
    // function; `run_pending` (called by the sandbox after each callout) runs them.
    // Queuing sets a flag, so a callout without queued closures costs no Lua call.
    let queued = Rc::new(std::cell::Cell::new(false));
    lua.set_app_data(Queued(Rc::clone(&queued)));
    let mark = lua.create_function(move |_, ()| {
        queued.set(true);
        Ok(())
    })?;
    let pool: Table = lua
        .load(RUN_IN_POOL)
        .set_name("=msys.runInPool")
        .call(mark)?;
    msys.set("runInPool", pool.get::<mlua::Function>("run")?)?;
    lua.set_named_registry_value(PENDING, pool.get::<mlua::Function>("pending")?)?;
    let core: Table = msys.get("core")?;
    core.set("ECTP_COMPLETE_CALLBACK", 0)?;
    core.set("ECTP_COMPLETE_CALLBACK_SCHED", 1)?;
    lua.globals().set("thread", thread)?;
    let dumper: Table = lua.load(DUMPER).set_name("=msys.dumper").eval()?;
    msys.set("dumper", dumper)
}

/// Where the function that runs the asynchronous `msys.runInPool` closures is kept.
pub const PENDING: &str = "bindery.runInPool.pending";

/// Whether an asynchronous `msys.runInPool` closure waits to run (the sandbox keeps a copy
/// of the cell, so checking costs no lookup).
pub struct Queued(pub Rc<std::cell::Cell<bool>>);

const RUN_IN_POOL: &str = r#"
local mark = ...
local queue = {}
local function run(pool, closure, third, ...)
  if third == nil or third == false then
    return pcall(closure)
  end
  if third ~= true and type(third) ~= "function" then
    -- Not a documented form: the extra values are the closure's arguments.
    return pcall(closure, third, ...)
  end
  queue[#queue + 1] = { closure, type(third) == "function" and third or nil }
  mark()
end
-- Runs what was queued (and what that queues); the errors, for the log.
local function pending()
  local errors = {}
  while #queue > 0 do
    local jobs = queue
    queue = {}
    for _, job in ipairs(jobs) do
      local ok, err = pcall(job[1])
      if not ok then errors[#errors + 1] = tostring(err) end
      if job[2] then
        local ok2, err2 = pcall(job[2])
        if not ok2 then errors[#errors + 1] = tostring(err2) end
      end
    end
  end
  return errors
end
return { run = run, pending = pending }
"#;

/// `msys.dumper.Dumper(value)`: a readable dump of any value, tables nested and sorted by
/// key, cycles shown once. For debugging, as Momentum's.
const DUMPER: &str = r#"
local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end
local function dump(v, indent, seen)
  local t = type(v)
  if t == "string" then return string.format("%q", v) end
  if t ~= "table" then return tostring(v) end
  if seen[v] then return "<cycle>" end
  seen[v] = true
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, key_order)
  if #keys == 0 then seen[v] = nil return "{}" end
  local pad = string.rep("  ", indent + 1)
  local lines = {}
  for _, k in ipairs(keys) do
    local name = type(k) == "string" and string.format("[%q]", k) or "[" .. tostring(k) .. "]"
    lines[#lines + 1] = pad .. name .. " = " .. dump(v[k], indent + 1, seen)
  end
  seen[v] = nil
  return "{\n" .. table.concat(lines, ",\n") .. "\n" .. string.rep("  ", indent) .. "}"
end
return { Dumper = function(v) return dump(v, 0, {}) end }
"#;

/// Momentum's `thread` module, for a state that no other thread touches.
const THREAD: &str = r#"
local NORMAL, RECURSIVE, ERRORCHECK = 0, 1, 2
local mt = {}
mt.__index = mt
function mt:lock()
  if self.held > 0 and self.kind ~= RECURSIVE then
    error("thread.mutex: lock of a mutex this thread holds already", 2)
  end
  self.held = self.held + 1
  return true
end
function mt:trylock()
  if self.held > 0 and self.kind ~= RECURSIVE then return false end
  self.held = self.held + 1
  return true
end
function mt:unlock()
  if self.held == 0 then
    if self.kind == ERRORCHECK then error("thread.mutex: unlock of a mutex not held", 2) end
    return true
  end
  self.held = self.held - 1
  return true
end
return {
  MUTEX_NORMAL = NORMAL, MUTEX_RECURSIVE = RECURSIVE, MUTEX_ERRORCHECK = ERRORCHECK,
  mutex = function(kind) return setmetatable({ kind = kind or NORMAL, held = 0 }, mt) end,
}
"#;
