//! One Lua state for one policy: the sandbox, the `msys` API, the scripts loaded and
//! initialised, and the run budget every callout gets.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use mlua::{
    AnyUserData, Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, Variadic, VmState,
};

use crate::config::{Phase, View, World};
use crate::error::ScriptError;
use crate::handles::{Accept, Call, Msg, Shared, Vctx};
use crate::{
    CTX_CONN, CTX_MESS, Callout, Code, Conn, Inner, Limits, Message, VALIDATE_AGAIN, VALIDATE_CONT,
    VALIDATE_DONE,
};

/// The budget is checked every this many VM instructions.
const STRIDE: u32 = 1000;
/// The most memory one state may hold.
const MEMORY_LIMIT: usize = 64 << 20;
/// Where `msys.registerModule` keeps modules, in registration order.
const MODULES: &str = "bindery.modules";

struct Budget {
    used: Cell<u64>,
    started: Cell<Instant>,
    limits: Limits,
    /// The line the script was at when the hook last looked (every `STRIDE` instructions):
    /// where an out-of-memory error, which carries no place of its own, is reported.
    line: Cell<Option<usize>>,
    /// The file the hook last saw running (its short name, as Lua's errors give it).
    file: RefCell<String>,
}

impl Budget {
    fn start(&self) {
        self.used.set(0);
        self.started.set(Instant::now());
        self.line.set(None);
    }
}

pub struct State {
    /// Callouts the modules define that bindery does not run (`unrun.rs`), located where
    /// each is defined.
    pub warnings: Vec<ScriptError>,
    budget: Rc<Budget>,
    shared: Shared,
    msg: AnyUserData,
    accept: AnyUserData,
    vctx: AnyUserData,
    /// By callout: the modules implementing it (module table, function), in order.
    hooks: [Vec<(Table, Function)>; Callout::COUNT],
    /// Set when `msys.runInPool` queued a closure to run after the callout.
    queued: Rc<Cell<bool>>,
    /// What the scripts registered with `msys.adaptive.registerRules` while loading.
    adaptive: crate::adaptive::Registered,
    /// The state the handles above point into; declared last so it is dropped after them.
    lua: Lua,
}

fn sandbox(lua: &Lua, unsafe_libraries: bool) -> mlua::Result<()> {
    let g = lua.globals();
    if !unsafe_libraries {
        for name in ["dofile", "loadfile", "load"] {
            g.raw_set(name, Value::Nil)?;
        }
        // Time is harmless; the rest of `os` (execute, remove, exit, getenv) is not.
        let os: Table = g.get("os")?;
        let safe = lua.create_table()?;
        for name in ["time", "clock", "date", "difftime"] {
            safe.set(name, os.get::<Value>(name)?)?;
        }
        g.set("os", safe)?;
        // Lua 5.1's `loadstring` compiles source, which is harmless; a precompiled chunk
        // (what `string.dump` makes) is not checked by the VM and can break out of the
        // sandbox, so it is refused.
        lua.load(
            r#"
            local real = loadstring
            loadstring = function(s, name)
              if type(s) == "string" and string.byte(s, 1) == 27 then
                return nil, "precompiled chunks are not loaded in the policy sandbox"
              end
              return real(s, name)
            end
            "#,
        )
        .set_name("=bindery")
        .exec()?;
    }
    // `print` goes to the log, not to the daemon's stdout; each argument as `tostring`
    // gives it (a userdata's `__tostring` too).
    let tostring: mlua::Function = g.get("tostring")?;
    let print = lua.create_function(move |_, args: Variadic<Value>| {
        let mut line = Vec::with_capacity(args.len());
        for a in args {
            // Strings directly; anything else as `tostring` writes it (numbers as Lua 5.1's
            // "%.14g").
            line.push(match a {
                Value::String(s) => s.to_string_lossy(),
                other => tostring.call::<String>(other)?,
            });
        }
        tracing::info!(target: "policy", "{}", line.join("\t"));
        Ok(())
    })?;
    g.set("print", print.clone())?;
    // An error a bindery function raises reaches Lua as an mlua error object; Momentum's
    // are strings, and scripts `string.find` them after `pcall`. So `pcall` and `xpcall`
    // hand on such an error as its message (without mlua's "runtime error:" and
    // traceback).
    let text = lua.create_function(|lua, v: Value| {
        Ok(match v {
            Value::Error(e) => Value::String(lua.create_string(error_message(&e))?),
            other => other,
        })
    })?;
    lua.load(
        r#"
        local text = ...
        local raw_pcall, raw_xpcall, select = pcall, xpcall, select
        local function fix(ok, ...)
          if ok then return ok, ... end
          return false, text((...)), select(2, ...)
        end
        pcall = function(f, ...) return fix(raw_pcall(f, ...)) end
        xpcall = function(f, handler)
          return raw_xpcall(f, function(e) return handler(text(e)) end)
        end
        "#,
    )
    .set_name("=bindery.pcall")
    .call::<()>(text)?;
    // `debug.output(text)`: the logging helper SparkPost's sample policies call (it is on
    // no reference page); it logs as `print` does. Lua's own `debug` library is not in the
    // sandbox, so this table holds only it unless unsafe libraries are allowed.
    let debug = match g.get::<Value>("debug")? {
        Value::Table(t) => t,
        _ => lua.create_table()?,
    };
    debug.set("output", print)?;
    g.set("debug", debug)?;
    Ok(())
}

