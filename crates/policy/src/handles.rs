//! The objects callouts receive: `msg`, `accept` and `vctx`.
//!
//! Each Lua state creates them once. They share one [`Call`] that is filled before a
//! callout and emptied after it, so a call costs moves, not allocations. They always speak
//! of the callout running now: a script that keeps `msg` in a global and uses it later sees
//! the later message. Outside callouts (a script's top level, `init`) they refuse to work.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Error as LuaError, UserData, UserDataMethods, Value};

use crate::config::World;
use crate::headers::header_values;
use crate::{Assigned, CTX_CONN, CTX_MESS, Callout, Code, Conn, Context, Message};

/// The state of the callout running now.
pub struct Call {
    pub active: bool,
    pub phase: Callout,
    pub conn: Conn,
    pub msg: Message,
    /// The recipient `validate_rcptto` is asked about.
    pub rcpt: Option<String>,
    pub code: Option<Code>,
    /// The tree `msg:mime` gave last, which writes back into `msg`.
    pub mime: Option<crate::msgpart::MimeCtx>,
}

impl Call {
    pub fn idle() -> Call {
        Call {
            active: false,
            phase: Callout::Connect,
            conn: Conn::default(),
            msg: Message::default(),
            rcpt: None,
            code: None,
            mime: None,
        }
    }
}

#[derive(Clone)]
pub struct Shared {
    pub call: Rc<RefCell<Call>>,
    pub world: Rc<World>,
}

impl Shared {
    pub(crate) fn with<R>(
        &self,
        f: impl FnOnce(&mut Call) -> Result<R, LuaError>,
    ) -> Result<R, LuaError> {
        let mut call = self.call.borrow_mut();
        if !call.active {
            return Err(LuaError::runtime(
                "this object belongs to a callout that has returned",
            ));
        }
        f(&mut call)
    }

    fn context(call: &mut Call, kind: i64) -> Result<&mut Context, LuaError> {
        match kind {
            CTX_MESS => Ok(&mut call.msg.context),
            CTX_CONN => Ok(&mut call.conn.context),
            other => Err(LuaError::runtime(format!(
                "unknown context type {other}: use msys.core.ECMESS_CTX_MESS or ECMESS_CTX_CONN"
            ))),
        }
    }
}

/// Turns `(code, text)` from a script into a reply; the text gets an enhanced status code
/// when it has none.
pub fn make_code(code: i64, text: Option<String>) -> Result<Code, LuaError> {
    if !(200..=599).contains(&code) {
        return Err(LuaError::runtime(format!(
            "SMTP code {code} is not between 200 and 599"
        )));
    }
    let code = code as u16;
    let text = text.unwrap_or_default();
    let has_status = text.split(' ').next().is_some_and(|w| {
        w.split('.').count() == 3 && w.split('.').all(|p| p.parse::<u16>().is_ok())
    });
    let text = if has_status {
        text
    } else {
        let status = match code / 100 {
            2 | 3 => "2.0.0".to_string(),
            c => format!("{c}.7.1"),
        };
        let body = if text.is_empty() {
            "Rejected by policy"
        } else {
            &text
        };
        format!("{status} {body}")
    };
    Ok(Code { code, text })
}

fn context_methods<M: UserDataMethods<T>, T: AsRef<Shared>>(m: &mut M, get: &str, set: &str) {
    m.add_method(get, |_, this, (kind, key): (i64, String)| {
        this.as_ref()
            .with(|c| Ok(Shared::context(c, kind)?.get(&key).cloned()))
    });
    m.add_method(
        set,
        |lua, this, (kind, key, value): (i64, String, Value)| {
            let value = match value {
                Value::Nil => None,
                v => Some(
                    lua.coerce_string(v)?
                        .ok_or_else(|| LuaError::runtime("context values are strings or numbers"))?
                        .to_str()?
                        .to_string(),
                ),
            };
            this.as_ref().with(|c| {
                let ctx = Shared::context(c, kind)?;
                match value {
                    Some(v) => ctx.insert(key, v),
                    None => ctx.remove(&key),
                };
                Ok(())
            })
        },
    );
}

