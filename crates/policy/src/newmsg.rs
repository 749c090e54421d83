//! Messages a script makes: `msg:copy()`, `msys.core.ec_message_new()`, `msg:build(headers,
//! parts, attachments)` and `msg:inject(mailfrom, rcptto)`, plus the addresses a message
//! came by (`msg:reception_peer`, `msg:listener_addr`, `msg.recv_method`).
//!
//! A made message is a `msg` object of its own: a [`Call`] that is never emptied, holding a
//! copy of the message (or nothing), so every `msg` method works on it (`header`, `raw`,
//! `context_set`...). `inject` hands the message to the daemon's [`Injector`]
//! (`inject.rs`), which receives it after the callout returns.
//!
//! `msg:build` writes the MIME structure Momentum's page describes with mail-builder:
//! `multipart/alternative` of the given parts inside `multipart/mixed` when there are
//! attachments; a string attachment is a file part, a `msg` attachment a `message/rfc822`
//! part. mail-builder picks each part's transfer encoding (7bit where the text allows,
//! else quoted-printable or base64), where Momentum's page fixes one per content type: the
//! decoded content is the same. An `io_object` attachment is refused, as `io_wrapper_open`
//! is.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;
use mlua::{Error as LuaError, Lua, Table, UserDataMethods, Value};

use crate::handles::{Call, Msg, Shared};
use crate::inject::{Injected, MAX_DEPTH};
use crate::{Callout, Conn, Message};

/// A `msg` object for `message`, detached from any callout.
pub fn detached(
    lua: &Lua,
    world: &Rc<crate::config::World>,
    conn: Conn,
    message: Message,
) -> mlua::Result<Value> {
    let call = Call {
        active: true,
        phase: Callout::Data,
        conn,
        msg: message,
        rcpt: None,
        code: None,
        mime: None,
    };
    let shared = Shared {
        call: Rc::new(RefCell::new(call)),
        world: Rc::clone(world),
    };
    Ok(Value::UserData(lua.create_userdata(Msg(shared))?))
}

/// `type; k=v; k2="v 2"` as mail-builder's content type.
fn content_type(s: &str) -> ContentType<'static> {
    let mut parts = s.split(';');
    let mut ct = ContentType::new(parts.next().unwrap_or("text/plain").trim().to_string());
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            ct = ct.attribute(k.trim().to_string(), v.trim().trim_matches('"').to_string());
        }
    }
    ct
}

fn leaf(ct: &str, content: Vec<u8>) -> MimePart<'static> {
    let ctype = content_type(ct);
    match String::from_utf8(content) {
        Ok(text) if ct.trim_start().to_ascii_lowercase().starts_with("text/") => {
            MimePart::new(ctype, text)
        }
        Ok(text) => MimePart::new(ctype, text.into_bytes()),
        Err(e) => MimePart::new(ctype, e.into_bytes()),
    }
}