/// The message of an error a Rust function raised: the innermost cause's text.
fn error_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => error_message(cause),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::WithContext { cause, .. } => error_message(cause),
        other => other.to_string(),
    }
}

/// `os.time()` and `os.date()` as at `now` (a time given to them is still theirs).
fn fixed_clock(lua: &Lua, now: i64) -> mlua::Result<()> {
    lua.load(
        r#"
        local now = ...
        local time, date = os.time, os.date
        os.time = function(t) if t == nil then return now end return time(t) end
        os.date = function(fmt, t) return date(fmt, t or now) end
        "#,
    )
    .set_name("=bindery.clock")
    .call::<()>(now)
}

fn msys(lua: &Lua, world: &Rc<World>) -> mlua::Result<()> {
    let msys = lua.create_table()?;
    let core = lua.create_table()?;
    for (k, v) in [
        ("VALIDATE_CONT", VALIDATE_CONT),
        ("VALIDATE_DONE", VALIDATE_DONE),
        ("VALIDATE_AGAIN", VALIDATE_AGAIN),
        ("ECMESS_CTX_MESS", CTX_MESS),
        ("ECMESS_CTX_CONN", CTX_CONN),
        ("VCTX_MESS", CTX_MESS),
        ("VCTX_CONN", CTX_CONN),
        ("EC_MSG_ENV_FROM", crate::handles::ENV_FROM),
        ("EC_MSG_ENV_TO", crate::handles::ENV_TO),
        ("EC_MSG_ENV_COMPLETE", crate::handles::ENV_COMPLETE),
        // Linux's open(2) flags, for io_wrapper_open's callers.
        ("O_RDONLY", 0),
        ("O_WRONLY", 1),
        ("O_RDWR", 2),
        ("O_CREAT", 0o100),
        ("O_TRUNC", 0o1000),
        ("O_APPEND", 0o2000),
    ] {
        core.set(k, v)?;
    }
    // msys.core.string_new(): Momentum's ec_string, a buffer `msg:get_envelope2` fills;
    // `tostring` gives its text.
    let string_mt = lua.create_table()?;
    string_mt.set(
        "__tostring",
        lua.create_function(|_, t: Table| {
            Ok(t.get::<Option<String>>("buffer")?.unwrap_or_default())
        })?,
    )?;
    core.set(
        "string_new",
        lua.create_function(move |lua, ()| {
            let t = lua.create_table()?;
            t.set("buffer", "")?;
            t.set_metatable(Some(string_mt.clone()))?;
            Ok(t)
        })?,
    )?;
    let w = Rc::clone(world);
    core.set(
        "config_get_binding_id_from_name",
        lua.create_function(move |_, name: String| {
            Ok(w.view()
                .snapshot
                .binding_id(&name)
                .map_or(-1, |b| i64::from(b.0)))
        })?,
    )?;
    let w = Rc::clone(world);
    core.set(
        "config_get_binding_name_from_id",
        lua.create_function(move |_, id: i64| {
            let view = w.view();
            let name = u32::try_from(id)
                .ok()
                .map(bindery_config::snapshot::BindingId)
                .filter(|b| view.snapshot.bindings().any(|x| x == *b))
                .map(|b| view.snapshot.binding_name(b).to_string());
            Ok(name)
        })?,
    )?;
    let w = Rc::clone(world);
    core.set(
        "config_get_binding_group_size",
        lua.create_function(move |_, name: String| {
            let view = w.view();
            Ok(view
                .snapshot
                .group_id(&name)
                .map_or(-1, |g| view.bindings.group_size(g) as i64))
        })?,
    )?;
    core.set(
        "io_wrapper_open",
        lua.create_function(|_, uri: String| -> mlua::Result<()> {
            Err(mlua::Error::runtime(format!(
                "msys.core.io_wrapper_open({uri:?}) is not implemented by bindery: scripts do not open files or jlogs in its sandbox (Allow_Unsafe_Libraries = true gives them Lua's io library)"
            )))
        })?,
    )?;
    msys.set("core", core)?;
    crate::library::install(lua, &msys)?;
    crate::bitwise::install(lua)?;
    lua.set_named_registry_value(MODULES, lua.create_table()?)?;
    msys.set(
        "registerModule",
        lua.create_function(|lua, (name, module): (String, Table)| {
            let list: Table = lua.named_registry_value(MODULES)?;
            // Registering a name again replaces the module, in place.
            for pair in list.sequence_values::<Table>() {
                let pair = pair?;
                if pair.get::<String>(1)? == name {
                    pair.set(2, module)?;
                    return Ok(());
                }
            }
            list.push(lua.create_sequence_from([
                Value::String(lua.create_string(&name)?),
                Value::Table(module),
            ])?)?;
            Ok(())
        })?,
    )?;
    let w = Rc::clone(world);
    msys.set(
        "config",
        lua.create_function(move |_, args: Variadic<String>| {
            let Some((action, words)) = args.split_first() else {
                return Err(mlua::Error::runtime(
                    "msys.config needs an action: \"get\", \"eval\", \"set\" or \"unset\"",
                ));
            };
            w.config(action, words).map_err(mlua::Error::runtime)
        })?,
    )?;
    lua.globals().set("msys", msys)
}