fn set_code(c: &mut Call, code: i64, text: Option<String>) -> Result<(), LuaError> {
    if matches!(
        c.phase,
        Callout::LogDelivery | Callout::LogTransient | Callout::LogPermanent | Callout::PreRequeue
    ) {
        // In a log callout the code is the outcome's reply, which a script may rewrite as
        // it is: no enhanced status is added.
        let code = u16::try_from(code)
            .ok()
            .filter(|c| (200..=599).contains(c))
            .ok_or_else(|| {
                LuaError::runtime(format!("SMTP code {code} is not between 200 and 599"))
            })?;
        c.code = Some(Code {
            code,
            text: text.unwrap_or_default(),
        });
        return Ok(());
    }
    if c.phase == Callout::SetBinding {
        return Err(LuaError::runtime(
            "a code cannot be set in validate_set_binding (Momentum forbids it)",
        ));
    }
    c.code = Some(make_code(code, text)?);
    Ok(())
}

/// `msg`: the message being received.
pub struct Msg(pub Shared);
/// `accept`: the connection.
pub struct Accept(pub Shared);
/// `vctx`: the validation context.
pub struct Vctx(pub Shared);

impl AsRef<Shared> for Msg {
    fn as_ref(&self) -> &Shared {
        &self.0
    }
}
impl AsRef<Shared> for Vctx {
    fn as_ref(&self) -> &Shared {
        &self.0
    }
}

