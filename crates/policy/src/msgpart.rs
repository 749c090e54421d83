//! Momentum's MIME API for scripts: `msg:mime`, the `msgpart` objects it gives, and the
//! body functions of `msg` (`body`, `*_match`, `*_replace`, `text(value)`, `makePart`,
//! `makeContainer`, `makeBoundary`).
//!
//! `msg:mime(readonly)` parses the message into a tree (`mime.rs`). A tree asked for with
//! `readonly = false` writes itself back into the message after each change; changing a
//! read-only tree (the default) raises, as Momentum's does. A tree is only good while the
//! message is what it was parsed from: after `msg:header(...)` or `msg:raw(...)` an old
//! tree's change raises instead of undoing them.
//!
//! Bodies are handled as Momentum documents: `body` and `raw` without transfer decoding,
//! `text` decoded to UTF-8 (mail-parser). Replacing text re-encodes the part in its own
//! transfer encoding (base64 stays base64, quoted-printable stays quoted-printable) and
//! marks it UTF-8. Patterns are the `regex` crate's (`msys.pcre`'s), replacements take `$1`.
//! Momentum's bodies end with the SMTP end-of-data line (`CRLF.CRLF`); bindery's do not, so
//! a body a script sets has that line removed.

use std::rc::Rc;

use mlua::{Error as LuaError, Lua, UserData, UserDataFields, UserDataMethods, Value};

use crate::handles::{Msg, Shared};
use crate::mime::{self, Body, PartRef, Place};

/// The tree `msg:mime` last gave for the message in hand.
pub struct MimeCtx {
    pub root: PartRef,
    pub writable: bool,
    /// The message as the tree last wrote or read it.
    pub seen: Vec<u8>,
}

/// A `msgpart`: a node, and the message it may write back to.
pub struct Part {
    node: PartRef,
    owner: Shared,
    /// Whether it came from `msg:mime` (else from `makePart` / `makeContainer`).
    from_message: bool,
}

fn err(what: &str, e: impl std::fmt::Display) -> LuaError {
    LuaError::runtime(format!("{what}: {e}"))
}

fn regex(pattern: &str) -> Result<regex::bytes::Regex, LuaError> {
    regex::bytes::Regex::new(pattern)
        .map_err(|e| err("pattern", crate::library::compile_error(pattern, &e)))
}

/// Writes the tree `node` belongs to back into the message, if it is the message's
/// writable tree; raises otherwise.
fn changed(this: &Part, node: &PartRef, what: &str) -> Result<(), LuaError> {
    let top = mime::root(node);
    let mut call = this.owner.call.borrow_mut();
    let ours = call
        .mime
        .as_ref()
        .is_some_and(|c| Rc::ptr_eq(&c.root, &top));
    if !ours {
        if this.from_message {
            return Err(LuaError::runtime(format!(
                "{what}: this part is not in the message's tree any more (unlinked, or from an earlier msg:mime): call msg:mime again"
            )));
        }
        // A part no message holds yet (`makePart`) changes freely.
        return Ok(());
    }
    let Some(ctx) = call.mime.as_ref() else {
        return Ok(());
    };
    if !ctx.writable {
        return Err(LuaError::runtime(format!(
            "{what}: this MIME tree is read-only (ask for it with msg:mime(false) to change it)"
        )));
    }
    if call.msg.body != ctx.seen {
        return Err(LuaError::runtime(format!(
            "{what}: the message changed since msg:mime gave this tree; call msg:mime again"
        )));
    }
    let bytes = mime::serialize(&top);
    call.msg.body.clone_from(&bytes);
    if let Some(c) = call.mime.as_mut() {
        c.seen = bytes;
    }
    Ok(())
}