/// `msys.audit_series` over `series`; an address key defaults to the connected client's, a
/// key given as the `accept` object means that client too.
fn audit_series_table(
    lua: &Lua,
    call: &Rc<RefCell<Call>>,
    series: Arc<crate::audit_series::AuditSeries>,
) -> mlua::Result<Table> {
    use crate::audit_series::Kind;
    let now = crate::unix_now;
    let t = lua.create_table()?;
    let s = Arc::clone(&series);
    t.set(
        "define",
        lua.create_function(
            move |_,
                  (name, kind, interval, windows, options): (
                String,
                String,
                f64,
                f64,
                Option<Table>,
            )| {
                if let Some(o) = &options {
                    let on = |k: &str| o.get::<Option<bool>>(k).ok().flatten() == Some(true);
                    let replicate = o.get::<Option<String>>("replicate").ok().flatten();
                    if on("persist") || on("serialize") || replicate.is_some_and(|r| r != "none") {
                        return Err(mlua::Error::runtime(
                            "msys.audit_series.define: persist, serialize and replicate are not implemented by bindery (series live in memory, on one node)",
                        ));
                    }
                }
                let kind = match kind.as_str() {
                    "cidr" => Kind::Cidr,
                    "cidr_ipv6" => Kind::CidrV6,
                    "string" => Kind::Str,
                    other => {
                        return Err(mlua::Error::runtime(format!(
                            "msys.audit_series.define: type {other:?} is not cidr, cidr_ipv6 or string"
                        )));
                    }
                };
                s.define(&name, kind, interval.max(0.0) as u64, windows.max(0.0) as u64)
                    .map_err(mlua::Error::runtime)
            },
        )?,
    )?;
    // The key an option table or a bare value names, for series `name`.
    let call = Rc::clone(call);
    let s = Arc::clone(&series);
    let key_of = move |name: &str, v: &Value| -> mlua::Result<String> {
        let peer = || {
            call.borrow()
                .conn
                .peer
                .map(|p| p.to_string())
                .ok_or_else(|| {
                    mlua::Error::runtime("msys.audit_series: no connected client to count")
                })
        };
        let given = match v {
            Value::Table(o) => o.get::<Value>("key")?,
            other => other.clone(),
        };
        match given {
            Value::String(k) => {
                let k = k.to_str()?.to_string();
                // "/24": the connected client's address with that mask.
                if k.starts_with('/') && s.kind(name) != Some(Kind::Str) {
                    return Ok(format!("{}{k}", peer()?));
                }
                Ok(k)
            }
            Value::UserData(_) => peer(),
            Value::Nil if s.kind(name) != Some(Kind::Str) => peer(),
            _ => Err(mlua::Error::runtime(
                "msys.audit_series: a string series needs a key",
            )),
        }
    };
    let key_of = Rc::new(key_of);
    let (s, k) = (Arc::clone(&series), Rc::clone(&key_of));
    t.set(
        "add",
        lua.create_function(move |_, (name, o): (String, Value)| {
            let count = match &o {
                Value::Table(t) => t.get::<Option<f64>>("count")?.unwrap_or(1.0) as i64,
                _ => 1,
            };
            let key = k(&name, &o)?;
            s.add(&name, &key, count, now())
                .map_err(mlua::Error::runtime)
        })?,
    )?;
    let (s, k) = (Arc::clone(&series), Rc::clone(&key_of));
    t.set(
        "count",
        lua.create_function(move |_, (name, o): (String, Value)| {
            let (startv, endv) = match &o {
                Value::Table(t) => (
                    t.get::<Option<f64>>("startv")?.unwrap_or(0.0).max(0.0) as u64,
                    t.get::<Option<f64>>("endv")?.unwrap_or(0.0).max(0.0) as u64,
                ),
                _ => (0, 0),
            };
            let key = k(&name, &o)?;
            s.count(&name, &key, startv, endv, now())
                .map_err(mlua::Error::runtime)
        })?,
    )?;
    let (s, k) = (series, key_of);
    t.set(
        "remove_item",
        lua.create_function(move |_, (name, key): (String, Value)| {
            let key = k(&name, &key)?;
            s.remove_item(&name, &key);
            Ok(())
        })?,
    )?;
    Ok(t)
}