impl UserData for Msg {
    fn add_fields<F: mlua::UserDataFields<Self>>(f: &mut F) {
        // msg.id: the message's spool id; msg.conn_id: its session's.
        f.add_field_method_get("id", |_, this| this.0.with(|c| Ok(c.msg.id.clone())));
        f.add_field_method_get("conn_id", |_, this| this.0.with(|c| Ok(c.conn.id.clone())));
        f.add_field_method_get("recv_method", |_, this| {
            this.0.with(|c| Ok(c.msg.recv_method.number()))
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        // Printed (print, msys.dumper) by their type, not their address: logs and golden
        // files stay the same from run to run.
        m.add_meta_method(mlua::MetaMethod::ToString, |_, _, ()| Ok("ec_message"));
        crate::newmsg::add_methods(m);
        crate::addresses::add_methods(m);
        crate::msgpart::add_methods(m);
        m.add_method("binding", |_, this, name: Option<String>| {
            this.0.with(|c| {
                let Some(name) = name else {
                    return Ok(c.msg.binding.as_ref().map(|a| a.binding.clone()));
                };
                let found = this.0.world.find(|s| s.binding_id(&name));
                Ok(found.map(|(view, b)| {
                    c.msg.binding = Some(Assigned::of(&view.snapshot, b));
                    name
                }))
            })
        });
        m.add_method("binding_group", |_, this, name: Option<String>| {
            this.0.with(|c| {
                let Some(name) = name else {
                    return Ok(c.msg.binding.as_ref().map(|a| a.group.clone()));
                };
                let Some((view, g)) = this.0.world.find(|s| s.group_id(&name)) else {
                    return Ok(None);
                };
                let held = match &this.0.world.hosts.adaptive {
                    Some(live) => crate::choose::held_bindings(
                        live,
                        c.msg.recipients.iter().map(|r| crate::choose::domain_of(r)),
                        crate::unix_now(),
                    ),
                    None => Default::default(),
                };
                c.msg.binding = view
                    .bindings
                    .pick_avoiding(
                        g,
                        |n| fastrand::usize(..n),
                        |b| !held.is_empty() && held.contains(view.snapshot.binding_name(b)),
                    )
                    .map(|b| Assigned::of(&view.snapshot, b));
                Ok(Some(name))
            })
        });
        // Momentum's msg:header(name [, value [, mode]]): get (a table of values), delete
        // (value ""), or set (`replace`, the default, `prepend`, `append`; a table of
        // values sets one field each).
        m.add_method(
            "header",
            |lua, this, (name, value, mode): (String, Option<Value>, Option<String>)| {
                let Some(value) = value else {
                    let values = this.0.with(|c| Ok(header_values(&c.msg.body, &name)))?;
                    return Ok(Value::Table(lua.create_sequence_from(values)?));
                };
                let text = |v: Value| -> Result<String, LuaError> {
                    match v {
                        Value::String(s) => Ok(s.to_str()?.to_string()),
                        Value::Integer(_) | Value::Number(_) => Ok(lua
                            .coerce_string(v)?
                            .map(|s| s.to_string_lossy())
                            .unwrap_or_default()),
                        other => Err(LuaError::runtime(format!(
                            "msg:header: a header value must be a string, got {}",
                            other.type_name()
                        ))),
                    }
                };
                let values: Vec<String> = match value {
                    Value::Table(t) => t
                        .sequence_values::<Value>()
                        .map(|v| text(v?))
                        .collect::<Result<_, _>>()?,
                    v => vec![text(v)?],
                };
                let mode = crate::headers::Mode::parse(mode.as_deref()).ok_or_else(|| {
                    LuaError::runtime(
                        "msg:header: the mode is \"replace\", \"prepend\" or \"append\"",
                    )
                })?;
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                    return Err(LuaError::runtime(format!(
                        "msg:header: {name:?} is not a header field name"
                    )));
                }
                this.0.with(|c| {
                    if values.len() == 1 && values[0].is_empty() {
                        crate::headers::delete(&mut c.msg.body, &name);
                    } else {
                        crate::headers::set(&mut c.msg.body, &name, &values, mode);
                    }
                    Ok(Value::Boolean(true))
                })
            },
        );
        m.add_method("mailfrom", |_, this, ()| {
            this.0.with(|c| Ok(c.msg.sender.clone()))
        });
        m.add_method("rcptto", |_, this, ()| {
            this.0
                .with(|c| Ok(c.rcpt.clone().or_else(|| c.msg.recipients.first().cloned())))
        });
        m.add_method("code", |_, this, (code, text): (i64, Option<String>)| {
            this.0.with(|c| set_code(c, code, text))
        });
        context_methods(m, "context_get_or_nil", "context_set");
        // Momentum: context_get "returns an empty string if the key does not exist".
        m.add_method("context_get", |_, this, (kind, key): (i64, String)| {
            this.0.with(|c| {
                Ok(Shared::context(c, kind)?
                    .get(&key)
                    .cloned()
                    .unwrap_or_default())
            })
        });
        m.add_method("context_exists", |_, this, (kind, key): (i64, String)| {
            this.0
                .with(|c| Ok(i64::from(Shared::context(c, kind)?.contains_key(&key))))
        });
        m.add_method(
            "context_exists_and_get",
            |_, this, (kind, key): (i64, String)| {
                this.0.with(|c| {
                    Ok(match Shared::context(c, kind)?.get(&key) {
                        Some(v) => (1i64, Some(v.clone())),
                        None => (0, None),
                    })
                })
            },
        );
        m.add_method("context_delete", |_, this, (kind, key): (i64, String)| {
            this.0.with(|c| {
                Shared::context(c, kind)?.remove(&key);
                Ok(())
            })
        });
        // Momentum's msg:code() and the older get_code/set_code: the reply set so far, as
        // "CODE TEXT", or nil.
        m.add_method("get_code", |_, this, ()| {
            this.0
                .with(|c| Ok(c.code.as_ref().map(|k| format!("{} {}", k.code, k.text))))
        });
        m.add_method(
            "set_code",
            |_, this, (code, text): (i64, Option<String>)| this.0.with(|c| set_code(c, code, text)),
        );
        // msg:discard([reason]): Momentum's reason must start with an SMTP code, else it
        // becomes "550 5.7.1 [internal] discarded by policy".
        m.add_method("discard", |_, this, reason: Option<String>| {
            this.0.with(|c| {
                if c.phase == Callout::SetBinding {
                    return Err(LuaError::runtime(
                        "msg:discard cannot be called in validate_set_binding (Momentum forbids it)",
                    ));
                }
                let code = match reason.as_deref().map(str::trim) {
                    None | Some("") => crate::discard_code(),
                    Some(r) => match r.split_once(' ') {
                        Some((n, text)) if n.len() == 3 && n.parse::<u16>().is_ok() => {
                            make_code(i64::from(n.parse::<u16>().unwrap_or(550)), Some(text.into()))?
                        }
                        _ => Code {
                            code: 550,
                            text: "5.7.1 [internal] discarded by policy".into(),
                        },
                    },
                };
                c.msg.discard = Some(code);
                Ok(())
            })
        });
        // msg:routing_domain([domain]): the domain whose route the message takes (its
        // recipient's, lower case, until a script sets one).
        m.add_method("routing_domain", |_, this, domain: Option<String>| {
            this.0.with(|c| match domain {
                Some(d) => {
                    let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
                    if d.is_empty() || d.contains(['@', ' ']) {
                        return Err(LuaError::runtime(format!(
                            "msg:routing_domain: {d:?} is not a domain"
                        )));
                    }
                    c.msg.routing_domain = Some(d.clone());
                    Ok(Some(d))
                }
                None => Ok(c.msg.routing_domain.clone().or_else(|| {
                    let r = c.rcpt.as_ref().or_else(|| c.msg.recipients.first())?;
                    Some(r.rsplit_once('@')?.1.to_ascii_lowercase())
                })),
            })
        });
        // msg:text(): the text parts of the body, transfer-decoded to UTF-8 (mail-parser):
        // one string, or a table of them when there are several. msg:text(value [, type
        // [, charset]]) replaces the first text part's text (`msgpart.rs`).
        m.add_method(
            "text",
            |lua, this, (value, mimetype): (Option<String>, Option<String>)| {
                if let Some(v) = value {
                    return crate::msgpart::set_message_text(&this.0, &v, mimetype.as_deref())
                        .map(Value::Boolean);
                }
                let texts: Vec<String> = this.0.with(|c| {
                    let Some(parsed) = mail_parser::MessageParser::default().parse(&c.msg.body)
                    else {
                        return Ok(Vec::new());
                    };
                    Ok((0..parsed.text_body_count())
                        .filter_map(|i| parsed.body_text(i).map(|t| t.into_owned()))
                        .collect())
                })?;
                match texts.len() {
                    0 => Ok(Value::Nil),
                    1 => Ok(Value::String(lua.create_string(&texts[0])?)),
                    _ => Ok(Value::Table(lua.create_sequence_from(texts)?)),
                }
            },
        );
        m.add_method("get_message_size", |_, this, ()| {
            this.0.with(|c| Ok(c.msg.body.len() as i64))
        });
        // msg:raw(): the whole message and its length; msg:raw(text) replaces it.
        m.add_method("raw", |lua, this, value: Option<mlua::LuaString>| {
            this.0.with(|c| match value {
                Some(v) => {
                    c.msg.body = v.as_bytes().to_vec();
                    Ok((Value::Boolean(true), Value::Nil))
                }
                None => Ok((
                    Value::String(lua.create_string(&c.msg.body)?),
                    Value::Number(c.msg.body.len() as f64),
                )),
            })
        });
        // msg:get_envelope2(flags, localpart, domain): the sender's or the recipient's
        // address split into two `msys.core.string_new()` buffers (the whole address in the
        // first with EC_MSG_ENV_COMPLETE).
        m.add_method(
            "get_envelope2",
            |_, this, (flags, local, domain): (i64, mlua::Table, Option<mlua::Table>)| {
                let address = this.0.with(|c| {
                    Ok(match flags & (ENV_FROM | ENV_TO) {
                        ENV_FROM => c.msg.sender.clone(),
                        ENV_TO => c
                            .rcpt
                            .clone()
                            .or_else(|| c.msg.recipients.first().cloned())
                            .unwrap_or_default(),
                        _ => {
                            return Err(LuaError::runtime(
                                "msg:get_envelope2: flags take one of msys.core.EC_MSG_ENV_FROM and EC_MSG_ENV_TO",
                            ));
                        }
                    })
                })?;
                if flags & ENV_COMPLETE != 0 {
                    local.set("buffer", address)?;
                    return Ok(());
                }
                let (l, d) = address.rsplit_once('@').unwrap_or((&address, ""));
                local.set("buffer", l)?;
                if let Some(domain) = domain {
                    domain.set("buffer", d)?;
                }
                Ok(())
            },
        );
    }
}

/// A socket address as Momentum gives one to scripts (`accept.remote_addr`): `tostring`
/// prints `ip:port` for IPv4 and `ip.port` for IPv6, the forms the sample policy's
/// `ip_from_addr_and_port` splits (at `:` and at `.`); `msys.core.ec_sockaddr_family`
/// tells them apart.
#[derive(Clone, Copy, Debug)]
pub struct SockAddr(pub std::net::IpAddr, pub u16);

impl std::fmt::Display for SockAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            std::net::IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            std::net::IpAddr::V6(a) => write!(f, "{a}.{}", self.1),
        }
    }
}