fn content_type(node: &PartRef, lua: &Lua) -> mlua::Result<mlua::Table> {
    let n = node.borrow();
    let ct = mime::header(&n.head, "Content-Type").unwrap_or_else(|| "text/plain".into());
    let disposition = mime::header(&n.head, "Content-Disposition").unwrap_or_default();
    let t = lua.create_table()?;
    t.set(
        "mimetype",
        ct.split(';')
            .next()
            .unwrap_or("text/plain")
            .trim()
            .to_ascii_lowercase(),
    )?;
    t.set(
        "charset",
        mime::param(&ct, "charset").unwrap_or_else(|| "us-ascii".into()),
    )?;
    t.set(
        "encoding",
        mime::header(&n.head, "Content-Transfer-Encoding")
            .map(|e| e.trim().to_ascii_lowercase())
            .unwrap_or_else(|| "7bit".into()),
    )?;
    let filename = mime::param(&disposition, "filename").or_else(|| mime::param(&ct, "name"));
    t.set("is_attachment", filename.is_some())?;
    if let Some(f) = filename {
        t.set("filename", f)?;
    }
    Ok(t)
}

/// A leaf's text, transfer-decoded to UTF-8; nil for a container or a non-text part.
fn text_of(node: &PartRef) -> Option<String> {
    let n = node.borrow();
    if matches!(n.body, Body::Multi { .. }) {
        return None;
    }
    let ct = mime::header(&n.head, "Content-Type").unwrap_or_else(|| "text/plain".into());
    if !ct.trim_start().to_ascii_lowercase().starts_with("text/") {
        return None;
    }
    drop(n);
    let raw = mime::serialize(node);
    let parsed = mail_parser::MessageParser::default().parse(&raw)?;
    parsed
        .body_text(0)
        .or_else(|| parsed.body_html(0))
        .map(|t| t.into_owned())
}