/// A Lua error's text with a place: Lua says where every error happened but running out of
/// memory, which is then reported at `line`, where the budget hook last saw the script.
fn lua_error_text(e: &mlua::Error, path: &std::path::Path, line: Option<usize>) -> String {
    match (e, line) {
        (mlua::Error::MemoryError(_), Some(line)) => format!(
            "{}:{line}: out of memory: the script used up the {} MB a policy state may have \
             (near this line)",
            path.display(),
            MEMORY_LIMIT >> 20
        ),
        _ => crate::error::error_text(e),
    }
}

impl State {
    /// Builds a state for `inner`'s policy. `loading` says what `init`'s configuration
    /// changes do: [`Phase::Apply`] only for the trial state of a policy loaded from the
    /// files, [`Phase::Replay`] for every other.
    pub fn build(inner: &Inner, loading: Phase) -> Result<State, ScriptError> {
        let bare = |msg: String| ScriptError {
            path: "<bindery>".into(),
            line: None,
            col: None,
            message: msg,
            line_text: None,
        };
        let libs = if inner.limits.unsafe_libraries {
            StdLib::ALL_SAFE
        } else {
            // Lua 5.1's base library holds `coroutine`; `package` is `require` and
            // `module()`, its file and C loaders replaced (`require.rs`).
            StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::OS | StdLib::PACKAGE
        };
        let lua = Lua::new_with(libs, LuaOptions::default()).map_err(|e| bare(e.to_string()))?;
        let _ = lua.set_memory_limit(MEMORY_LIMIT);
        let world = Rc::new(World::new(inner.view.clone(), inner.hosts.clone(), loading));
        sandbox(&lua, inner.limits.unsafe_libraries).map_err(|e| bare(e.to_string()))?;
        msys(&lua, &world).map_err(|e| bare(e.to_string()))?;
        if let Some(t) = inner.hosts.fixed_time {
            fixed_clock(&lua, t).map_err(|e| bare(e.to_string()))?;
        }
        // The callout running now, shared by the handles and the functions that need it;
        // made before the scripts load, which may call those functions in `init`.
        let call = Rc::new(RefCell::new(Call::idle()));
        let series = audit_series_table(&lua, &call, Arc::clone(&inner.stats.audit_series))
            .map_err(|e| bare(e.to_string()))?;
        lua.globals()
            .get::<Table>("msys")
            .and_then(|m| m.set("audit_series", series))
            .map_err(|e| bare(e.to_string()))?;
        let live = inner.hosts.sessions.clone();
        let c = Rc::clone(&call);
        lua.globals()
            .get::<Table>("msys")
            .and_then(|m| {
                let core: Table = m.get("core")?;
                crate::newmsg::install_core(&lua, &core, &call, &world)?;
                // msys.audit.inbound_session_count(cidr, service): sessions open now.
                let audit: Table = m.get("audit")?;
                crate::audit_series::install_inbound(
                    &lua,
                    &audit,
                    &call,
                    Arc::clone(&inner.stats.audit_series),
                )?;
                audit.set(
                    "inbound_session_count",
                    lua.create_function(move |_, (cidr, service): (String, Option<String>)| {
                        let peer = c.borrow().conn.peer;
                        crate::inject::session_count(
                            live.as_deref(),
                            &cidr,
                            service.as_deref().unwrap_or("SMTP"),
                            peer,
                            None,
                        )
                        .map_err(|e| {
                            mlua::Error::runtime(format!("msys.audit.inbound_session_count: {e}"))
                        })
                    })?,
                )
            })
            .map_err(|e| bare(e.to_string()))?;
        let counters = Arc::clone(&inner.stats.counters);
        // Scripts register over Momentum's system rules, as in Momentum.
        let adaptive: crate::adaptive::Registered = Rc::new(std::cell::RefCell::new(
            (*bindery_adaptive::system::rules()).clone(),
        ));
        lua.globals()
            .get::<Table>("msys")
            .and_then(|m| {
                crate::counters::install(&lua, &m, counters)?;
                crate::cidr::install(
                    &lua,
                    &m,
                    &call,
                    Arc::clone(&inner.stats.cidrs),
                    Arc::clone(&inner.datasources),
                )?;
                crate::opendkim::install(
                    &lua,
                    &m,
                    Arc::clone(&inner.dkim_keys),
                    inner.hosts.dns.clone(),
                )?;
                crate::bounce::install(&lua, &m, inner.hosts.bounces.clone())?;
                crate::adaptive::install(&lua, &m, Rc::clone(&adaptive))?;
                crate::db::install(&lua, &m, Arc::clone(&inner.datasources))
            })
            .map_err(|e| bare(e.to_string()))?;
        crate::require::install(
            &lua,
            inner.module_dirs.clone(),
            inner.limits.unsafe_libraries,
        )
        .map_err(|e| bare(e.to_string()))?;

        let budget = Rc::new(Budget {
            used: Cell::new(0),
            started: Cell::new(Instant::now()),
            limits: inner.limits,
            line: Cell::new(None),
            file: RefCell::default(),
        });
        // A DNS lookup's wait is not the script's running time.
        let b = budget.clone();
        lua.globals()
            .get::<Table>("msys")
            .and_then(|m| {
                crate::dns::install(&lua, &m, inner.hosts.dns.clone(), move |waited| {
                    b.started.set(b.started.get() + waited)
                })
            })
            .map_err(|e| bare(e.to_string()))?;
        let b = budget.clone();
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(STRIDE),
            move |_, debug| {
                let used = b.used.get() + u64::from(STRIDE);
                b.used.set(used);
                b.line.set(debug.current_line());
                if let Some(src) = debug.source().short_src {
                    let mut file = b.file.borrow_mut();
                    if *file != *src {
                        *file = src.into_owned();
                    }
                }
                let over_count = used > b.limits.instructions;
                if over_count || b.started.get().elapsed() > b.limits.time {
                    let src = debug.source();
                    let file = src.short_src.as_deref().unwrap_or("?").to_string();
                    let line = debug.current_line().unwrap_or(0);
                    let what = if over_count {
                        format!("{} instructions", b.limits.instructions)
                    } else {
                        format!("{:?}", b.limits.time)
                    };
                    return Err(mlua::Error::runtime(format!(
                        "{file}:{line}: script stopped: it ran past its budget of {what}"
                    )));
                }
                Ok(VmState::Continue)
            },
        )
        .map_err(|e| bare(e.to_string()))?;