impl UserData for SockAddr {
    fn add_fields<F: mlua::UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("ip", |_, this| Ok(this.0.to_string()));
        f.add_field_method_get("port", |_, this| Ok(this.1));
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(mlua::MetaMethod::ToString, |_, this, ()| {
            Ok(this.to_string())
        });
        m.add_meta_function(mlua::MetaMethod::Concat, |lua, (a, b): (Value, Value)| {
            let text = |v: Value| -> mlua::Result<String> {
                match v {
                    Value::UserData(u) => Ok(u.borrow::<SockAddr>()?.to_string()),
                    other => Ok(lua
                        .coerce_string(other)?
                        .map(|s| s.to_string_lossy())
                        .unwrap_or_default()),
                }
            };
            Ok(text(a)? + &text(b)?)
        });
        m.add_meta_method(mlua::MetaMethod::Eq, |_, this, other: mlua::AnyUserData| {
            let o = other.borrow::<SockAddr>()?;
            Ok(this.0 == o.0 && this.1 == o.1)
        });
    }
}

/// `msys.core.EC_MSG_ENV_*`: which address `msg:get_envelope2` reads, and whether whole.
pub const ENV_FROM: i64 = 1;
pub const ENV_TO: i64 = 2;
pub const ENV_COMPLETE: i64 = 4;

