//! `msys.bounce` (Momentum's `lua/ref-msys-bounce-classify-smtp-response.md` and
//! `ref-msys-bounce-classify.md`): the daemon's bounce classifier, overrides included.
//!
//! - `classify_smtp_response(text [, domain])` returns `code, code_string, description`
//!   (`22, "BC_SOFT_MAILBOX_FULL", "The message bounced due to ..."`).
//! - `classify(msg)` reads the message as out-of-band mail (a DSN, an ARF report, an
//!   auto-reply: `bindery_bounce::report`) and returns `code, code_string, description,
//!   orig_rcpt`: a DSN's first failed recipient's class and address, an ARF report's
//!   original recipient, or the class of an MDN's text and the first address it names.

use std::sync::Arc;

use bindery_bounce::{Classifier, Live};
use mlua::{Lua, Table};

/// The classifier in force: the daemon's, or the shipped rules without a daemon.
fn current(live: &Option<Arc<Live>>) -> Arc<Classifier> {
    match live {
        Some(l) => Arc::clone(&l.load()),
        None => bindery_bounce::shipped(),
    }
}

pub fn install(lua: &Lua, msys: &Table, live: Option<Arc<Live>>) -> mlua::Result<()> {
    let t = lua.create_table()?;
    let live2 = live.clone();
    t.set(
        "classify_smtp_response",
        lua.create_function(move |_, (text, domain): (String, Option<String>)| {
            let c = current(&live);
            let v = c.smtp(&text, domain.as_deref().unwrap_or(""));
            let d = c.describe(v.class);
            Ok((d.code, d.symbol.to_string(), d.description.to_string()))
        })?,
    )?;
    t.set(
        "classify",
        lua.create_function(move |_, msg: mlua::AnyUserData| {
            let msg = msg.borrow::<crate::handles::Msg>()?;
            let body: Vec<u8> = msg.0.with(|c| Ok(c.msg.body.clone()))?;
            if body.is_empty() {
                return Err(mlua::Error::runtime(
                    "msys.bounce.classify: the message has no data yet: call it from validate_data or later",
                ));
            }
            let c = current(&live2);
            let (class, rcpt) = classify_message(&c, &body);
            let d = c.describe(class);
            Ok((
                d.code,
                d.symbol.to_string(),
                d.description.to_string(),
                rcpt,
            ))
        })?,
    )?;
    msys.set("bounce", t)
}

/// The class of out-of-band mail and the original recipient it names.
fn classify_message(c: &Classifier, body: &[u8]) -> (u16, String) {
    let Ok(r) = bindery_bounce::report::parse(body, "X-MSFBL") else {
        return (bindery_bounce::class::UNDETERMINED, String::new());
    };
    if let Some(rc) = r.recipients.first() {
        return (r.recipient_class(c, rc), rc.address.clone());
    }
    let rcpt = r
        .feedback
        .as_ref()
        .map(|f| f.original_rcpt.clone())
        .filter(|a| !a.is_empty())
        .or_else(|| r.mark.as_ref().map(|m| m.rcpt.clone()))
        .or_else(|| {
            bindery_bounce::report::addresses(&r.text)
                .into_iter()
                .next()
        })
        .unwrap_or_default();
    (c.mdn(&r.text).class, rcpt)
}