/// The message `msg:build` writes.
fn build(headers: Table, parts: Table, attachments: Option<Table>) -> mlua::Result<Vec<u8>> {
    let mut b = MessageBuilder::new();
    let mut names: Vec<(String, String)> = Vec::new();
    for pair in headers.pairs::<String, String>() {
        names.push(pair?);
    }
    // Lua tables have no order: a stable one makes the message reproducible.
    names.sort();
    for (k, v) in names {
        b = b.header(Cow::Owned(k), Raw::new(v));
    }
    let mut alternatives: Vec<(String, Vec<u8>)> = Vec::new();
    for pair in parts.pairs::<String, mlua::LuaString>() {
        let (ct, content) = pair?;
        alternatives.push((ct, content.as_bytes().to_vec()));
    }
    // text/plain first: the least preferred alternative comes first (RFC 2046 §5.1.4).
    alternatives.sort_by_key(|(ct, _)| {
        (
            !ct.to_ascii_lowercase().starts_with("text/plain"),
            ct.clone(),
        )
    });
    let body = match alternatives.len() {
        0 => MimePart::new(ContentType::new("text/plain"), String::new()),
        1 => {
            let (ct, c) = alternatives.remove(0);
            leaf(&ct, c).inline()
        }
        _ => MimePart::new(
            ContentType::new("multipart/alternative"),
            alternatives
                .into_iter()
                .map(|(ct, c)| leaf(&ct, c).inline())
                .collect::<Vec<_>>(),
        ),
    };
    let mut files = Vec::new();
    if let Some(list) = attachments {
        for a in list.sequence_values::<Table>() {
            let a = a?;
            let part = match a.get::<Value>("content")? {
                Value::String(s) => {
                    let ct: String = a
                        .get::<Option<String>>("type")?
                        .unwrap_or_else(|| "application/octet-stream".into());
                    let name: String = a.get::<Option<String>>("name")?.unwrap_or_default();
                    let mut p = MimePart::new(content_type(&ct), s.as_bytes().to_vec());
                    if !name.is_empty() {
                        p = p.attachment(name);
                    }
                    if let Some(extra) = a.get::<Option<String>>("headers")? {
                        for line in extra.split("\r\n").filter(|l| !l.is_empty()) {
                            if let Some((k, v)) = line.split_once(':') {
                                p = p.header(k.trim().to_string(), Raw::new(v.trim().to_string()));
                            }
                        }
                    }
                    p
                }
                Value::UserData(u) => {
                    let inner = u.borrow::<Msg>()?;
                    let bytes = inner.0.call.borrow().msg.body.clone();
                    MimePart::new(
                        ContentType::new("message/rfc822").attribute("name", "Attached Message"),
                        bytes,
                    )
                }
                other => {
                    return Err(LuaError::runtime(format!(
                        "msg:build: an attachment's content is a string or a message, not a {} (io_objects are not implemented by bindery)",
                        other.type_name()
                    )));
                }
            };
            files.push(part);
        }
    }
    let top = if files.is_empty() {
        body
    } else {
        let mut all = vec![body];
        all.extend(files);
        MimePart::new(ContentType::new("multipart/mixed"), all)
    };
    b.body(top)
        .write_to_vec()
        .map(|v| bindery_smtp::line_ends::crlf(v.as_slice()).into_owned())
        .map_err(|e| LuaError::runtime(format!("msg:build: {e}")))
}

/// `addr:port` as Momentum prints a sockaddr; the parts `flag` asks for.
pub fn addr_part(
    ip: Option<std::net::IpAddr>,
    port: u16,
    flag: Option<&str>,
) -> mlua::Result<Option<String>> {
    let Some(ip) = ip else { return Ok(None) };
    Ok(Some(match flag.unwrap_or("all") {
        "ip" => ip.to_string(),
        "port" => port.to_string(),
        "all" => format!("{ip}:{port}"),
        other => {
            return Err(LuaError::runtime(format!(
                "the flag is \"ip\", \"port\" or \"all\", not {other:?}"
            )));
        }
    }))
}