/// The addresses a `vctx` recipient call was given: one string, or a table of them.
fn addresses(v: Value) -> Result<Vec<String>, LuaError> {
    match v {
        Value::String(s) => Ok(vec![s.to_str()?.to_string()]),
        // A list from recipient_list starts at 0; one a script made, at 1.
        Value::Table(t) => {
            let first = t.raw_get::<Option<mlua::LuaString>>(0)?;
            first
                .into_iter()
                .map(Ok)
                .chain(t.sequence_values::<mlua::LuaString>())
                .map(|s| Ok(s?.to_str()?.to_string()))
                .collect()
        }
        other => Err(LuaError::runtime(format!(
            "an address is a string, or a table of strings, not a {}",
            other.type_name()
        ))),
    }
}

/// Recipient changes belong to the message as a whole: in a recipient's own copy they
/// would silently apply to nobody.
fn whole_message(c: &Call, what: &str) -> Result<(), LuaError> {
    if Callout::EACH_RCPT.contains(&c.phase)
        || matches!(
            c.phase,
            Callout::RcptTo | Callout::RcptToList | Callout::RcptToListFinal
        )
    {
        return Err(LuaError::runtime(format!(
            "vctx:{what} changes the message's recipients: call it in validate_data or validate_data_spool, not in {}",
            c.phase.name()
        )));
    }
    Ok(())
}

/// Momentum's tarpit has no ceiling; bindery's is the longest a client could be kept
/// waiting for one reply without its own timeout (RFC 5321 §4.5.3.2: 5 minutes) firing.
const MAX_TARPIT: f64 = 300.0;