/// Sets a leaf's text: `value` in UTF-8, in the part's own transfer encoding (or
/// quoted-printable), with `mimetype` when given.
fn set_text(node: &PartRef, value: &str, mimetype: Option<&str>) {
    let mut n = node.borrow_mut();
    let cte = mime::header(&n.head, "Content-Transfer-Encoding")
        .map(|e| e.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let old_type = mime::header(&n.head, "Content-Type").unwrap_or_else(|| "text/plain".into());
    let mimetype = mimetype.map(str::to_string).unwrap_or_else(|| {
        old_type
            .split(';')
            .next()
            .unwrap_or("text/plain")
            .trim()
            .to_string()
    });
    let text = value.replace("\r\n", "\n").replace('\n', "\r\n");
    let (cte, body) = match cte.as_str() {
        "base64" => {
            use base64::Engine as _;
            let b = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
            let lines: Vec<&str> = b
                .as_bytes()
                .chunks(76)
                .map(|c| std::str::from_utf8(c).unwrap_or_default())
                .collect();
            ("base64", lines.join("\r\n") + "\r\n")
        }
        _ if text.is_ascii() && cte != "quoted-printable" => ("7bit", text),
        _ => (
            "quoted-printable",
            quoted_printable::encode_to_str(text.as_bytes()).replace("\n", "\r\n"),
        ),
    };
    mime::edit_head(&mut n, |head| {
        crate::headers::set(
            head,
            "Content-Type",
            &[format!("{mimetype}; charset=utf-8")],
            crate::headers::Mode::Replace,
        );
        crate::headers::set(
            head,
            "Content-Transfer-Encoding",
            &[cte.to_string()],
            crate::headers::Mode::Replace,
        );
    });
    n.separator = true;
    n.body = Body::Leaf(body.into_bytes());
}

/// Every match of `re` in `hay`, as strings; `false` when none.
fn matches(lua: &Lua, re: &regex::bytes::Regex, hay: &[u8]) -> mlua::Result<Value> {
    let found: Vec<mlua::LuaString> = re
        .find_iter(hay)
        .map(|m| lua.create_string(m.as_bytes()))
        .collect::<Result<_, _>>()?;
    if found.is_empty() {
        return Ok(Value::Boolean(false));
    }
    Ok(Value::Table(lua.create_sequence_from(found)?))
}

/// What `*_match` searches under `node`: its body (`body`), its bytes (`raw`) or its text
/// parts' text, one per line (`text`).
fn haystack(node: &PartRef, kind: &str) -> Vec<u8> {
    match kind {
        "body" => body_bytes(node),
        "raw" => mime::serialize(node),
        _ => text_leaves(node)
            .iter()
            .filter_map(text_of)
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes(),
    }
}

/// The text leaves under `node` (itself included).
fn text_leaves(node: &PartRef) -> Vec<PartRef> {
    let mut out = Vec::new();
    let mut at = Some(Rc::clone(node));
    let top = Rc::clone(node);
    while let Some(p) = at {
        if text_of(&p).is_some() {
            out.push(Rc::clone(&p));
        }
        at = mime::thread(&p).filter(|n| is_under(n, &top));
    }
    out
}

fn is_under(n: &PartRef, top: &PartRef) -> bool {
    let mut p = Some(Rc::clone(n));
    while let Some(x) = p {
        if Rc::ptr_eq(&x, top) {
            return true;
        }
        p = x.borrow().parent.upgrade();
    }
    false
}

/// A body as a script sets it, without Momentum's end-of-data line.
fn without_terminator(b: &[u8]) -> Vec<u8> {
    match b.strip_suffix(b"\r\n.\r\n") {
        Some(s) => [s, b"\r\n"].concat(),
        None => b.to_vec(),
    }
}

fn body_bytes(node: &PartRef) -> Vec<u8> {
    let n = node.borrow();
    match &n.body {
        Body::Leaf(b) => b.clone(),
        Body::Multi { .. } => {
            drop(n);
            let all = mime::serialize(node);
            let head = node.borrow().head.len() + if node.borrow().separator { 2 } else { 0 };
            all[head.min(all.len())..].to_vec()
        }
    }
}

/// The methods a part and a message share, over `node` (the part, or the message's top).
fn replace_in(node: &PartRef, kind: &str, re: &regex::bytes::Regex, with: &[u8]) -> bool {
    match kind {
        "body" => {
            let mut n = node.borrow_mut();
            match &mut n.body {
                Body::Leaf(b) => {
                    let new = re.replace_all(b, with).into_owned();
                    let hit = new != *b;
                    *b = new;
                    hit
                }
                Body::Multi { .. } => false,
            }
        }
        "raw" => {
            let raw = mime::serialize(node);
            let new = re.replace_all(&raw, with).into_owned();
            if new == raw {
                return false;
            }
            let fresh = mime::parse(&new);
            let mut n = node.borrow_mut();
            let mut f = fresh.borrow_mut();
            n.head = std::mem::take(&mut f.head);
            n.separator = f.separator;
            n.body = std::mem::replace(&mut f.body, Body::Leaf(Vec::new()));
            if let Body::Multi { children, .. } = &n.body {
                for c in children {
                    c.borrow_mut().parent = Rc::downgrade(node);
                }
            }
            true
        }
        _ => {
            let mut hit = false;
            for leaf in text_leaves(node) {
                let Some(text) = text_of(&leaf) else { continue };
                let new = re.replace_all(text.as_bytes(), with);
                if new.as_ref() != text.as_bytes() {
                    set_text(&leaf, &String::from_utf8_lossy(&new), None);
                    hit = true;
                }
            }
            hit
        }
    }
}

fn part(lua: &Lua, node: PartRef, owner: &Shared, from_message: bool) -> mlua::Result<Value> {
    Ok(Value::UserData(lua.create_userdata(Part {
        node,
        owner: owner.clone(),
        from_message,
    })?))
}

impl UserData for Part {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("thread", |lua, this| match mime::thread(&this.node) {
            Some(n) => part(lua, n, &this.owner, this.from_message),
            None => Ok(Value::Nil),
        });
        f.add_field_method_get("parent", |lua, this| {
            let up = this.node.borrow().parent.upgrade();
            match up {
                Some(n) => part(lua, n, &this.owner, this.from_message),
                None => Ok(Value::Nil),
            }
        });
        f.add_field_method_get("parts", |lua, this| {
            let kids = match &this.node.borrow().body {
                Body::Multi { children, .. } => children.clone(),
                Body::Leaf(_) => return Ok(Value::Nil),
            };
            let t = lua.create_table()?;
            for k in kids {
                t.push(part(lua, k, &this.owner, this.from_message)?)?;
            }
            Ok(Value::Table(t))
        });
        // Momentum's offsets of the body in its buffer: here the body is the part's own, so
        // it always runs from 0 to its length, and only that can be set.
        f.add_field_method_get("body_start", |_, _| Ok(0));
        f.add_field_method_get("body_end", |_, this| Ok(body_bytes(&this.node).len()));
        f.add_field_method_set("body_start", |_, _, v: i64| {
            if v == 0 {
                Ok(())
            } else {
                Err(LuaError::runtime(
                    "msgpart.body_start: bindery keeps each part's body whole; only 0 can be set",
                ))
            }
        });
        f.add_field_method_set("body_end", |_, this, v: i64| {
            if v as usize == body_bytes(&this.node).len() {
                Ok(())
            } else {
                Err(LuaError::runtime(
                    "msgpart.body_end: bindery keeps each part's body whole; only its length can be set",
                ))
            }
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(mlua::MetaMethod::ToString, |_, _, ()| Ok("ec_message_part"));
        m.add_method("content_type", |lua, this, ()| {
            content_type(&this.node, lua)
        });
        m.add_method("header", |lua, this, args: mlua::Variadic<Value>| {
            let name = match args.first() {
                Some(Value::String(s)) => s.to_str()?.to_string(),
                _ => return Err(LuaError::runtime("msgpart:header needs a header name")),
            };
            if args.len() == 1 {
                let values = mime::headers(&this.node.borrow().head, &name);
                return Ok(Value::Table(lua.create_sequence_from(values)?));
            }
            let mode = match args.get(2) {
                Some(Value::String(s)) => Some(s.to_str()?.to_string()),
                _ => None,
            };
            let mode = crate::headers::Mode::parse(mode.as_deref()).ok_or_else(|| {
                LuaError::runtime(
                    "msgpart:header: the mode is \"replace\", \"prepend\" or \"append\"",
                )
            })?;
            let value = match args.get(1) {
                Some(Value::Nil) | None => None,
                Some(v) => Some(
                    lua.coerce_string(v.clone())?
                        .ok_or_else(|| LuaError::runtime("msgpart:header: a value is a string"))?
                        .to_str()?
                        .to_string(),
                ),
            };
            mime::edit_head(&mut this.node.borrow_mut(), |head| match &value {
                None => {
                    crate::headers::delete(head, &name);
                }
                Some(v) => crate::headers::set(head, &name, std::slice::from_ref(v), mode),
            });
            changed(this, &this.node, "msgpart:header")?;
            Ok(Value::Boolean(true))
        });
        m.add_method(
            "text",
            |lua, this, (value, mimetype, _charset): (Option<String>, Option<String>, Option<String>)| {
                match value {
                    None => match text_of(&this.node) {
                        Some(t) => Ok(Value::String(lua.create_string(&t)?)),
                        None => Ok(Value::Nil),
                    },
                    Some(v) => {
                        if matches!(this.node.borrow().body, Body::Multi { .. }) {
                            return Err(LuaError::runtime(
                                "msgpart:text: a container has no text of its own",
                            ));
                        }
                        set_text(&this.node, &v, mimetype.as_deref());
                        changed(this, &this.node, "msgpart:text")?;
                        Ok(Value::Boolean(true))
                    }
                }
            },
        );
        for kind in ["body", "raw", "text"] {
            m.add_method(
                format!("{kind}_match"),
                move |lua, this, pattern: String| {
                    let re = regex(&pattern)?;
                    matches(lua, &re, &haystack(&this.node, kind))
                },
            );
            m.add_method(
                format!("{kind}_replace"),
                move |_, this, (pattern, with): (String, mlua::LuaString)| {
                    let re = regex(&pattern)?;
                    let hit = replace_in(&this.node, kind, &re, &with.as_bytes());
                    if hit {
                        changed(this, &this.node, &format!("msgpart:{kind}_replace"))?;
                    }
                    Ok(hit)
                },
            );
        }
        for (name, place) in [
            ("addFirstChild", Place::FirstChild),
            ("addLastChild", Place::LastChild),
            ("insertBefore", Place::Before),
            ("insertAfter", Place::After),
        ] {
            m.add_method(name, move |_, this, other: mlua::AnyUserData| {
                let child = Rc::clone(&other.borrow::<Part>()?.node);
                if !mime::link(&this.node, &child, place) {
                    return Ok(false);
                }
                changed(this, &this.node, &format!("msgpart:{name}"))?;
                Ok(true)
            });
        }
        m.add_method("unlink", |_, this, ()| {
            let parent = this.node.borrow().parent.upgrade();
            let Some(parent) = parent else {
                return Ok(false);
            };
            mime::unlink(&this.node);
            changed(this, &parent, "msgpart:unlink")?;
            Ok(true)
        });
        m.add_method(
            "address_header",
            |lua, this, (name, which): (String, Option<String>)| {
                let values = mime::headers(&this.node.borrow().head, &name);
                crate::addresses::lua_components(
                    lua,
                    &values,
                    which.as_deref(),
                    "msgpart:address_header",
                )
            },
        );
    }
}

/// `msys.core.EC_MIME_TE_*`: a part's transfer encoding for `msg:makePart`.
pub const ENCODINGS: [(&str, i64, &str); 4] = [
    ("EC_MIME_TE_7BIT", 0, "7bit"),
    ("EC_MIME_TE_8BIT", 1, "8bit"),
    ("EC_MIME_TE_BASE64", 2, "base64"),
    ("EC_MIME_TE_QUOTED_PRINTABLE", 3, "quoted-printable"),
];

/// The top part of the message in hand, parsed now.
fn top(owner: &Shared, writable: bool) -> Result<PartRef, LuaError> {
    owner.with(|c| {
        let root = mime::parse(&c.msg.body);
        c.mime = Some(MimeCtx {
            root: Rc::clone(&root),
            writable,
            seen: c.msg.body.clone(),
        });
        Ok(root)
    })
}

/// The methods of this file on `msg`.
pub fn add_methods<M: UserDataMethods<Msg>>(m: &mut M) {
    m.add_method("mime", |lua, this, readonly: Option<bool>| {
        let root = top(&this.0, readonly == Some(false))?;
        part(lua, root, &this.0, true)
    });
    m.add_method(
        "makePart",
        |lua, this, (mimetype, body, encoding): (String, Option<mlua::LuaString>, Option<i64>)| {
            let cte = match encoding {
                None => None,
                Some(e) => Some(
                    ENCODINGS
                        .iter()
                        .find(|(_, n, _)| *n == e)
                        .map(|(_, _, name)| *name)
                        .ok_or_else(|| {
                            LuaError::runtime(format!(
                                "msg:makePart: encoding {e} is not one of msys.core.EC_MIME_TE_*"
                            ))
                        })?,
                ),
            };
            let body = body.map(|b| b.as_bytes().to_vec()).unwrap_or_default();
            part(lua, mime::leaf(&mimetype, cte, body), &this.0, false)
        },
    );
    m.add_method(
        "makeContainer",
        |lua, this, (mimetype, boundary, terminator): (String, Option<String>, Option<bool>)| {
            let b = boundary.unwrap_or_else(|| mime::new_boundary(None));
            part(
                lua,
                mime::container(&mimetype, &b, terminator == Some(true)),
                &this.0,
                false,
            )
        },
    );
    m.add_method(
        "makeBoundary",
        |_, this, parts: mlua::Variadic<mlua::AnyUserData>| {
            let mut trees: Vec<PartRef> = Vec::new();
            for p in parts.iter() {
                trees.push(Rc::clone(&p.borrow::<Part>()?.node));
            }
            let mine = this.0.with(|c| Ok(mime::parse(&c.msg.body)))?;
            trees.push(mine);
            loop {
                let b = mime::new_boundary(trees.first());
                if trees.iter().all(|t| {
                    !mime::serialize(t)
                        .windows(b.len())
                        .any(|w| w == b.as_bytes())
                }) {
                    return Ok(b);
                }
            }
        },
    );
    m.add_method(
        "body",
        |lua, this, value: Option<mlua::LuaString>| match value {
            None => {
                let b = this.0.with(|c| {
                    let root = mime::parse(&c.msg.body);
                    Ok(body_bytes(&root))
                })?;
                Ok(Value::String(lua.create_string(&b)?))
            }
            Some(v) => {
                let body = without_terminator(&v.as_bytes());
                this.0.with(|c| {
                    let root = mime::parse(&c.msg.body);
                    root.borrow_mut().body = Body::Leaf(body);
                    root.borrow_mut().separator = true;
                    c.msg.body = mime::serialize(&root);
                    c.mime = None;
                    Ok(Value::Boolean(true))
                })
            }
        },
    );
    for kind in ["body", "raw", "text"] {
        m.add_method(
            format!("{kind}_match"),
            move |lua, this, pattern: String| {
                let re = regex(&pattern)?;
                // The raw message is the message as it is: no tree to build for it.
                let hay = this.0.with(|c| {
                    Ok(match kind {
                        "raw" => c.msg.body.clone(),
                        _ => haystack(&mime::parse(&c.msg.body), kind),
                    })
                })?;
                matches(lua, &re, &hay)
            },
        );
        m.add_method(
            format!("{kind}_replace"),
            move |_, this, (pattern, with): (String, mlua::LuaString)| {
                let re = regex(&pattern)?;
                let with = with.as_bytes().to_vec();
                this.0.with(|c| {
                    let root = mime::parse(&c.msg.body);
                    // Momentum's body ends with the end-of-data line: a pattern may name it.
                    let hit = if kind == "body" && !matches!(root.borrow().body, Body::Multi { .. })
                    {
                        let mut b = body_bytes(&root);
                        b.extend_from_slice(b".\r\n");
                        let new = without_terminator(&re.replace_all(&b, with.as_slice()));
                        let hit = new != body_bytes(&root);
                        root.borrow_mut().body = Body::Leaf(new);
                        hit
                    } else {
                        replace_in(&root, kind, &re, &with)
                    };
                    if hit {
                        c.msg.body = mime::serialize(&root);
                        c.mime = None;
                    }
                    Ok(hit)
                })
            },
        );
    }
}

/// `msg:text(value [, type [, charset]])`: the first text part's text replaced.
pub fn set_message_text(
    owner: &Shared,
    value: &str,
    mimetype: Option<&str>,
) -> Result<bool, LuaError> {
    owner.with(|c| {
        let root = mime::parse(&c.msg.body);
        let target = text_leaves(&root)
            .into_iter()
            .next()
            .unwrap_or_else(|| Rc::clone(&root));
        if matches!(target.borrow().body, Body::Multi { .. }) {
            return Err(LuaError::runtime(
                "msg:text: the message has no text part to set",
            ));
        }
        set_text(&target, value, mimetype);
        c.msg.body = mime::serialize(&root);
        c.mime = None;
        Ok(true)
    })
}