        // Load each script; modules registered meanwhile belong to it (for init errors).
        let mut owner = Vec::new();
        for (i, script) in inner.scripts.iter().enumerate() {
            budget.start();
            budget.line.set(None);
            let fail = |e: mlua::Error| {
                let text = lua_error_text(&e, &script.path, budget.line.get());
                ScriptError::from_lua(&script.path, &script.text, &text)
            };
            lua.load(crate::dialect::translate(&script.text).as_ref())
                .set_name(format!("@{}", script.path.display()))
                .exec()
                .map_err(fail)?;
            let list: Table = lua.named_registry_value(MODULES).map_err(fail)?;
            owner.resize(list.raw_len(), i);
        }
        let list: Table = lua
            .named_registry_value(MODULES)
            .map_err(|e| bare(e.to_string()))?;
        let mut modules = Vec::new();
        for pair in list.sequence_values::<Table>() {
            let pair = pair.map_err(|e| bare(e.to_string()))?;
            let name: String = pair.get(1).map_err(|e| bare(e.to_string()))?;
            let module: Table = pair.get(2).map_err(|e| bare(e.to_string()))?;
            modules.push((name, module));
        }
        // Momentum's init(): must return true.
        for (i, (name, module)) in modules.iter().enumerate() {
            let script = &inner.scripts[owner.get(i).copied().unwrap_or(0)];
            let fail = |m: String| ScriptError::from_lua(&script.path, &script.text, &m);
            if let Ok(Value::Function(init)) = module.get::<Value>("init") {
                budget.start();
                match init.call::<Value>(module.clone()) {
                    Ok(Value::Boolean(true)) => {}
                    Ok(other) => {
                        // Reported where `init` is defined: the value has no place of its own.
                        let shown = match &other {
                            Value::Boolean(b) => b.to_string(),
                            Value::Nil => "nil".into(),
                            v => v.type_name().to_string(),
                        };
                        let at = init.info().line_defined.map_or(String::new(), |l| {
                            format!("{}:{l}: ", script.path.display())
                        });
                        return Err(fail(format!(
                            "{at}module '{name}' initialization failed: init() returned {shown} instead of true"
                        )));
                    }
                    Err(e) => {
                        let text = lua_error_text(&e, &script.path, budget.line.get());
                        return Err(fail(format!(
                            "module '{name}' initialization failed: {text}"
                        )));
                    }
                }
            }
        }
        world.loaded();
        let mut warnings = Vec::new();
        for (i, (name, module)) in modules.iter().enumerate() {
            let script = &inner.scripts[owner.get(i).copied().unwrap_or(0)];
            let mut found: Vec<(String, Option<usize>)> = Vec::new();
            for pair in module.clone().pairs::<Value, Value>() {
                let Ok((Value::String(k), Value::Function(f))) = pair else {
                    continue;
                };
                found.push((k.to_string_lossy(), f.info().line_defined));
            }
            found.sort();
            for (callout, line) in found {
                if let Some(why) = crate::unrun::why(&callout) {
                    let at = line.map_or(String::new(), |l| {
                        format!("{}:{l}: ", script.path.display())
                    });
                    warnings.push(ScriptError::from_lua(
                        &script.path,
                        &script.text,
                        &format!("{at}module '{name}' defines `{callout}`: {why}"),
                    ));
                }
            }
        }
        let mut hooks: [Vec<(Table, Function)>; Callout::COUNT] = Default::default();
        for c in Callout::ALL {
            for (_, module) in &modules {
                if let Ok(Value::Function(f)) = module.get::<Value>(c.name()) {
                    hooks[c as usize].push((module.clone(), f));
                }
            }
        }
        let shared = Shared { call, world };
        let err = |e: mlua::Error| bare(e.to_string());
        let msg = lua.create_userdata(Msg(shared.clone())).map_err(err)?;
        let accept = lua.create_userdata(Accept(shared.clone())).map_err(err)?;
        let vctx = lua.create_userdata(Vctx(shared.clone())).map_err(err)?;
        // msys.core.accept_construct_get_message_construct(accept): the message of the
        // callout running now, as `.message` (how some sample scripts reach it from
        // validate_data's first argument).
        let m = msg.clone();
        let construct = lua
            .create_function(move |lua, _: Value| {
                let t = lua.create_table()?;
                t.set("message", m.clone())?;
                Ok(t)
            })
            .map_err(err)?;
        let core: Table = lua
            .globals()
            .get::<Table>("msys")
            .and_then(|m| m.get("core"))
            .map_err(err)?;
        core.set("accept_construct_get_message_construct", construct)
            .map_err(err)?;
        // msys.expandMacro(text): `%{vctx_conn:KEY}` and `%{vctx_mess:KEY}` from the
        // callout running now, `%{spfv1:L}` (RFC 7208's macro letters); any other macro
        // stays as written.
        let call = Rc::clone(&shared.call);
        let expand = lua
            .create_function(move |_, text: String| {
                let call = call.borrow();
                Ok(crate::macros::expand(&text, |kind, key| match kind {
                    "vctx_conn" => call.conn.context.get(key).cloned(),
                    "vctx_mess" => call.msg.context.get(key).cloned(),
                    "spfv1" => crate::macros::spf(key, &call.conn, &call.msg),
                    _ => None,
                }))
            })
            .map_err(err)?;
        lua.globals()
            .get::<Table>("msys")
            .and_then(|m| m.set("expandMacro", expand))
            .map_err(err)?;
        let queued = lua
            .app_data_ref::<crate::library::Queued>()
            .map(|q| Rc::clone(&q.0))
            .unwrap_or_default();
        Ok(State {
            warnings,
            queued,
            adaptive,
            lua,
            budget,
            shared,
            msg,
            accept,
            vctx,
            hooks,
        })
    }

    /// The configuration this state sees now: its policy's, or a later one after a change
    /// made from a script (during `init`, the policy adopts it).
    pub fn view(&self) -> View {
        self.shared.world.view()
    }

    /// The adaptive rules the scripts registered while this state loaded.
    pub fn adaptive_rules(&self) -> bindery_adaptive::RuleSet {
        self.adaptive.borrow().clone()
    }

    /// Which callouts some module implements, as a bit set.
    pub fn callouts(&self) -> u32 {
        Callout::ALL
            .iter()
            .filter(|c| !self.hooks[**c as usize].is_empty())
            .fold(0, |acc, c| acc | c.bit())
    }

    /// Runs callout `c` in every module that has it. The connection and message move into
    /// the shared call and back out, whatever happens.
    pub fn run(
        &self,
        c: Callout,
        conn: &mut Conn,
        msg: &mut Message,
        arg: Option<&str>,
    ) -> mlua::Result<Option<Code>> {
        let rcpt = (c == Callout::RcptTo).then(|| arg.unwrap_or_default().to_string());
        self.enter(c, conn, msg, rcpt, None);
        let result = self.call_modules(c, arg);
        self.run_pending(c);
        let code = self.leave(conn, msg);
        result?;
        // A 2xx or 3xx "code" accepts: there is nothing to refuse.
        Ok(code.filter(|c| c.code >= 400))
    }

    /// Moves the connection and message into the shared call for callout `c`.
    fn enter(
        &self,
        c: Callout,
        conn: &mut Conn,
        msg: &mut Message,
        rcpt: Option<String>,
        code: Option<Code>,
    ) {
        let mut call = self.shared.call.borrow_mut();
        call.active = true;
        call.phase = c;
        call.conn = std::mem::take(conn);
        call.msg = std::mem::take(msg);
        call.rcpt = rcpt;
        call.code = code;
        call.mime = None;
    }

    /// Moves them back out, whatever the callout did; the code it set.
    fn leave(&self, conn: &mut Conn, msg: &mut Message) -> Option<Code> {
        let mut call = self.shared.call.borrow_mut();
        call.active = false;
        *conn = std::mem::take(&mut call.conn);
        *msg = std::mem::take(&mut call.msg);
        call.code.take()
    }

    /// Runs a log callout (`core_log_*_v1`) in every module that has it, with Momentum's
    /// arguments `(msg, dr, now, note, note_len)`; `dr` is a table with the `domain`. The
    /// code the scripts set (`msg:set_code`) replaces `note`, if they set one.
    pub fn run_log(
        &self,
        c: Callout,
        conn: &mut Conn,
        msg: &mut Message,
        domain: &str,
        now: u64,
        note: &Code,
    ) -> mlua::Result<Option<Code>> {
        let rcpt = msg.recipients.first().cloned();
        self.enter(c, conn, msg, rcpt, Some(note.clone()));
        let text = format!("{} {}", note.code, note.text);
        let result = (|| -> mlua::Result<()> {
            let dr = self.lua.create_table()?;
            dr.set("domain", domain)?;
            for (module, f) in &self.hooks[c as usize] {
                self.budget.start();
                if c == Callout::PreRequeue {
                    // Momentum's (msg, now).
                    f.call::<Value>((module.clone(), &self.msg, now as f64))
                        .map_err(|e| self.located(e, f))?;
                    continue;
                }
                f.call::<Value>((
                    module.clone(),
                    &self.msg,
                    dr.clone(),
                    now as f64,
                    text.as_str(),
                    text.len(),
                ))
                .map_err(|e| self.located(e, f))?;
            }
            Ok(())
        })();
        self.run_pending(c);
        let code = self.leave(conn, msg);
        result?;
        Ok(code.filter(|k| k != note))
    }

    /// An out-of-memory error (Lua gives it no place) located where the hook last saw the
    /// script in this call, else where the callout `f` that ran out is defined.
    fn located(&self, e: mlua::Error, f: &mlua::Function) -> mlua::Error {
        if !matches!(e, mlua::Error::MemoryError(_)) {
            return e;
        }
        let (file, line) = match self.budget.line.get() {
            Some(line) => (self.budget.file.borrow().clone(), line),
            None => {
                let info = f.info();
                let file = info.short_src.unwrap_or_else(|| "?".into());
                (file, info.line_defined.unwrap_or(0))
            }
        };
        mlua::Error::runtime(format!(
            "{file}:{line}: out of memory: the script used up the {} MB a policy state may have \
             (in or near this function)",
            MEMORY_LIMIT >> 20
        ))
    }

    /// Runs the closures `msys.runInPool` was given to run once the callout returned; their
    /// errors are logged (nobody waits for their results).
    fn run_pending(&self, c: Callout) {
        if !self.queued.replace(false) {
            return;
        }
        let Ok(pending) = self
            .lua
            .named_registry_value::<mlua::Function>(crate::library::PENDING)
        else {
            return;
        };
        self.budget.start();
        match pending.call::<Vec<String>>(()) {
            Ok(errors) => {
                for e in errors {
                    tracing::warn!(callout = c.name(), error = %e, "an msys.runInPool closure failed");
                }
            }
            Err(e) => {
                tracing::warn!(callout = c.name(), error = %e, "msys.runInPool's closures failed")
            }
        }
    }

    fn call_modules(&self, c: Callout, arg: Option<&str>) -> mlua::Result<()> {
        for (module, f) in &self.hooks[c as usize] {
            self.budget.start();
            let m = module.clone();
            let ret: mlua::Result<Value> = match c {
                Callout::Connect | Callout::Accept => f.call((m, &self.accept, &self.vctx)),
                Callout::Dealloc => f.call(m),
                Callout::Ehlo | Callout::MailFrom => f.call((m, arg, &self.accept, &self.vctx)),
                Callout::RcptTo => f.call((m, &self.msg, arg, &self.accept, &self.vctx)),
                Callout::RcptToList | Callout::RcptToListFinal => {
                    // The recipients as `vctx:recipient_list` gives them (from 0).
                    let list = self.lua.create_table()?;
                    let rcpts = self.shared.call.borrow().msg.recipients.clone();
                    for (i, r) in rcpts.iter().enumerate() {
                        list.raw_set(i, r.as_str())?;
                    }
                    f.call((m, list, &self.vctx))
                }
                Callout::Data
                | Callout::DataSpool
                | Callout::DataSpoolEachRcpt
                | Callout::PostEachRcpt
                | Callout::FinalValidation => f.call((m, &self.msg, &self.accept, &self.vctx)),
                Callout::PreEachRcpt => f.call((m, &self.msg, &self.accept)),
                // Run by `run_log`, never here.
                Callout::LogDelivery
                | Callout::LogTransient
                | Callout::LogPermanent
                | Callout::PreRequeue => Ok(Value::Nil),
                Callout::SetBinding | Callout::MsgGenDataSpool => f.call((m, &self.msg)),
                // Momentum 5.1 documents `(msg)`, the 4.2 module and SparkPost's
                // sparkpost-relay sample `(msg, ac, vctx)`: both get all three.
                Callout::SmtpAuthConfig | Callout::SmtpAuthConfigV0 => {
                    f.call((m, &self.msg, &self.accept, &self.vctx))
                }
            };
            let ret = ret.map_err(|e| self.located(e, f))?;
            let done = match ret {
                Value::Integer(n) => n == VALIDATE_DONE,
                Value::Number(n) => n == VALIDATE_DONE as f64,
                _ => false,
            };
            // A code ends the phase: the command is refused, later modules need not vote.
            if done || self.shared.call.borrow().code.is_some() {
                break;
            }
        }
        Ok(())
    }
}