/// The methods of this file on `msg`.
pub fn add_methods<M: UserDataMethods<Msg>>(m: &mut M) {
    m.add_method("copy", |lua, this, ()| {
        let (conn, mut msg) = this.0.with(|c| {
            let mut msg = c.msg.clone();
            // A recipient's own copy: that recipient.
            if let Some(r) = &c.rcpt {
                msg.recipients = vec![r.clone()];
            }
            Ok((c.conn.clone(), msg))
        })?;
        msg.discard = None;
        detached(lua, &this.0.world, conn, msg)
    });
    m.add_method(
        "build",
        |_, this, (headers, parts, attachments): (Table, Table, Option<Table>)| {
            let body = build(headers, parts, attachments)?;
            this.0.with(|c| {
                if !c.msg.body.is_empty() {
                    return Err(LuaError::runtime(
                        "msg:build needs an empty message (made with msys.core.ec_message_new)",
                    ));
                }
                c.msg.body = body;
                Ok(true)
            })
        },
    );
    m.add_method("inject", |_, this, (from, to): (String, String)| {
        let injector = this.0.world.hosts.injector.clone().ok_or_else(|| {
            LuaError::runtime("msg:inject: no daemon to take the message (bindery policy test and config check do not inject)")
        })?;
        let recipients: Vec<String> = to
            .split(',')
            .map(|r| r.trim().trim_start_matches('<').trim_end_matches('>').to_string())
            .filter(|r| !r.is_empty())
            .collect();
        if recipients.is_empty() {
            return Err(LuaError::runtime("msg:inject: no recipient"));
        }
        let m = this.0.with(|c| {
            if c.msg.depth >= MAX_DEPTH {
                return Err(LuaError::runtime(format!(
                    "msg:inject: this message comes from {} injections in a row; refused (a script that injects from every message it sees loops)",
                    c.msg.depth
                )));
            }
            if c.msg.body.is_empty() {
                return Err(LuaError::runtime("msg:inject: the message is empty (msg:build it first)"));
            }
            Ok(Injected {
                sender: from.trim().trim_start_matches('<').trim_end_matches('>').to_string(),
                recipients,
                body: c.msg.body.clone(),
                context: c.msg.context.clone(),
                depth: c.msg.depth + 1,
            })
        })?;
        injector
            .inject(m)
            .map(|()| true)
            .map_err(|e| LuaError::runtime(format!("msg:inject: {e}")))
    });
    m.add_method("reception_peer", |_, this, flag: Option<String>| {
        this.0
            .with(|c| addr_part(c.conn.peer, c.conn.peer_port, flag.as_deref()))
    });
    m.add_method("listener_addr", |_, this, flag: Option<String>| {
        this.0.with(|c| {
            let local = c.conn.local;
            addr_part(
                local.map(|a| a.ip()),
                local.map_or(0, |a| a.port()),
                flag.as_deref(),
            )
        })
    });
}

/// `msys.core.ec_message_new`, `protocol_string`, `ec_sockaddr_family` and the `P_*` and
/// `AF_*` constants. A new message counts as injected from the message in hand (its
/// `depth`), so a script cannot loop by making a fresh one from each message.
pub fn install_core(
    lua: &Lua,
    core: &Table,
    call: &Rc<RefCell<Call>>,
    world: &Rc<crate::config::World>,
) -> mlua::Result<()> {
    use crate::inject::RecvMethod;
    for (name, m) in RecvMethod::CONSTANTS {
        core.set(name, m.number())?;
    }
    for (name, n, _) in crate::msgpart::ENCODINGS {
        core.set(name, n)?;
    }
    core.set("AF_INET", AF_INET)?;
    core.set("AF_INET6", AF_INET6)?;
    core.set(
        "protocol_string",
        lua.create_function(|_, n: i64| {
            Ok(RecvMethod::CONSTANTS
                .iter()
                .find(|(_, m)| m.number() == n)
                .map(|(_, m)| m.name()))
        })?,
    )?;
    core.set(
        "ec_sockaddr_family",
        lua.create_function(|_, v: Value| {
            let ip = match &v {
                Value::UserData(u) => Some(u.borrow::<crate::handles::SockAddr>()?.0),
                Value::String(s) => crate::cidr::parse_addr(&s.to_str()?),
                _ => None,
            };
            Ok(match ip {
                Some(std::net::IpAddr::V4(_)) => AF_INET,
                Some(std::net::IpAddr::V6(_)) => AF_INET6,
                None => 0,
            })
        })?,
    )?;
    let (call, world) = (Rc::clone(call), Rc::clone(world));
    core.set(
        "ec_message_new",
        lua.create_function(move |lua, _now: Option<Value>| {
            let (conn, depth) = {
                let c = call.borrow();
                if c.active {
                    (c.conn.clone(), c.msg.depth)
                } else {
                    (Conn::default(), 0)
                }
            };
            let msg = Message {
                recv_method: crate::inject::RecvMethod::Internal,
                depth,
                ..Message::default()
            };
            detached(lua, &world, conn, msg)
        })?,
    )?;
    Ok(())
}

/// Linux's address family numbers, which Momentum's `msys.core.AF_*` are.
const AF_INET: i64 = 2;
const AF_INET6: i64 = 10;
