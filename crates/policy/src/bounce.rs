//! `msys.bounce` (Momentum's `lua/ref-msys-bounce-classify-smtp-response.md` and
//! `ref-msys-bounce-classify.md`): the daemon's bounce classifier, overrides included.
//!
//! - `classify_smtp_response(text [, domain])` returns `code, code_string, description`
//!   (`22, "BC_SOFT_MAILBOX_FULL", "The message bounced due to ..."`).
//! - `classify(msg)` is for out-of-band mail (an MDN); it arrives with out-of-band bounce
//!   processing and raises until then, saying so.

use std::sync::Arc;

use bindery_bounce::{Classifier, Live};
use mlua::{Lua, Table};

pub fn install(lua: &Lua, msys: &Table, live: Option<Arc<Live>>) -> mlua::Result<()> {
    let t = lua.create_table()?;
    let get = move || -> Arc<Classifier> {
        match &live {
            Some(l) => Arc::clone(&l.load()),
            None => bindery_bounce::shipped(),
        }
    };
    t.set(
        "classify_smtp_response",
        lua.create_function(move |_, (text, domain): (String, Option<String>)| {
            let c = get();
            let v = c.smtp(&text, domain.as_deref().unwrap_or(""));
            let d = c.describe(v.class);
            Ok((d.code, d.symbol.to_string(), d.description.to_string()))
        })?,
    )?;
    t.set(
        "classify",
        lua.create_function(|_, _: mlua::Variadic<mlua::Value>| -> mlua::Result<()> {
            Err(mlua::Error::runtime(
                "msys.bounce.classify: classifying out-of-band mail (an MDN) is not implemented by bindery yet (issue 22, out-of-band bounces); msys.bounce.classify_smtp_response is",
            ))
        })?,
    )?;
    msys.set("bounce", t)
}
