//! `msys.counter`: Momentum's named counters (`/site/name/...`), shared by every thread's Lua
//! state and kept across configuration generations, as Momentum's live as long as the
//! process. Momentum's `STRICT` and `RELAXED` semantics differ only in how updates spread
//! over processors; both read the same total, which is what an atomic gives here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use mlua::{Lua, Table, UserData, Value};

/// Every counter, by path.
#[derive(Debug, Default)]
pub struct Counters(Mutex<HashMap<String, Arc<AtomicI64>>>);

impl Counters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AtomicI64>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The counter at `path`, made at 0 if there is none.
    pub fn get(&self, path: &str) -> Arc<AtomicI64> {
        Arc::clone(self.lock().entry(path.to_string()).or_default())
    }

    /// Takes `path` out of the index; handles to it keep counting on their own.
    pub fn unlink(&self, path: &str) {
        self.lock().remove(path);
    }

    /// Every counter and its value, by path.
    pub fn list(&self) -> Vec<(String, i64)> {
        let mut v: Vec<_> = self
            .lock()
            .iter()
            .map(|(k, c)| (k.clone(), c.load(Ordering::Relaxed)))
            .collect();
        v.sort();
        v
    }
}

/// A handle from `msys.counter.open`.
struct Handle(Arc<AtomicI64>);

impl UserData for Handle {}

/// Installs `msys.counter` over `counters`.
pub fn install(lua: &Lua, msys: &Table, counters: Arc<Counters>) -> mlua::Result<()> {
    let counter = lua.create_table()?;
    counter.set("STRICT", 0)?;
    counter.set("RELAXED", 1)?;
    let of = {
        let c = Arc::clone(&counters);
        move |v: Value| -> mlua::Result<Arc<AtomicI64>> {
            match v {
                Value::String(s) => Ok(c.get(&s.to_str()?)),
                Value::UserData(u) => Ok(Arc::clone(&u.borrow::<Handle>()?.0)),
                other => Err(mlua::Error::runtime(format!(
                    "msys.counter: a counter is a path or a handle from msys.counter.open, not a {}",
                    other.type_name()
                ))),
            }
        }
    };
    let c = Arc::clone(&counters);
    counter.set(
        "open",
        lua.create_function(move |_, (path, _semantics): (String, Option<i64>)| {
            Ok(Handle(c.get(&path)))
        })?,
    )?;
    let f = of.clone();
    counter.set(
        "inc",
        lua.create_function(move |_, v: Value| Ok(f(v)?.fetch_add(1, Ordering::Relaxed) + 1))?,
    )?;
    let f = of.clone();
    counter.set(
        "add",
        lua.create_function(move |_, (v, delta): (Value, f64)| {
            let d = delta as i64;
            Ok(f(v)?.fetch_add(d, Ordering::Relaxed) + d)
        })?,
    )?;
    let f = of.clone();
    counter.set(
        "read",
        lua.create_function(move |_, v: Value| Ok(f(v)?.load(Ordering::Relaxed)))?,
    )?;
    let f = of;
    counter.set(
        "reset",
        lua.create_function(move |_, v: Value| {
            f(v)?.store(0, Ordering::Relaxed);
            Ok(())
        })?,
    )?;
    let c = counters;
    counter.set(
        "unlink",
        lua.create_function(move |_, path: String| {
            c.unlink(&path);
            Ok(())
        })?,
    )?;
    msys.set("counter", counter)
}