impl UserData for Vctx {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(mlua::MetaMethod::ToString, |_, _, ()| {
            Ok("validate_context")
        });
        context_methods(m, "get", "set");
        // vctx:disconnect(code, message): the reply, then the session closes.
        m.add_method(
            "disconnect",
            |_, this, (code, text): (Value, Option<String>)| {
                let code = match code {
                    Value::Integer(i) => i,
                    Value::Number(n) => n as i64,
                    Value::String(s) => s.to_str()?.trim().parse().unwrap_or(421),
                    _ => 421,
                };
                this.0.with(|c| {
                    c.code = Some(make_code(code, text)?);
                    c.conn.disconnect = true;
                    Ok(())
                })
            },
        );
        m.add_method("tarpit", |_, this, seconds: f64| {
            this.0.with(|c| {
                let s = seconds.clamp(0.0, MAX_TARPIT);
                c.conn.tarpit = Some(std::time::Duration::from_secs_f64(s));
                Ok(())
            })
        });
        m.add_method("exists", |_, this, (kind, key): (i64, String)| {
            this.0
                .with(|c| Ok(Shared::context(c, kind)?.contains_key(&key)))
        });
        // vctx:recipient_list(): numbered from 0, as Momentum's C array is (its page loops
        // `for i=0,#tbl`; `#tbl` is then the last index, and ipairs skips the first).
        m.add_method("recipient_list", |lua, this, list: Option<Value>| {
            this.0.with(|c| match list {
                None => {
                    let t = lua.create_table_with_capacity(c.msg.recipients.len(), 1)?;
                    for (i, r) in c.msg.recipients.iter().enumerate() {
                        t.raw_set(i, r.as_str())?;
                    }
                    Ok(Value::Table(t))
                }
                Some(v) => {
                    whole_message(c, "recipient_list")?;
                    c.msg.recipients = addresses(v)?;
                    Ok(Value::Boolean(true))
                }
            })
        });
        m.add_method("add_recipient", |_, this, v: Value| {
            let add = addresses(v)?;
            this.0.with(|c| {
                whole_message(c, "add_recipient")?;
                for a in add {
                    if !c.msg.recipients.contains(&a) {
                        c.msg.recipients.push(a);
                    }
                }
                Ok(true)
            })
        });
        m.add_method("remove_recipient", |_, this, v: Value| {
            let gone = addresses(v)?;
            this.0.with(|c| {
                whole_message(c, "remove_recipient")?;
                c.msg.recipients.retain(|r| !gone.contains(r));
                Ok(true)
            })
        });
        m.add_method(
            "set_code",
            |_, this, (code, text): (i64, Option<String>)| this.0.with(|c| set_code(c, code, text)),
        );
    }
}

impl UserData for Accept {
    fn add_fields<F: mlua::UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("remote_addr", |_, this| {
            this.0
                .with(|c| Ok(c.conn.peer.map(|ip| SockAddr(ip, c.conn.peer_port))))
        });
        f.add_field_method_get("conn_id", |_, this| this.0.with(|c| Ok(c.conn.id.clone())));
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(mlua::MetaMethod::ToString, |_, _, ()| {
            Ok("accept_construct")
        });
        // ac:inbound_session_count([cidr [, service]]): sessions open now from `cidr`
        // (default: this client's address) on this listener.
        m.add_method(
            "inbound_session_count",
            |_, this, (cidr, service): (Option<String>, Option<String>)| {
                let (peer, listener) = this
                    .0
                    .with(|c| Ok((c.conn.peer, c.conn.listener.clone())))?;
                let live = this.0.world.hosts.sessions.clone();
                crate::inject::session_count(
                    live.as_deref(),
                    cidr.as_deref().unwrap_or("/32"),
                    service.as_deref().unwrap_or("SMTP"),
                    peer,
                    Some(&listener),
                )
                .map_err(|e| LuaError::runtime(format!("ac:inbound_session_count: {e}")))
            },
        );
        m.add_method("esmtp_capability_add", |_, this, name: String| {
            this.0.with(|c| {
                c.conn.capabilities.push(name);
                Ok(())
            })
        });
        m.add_method("peer", |_, this, ()| {
            this.0.with(|c| Ok(c.conn.peer.map(|p| p.to_string())))
        });
        m.add_method("listener", |_, this, ()| {
            this.0.with(|c| Ok(c.conn.listener.clone()))
        });
        m.add_method("ehlo", |_, this, ()| {
            this.0.with(|c| Ok(c.conn.ehlo.clone()))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_get_an_enhanced_status() {
        let c = make_code(550, Some("no thanks".into())).unwrap();
        assert_eq!(c.text, "5.7.1 no thanks");
        let c = make_code(451, Some("4.4.5 busy".into())).unwrap();
        assert_eq!(c.text, "4.4.5 busy");
        assert_eq!(
            make_code(554, None).unwrap().text,
            "5.7.1 Rejected by policy"
        );
        assert!(make_code(99, None).is_err());
        assert!(make_code(600, None).is_err());
    }
}
