//! One inbound connection: the only code that reads and writes a client socket. It feeds the
//! sans-IO session and does what the session's steps ask (write, policy check, spool, TLS,
//! close).
//!
//! Policy callouts run right here, synchronously, on this worker thread's own Lua state:
//! nothing is awaited and no lock is held while Lua runs (see `bindery-policy`).

use std::sync::Arc;
use std::time::Duration;

use bindery_policy::{Code, Conn, Message, Policy};
use bindery_smtp::session::Check;
use bindery_smtp::{Reply, Session, Step};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_rustls::TlsAcceptor;

use crate::reception::{Place, receive};
use crate::settings::{Inbound, ListenerPlan};
use crate::spill::{SPILL_AT, Spill};
use crate::{Generation, Shared};
use bindery_delivery::stream::Stream;

/// How long a message already in DATA may take to finish once shutdown began.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// The TLS handshake must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a reply being written may still take once shutdown began.
const SHUTDOWN_WRITE_GRACE: Duration = Duration::from_secs(2);

/// Writes what the session has to say, by `until`. A client that pipelines commands and never
/// reads the replies fills its receive window and blocks this write; without a deadline it
/// would hold its slot (and stop a shutdown) for as long as it likes. Once shutdown began a
/// write gets at most [`SHUTDOWN_WRITE_GRACE`].
async fn flush(
    stream: &mut Stream,
    session: &mut Session,
    until: Instant,
    shutdown: &watch::Receiver<bool>,
) -> std::io::Result<()> {
    if session.output().is_empty() {
        return Ok(());
    }
    // A clone, so that looking at the signal here leaves it unseen for the read loop's
    // `changed()`.
    let mut shutdown = shutdown.clone();
    let stopping = async {
        if shutdown.wait_for(|stop| *stop).await.is_err() {
            // The daemon is going away without a signal: the deadline still holds.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(SHUTDOWN_WRITE_GRACE).await;
    };
    let stuck = || std::io::Error::new(std::io::ErrorKind::TimedOut, "client does not read");
    tokio::select! {
        biased;
        w = timeout_at(until, stream.write_all(session.output())) => w.map_err(|_| stuck())??,
        _ = stopping => return Err(stuck()),
    }
    session.clear_output();
    Ok(())
}

pub async fn serve(
    shared: Arc<Shared>,
    generation: Arc<Generation>,
    plan: Arc<ListenerPlan>,
    tcp: TcpStream,
    peer: std::net::IpAddr,
    inbound: Inbound,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let _ = tcp.set_nodelay(true);
    shared
        .inbound
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let _open = OpenSession(&shared);
    let logged = SessionLog::new(&shared, &generation, &tcp, peer);
    let mut session = Session::new(Arc::clone(&inbound.session), peer);
    session.set_auth_seed(fastrand::u64(..));
    // `Use_SSL`: the handshake comes first; the greeting goes out encrypted.
    let mut conn = Conn::new(peer, &plan.name, &inbound.context);
    // Momentum's `can_relay` context key: this client may relay (Relay_Hosts, Open_Relay),
    // what the opendkim module's `sign_condition = "can_relay"` asks.
    if inbound.session.relay_client {
        conn.context.insert("can_relay".into(), "true".into());
    }
    // The client's port where the address is the socket's (behind a PROXY header it is
    // the original client's, whose port is not known here).
    conn.peer_port = tcp
        .peer_addr()
        .ok()
        .filter(|a| a.ip() == peer)
        .map_or(0, |a| a.port());
    conn.local = tcp.local_addr().ok();
    let _counted = shared.peers.enter(&plan.name, peer);
    generation.audit(crate::audit::Event::Connection, peer);
    // The session's id: the one Momentum's logs give it, else a fresh one.
    conn.id = match &logged {
        Some(l) => l.conn.clone(),
        None => shared.ids.next(crate::unix_now()),
    };
    // `validate_dealloc` when the session ends, however it ends; no copy of the connection
    // for a policy without it.
    let _dealloc = generation
        .policy
        .has(bindery_policy::Callout::Dealloc)
        .then(|| Dealloc(generation.policy.clone(), conn.clone()));
    let mut stream = if plan.use_ssl {
        let Some(cfg) = inbound.tls.as_ref() else {
            return Ok(());
        };
        let Some(tls) = handshake(cfg, tcp, peer).await else {
            return Ok(());
        };
        tls_started(tls, &mut session, &mut conn)
    } else {
        Stream::Plain(tcp)
    };
    // The transaction as the policy sees it; a new one starts at every MAIL check.
    let mut msg = Message::default();
    let deadline = Instant::now() + inbound.lifetime;
    let mut grace: Option<Instant> = None;
    let mut buf = vec![0u8; 16 * 1024];
    // What was written to the spool so far of a large message (see `spill.rs`).
    let mut spill: Option<Spill> = None;
    loop {
        let step = session.step();
        if let Some(log) = &logged {
            log.write(&mut session);
        }
        let write_by = deadline.min(Instant::now() + inbound.idle);
        flush(&mut stream, &mut session, write_by, &shutdown).await?;
        match step {
            Step::NeedInput => {
                if spill.as_ref().is_some_and(|s| !s.is_current(&session)) {
                    // That message was refused at its end; what was written goes.
                    spill = None;
                }
                if let Some(bytes) = session.take_data(SPILL_AT) {
                    match &mut spill {
                        Some(s) => s.write(bytes).await,
                        None => {
                            let by = &inbound.received_hostname;
                            let s = Spill::start(&shared, &session, peer, by, bytes);
                            spill = Some(s.await);
                        }
                    }
                }
                let until = grace.map_or(deadline, |g| g.min(deadline));
                let read = tokio::select! {
                    r = timeout_at(until.min(Instant::now() + inbound.idle), stream.read(&mut buf)) => r,
                    _ = shutdown.changed(), if grace.is_none() => {
                        if session.in_data() {
                            // Let the message finish; it gets its reply.
                            grace = Some(Instant::now() + SHUTDOWN_GRACE);
                            continue;
                        }
                        session.shutdown();
                        continue;
                    }
                };
                match read {
                    Ok(Ok(0)) => break,
                    Ok(Ok(n)) => session.input(&buf[..n]),
                    Ok(Err(e)) => return Err(e),
                    Err(_) if grace.is_some() => session.shutdown(),
                    Err(_) => session.timeout(),
                }
            }
            Step::Check(Check::Rcpt(to))
                if generation.globals.blackhole_inline
                    && matches!(&to.domain, Some(bindery_smtp::address::Domain::Name(d))
                        if crate::settings::blackholed_at_rcpt(&generation.snapshot, d)) =>
            {
                // `Blackhole = inline`: the recipient fails here, permanently, with the
                // reply Momentum documents for it (responses-by-code).
                shared.stats.reject(551);
                generation.audit(crate::audit::Event::Rejection, peer);
                session.verdict(Some(Reply::new(551, "5.7.1", "recipient blackholed")));
            }
            Step::Check(check) => {
                let code = ask(&generation.policy, &mut conn, &mut msg, check);
                if let Some(c) = code.as_ref().filter(|c| c.code >= 400) {
                    shared.stats.reject(c.code);
                    generation.audit(crate::audit::Event::Rejection, peer);
                }
                policy_effects(&mut conn, &mut session).await;
                if std::mem::take(&mut conn.disconnect) {
                    let reply = code.map(code_reply).unwrap_or_else(policy_disconnect);
                    session.disconnect(reply, "scriptlet");
                } else {
                    session.verdict(code.map(code_reply));
                }
            }
            Step::Message(t) => {
                let written = spill.take();
                let login = t.auth_user.clone().map(|u| (u, t.recipients.len() as u64));
                let mut refused_by = "esmtp";
                let mut discarded = None;
                let reply = receive(
                    &shared,
                    &generation,
                    t,
                    written,
                    Place {
                        listener: &plan.name,
                        received_by: &inbound.received_hostname,
                        session: logged.as_ref().map_or("", |l| &l.conn),
                        refused_by: &mut refused_by,
                        discarded: &mut discarded,
                    },
                    &mut conn,
                    &mut msg,
                )
                .await;
                if reply.code >= 400 {
                    shared.stats.reject(reply.code);
                    generation.audit(crate::audit::Event::Rejection, peer);
                } else if discarded.is_none() {
                    generation.audit(crate::audit::Event::Reception, peer);
                    if let Some((user, rcpts)) = &login {
                        use bindery_control::injections::Via;
                        shared.injections.message(Via::Smtp, user, *rcpts, 0);
                    }
                }
                msg = Message::default();
                policy_effects(&mut conn, &mut session).await;
                match discarded {
                    Some(reason) => session.message_discarded(reply, &reason, refused_by),
                    None if std::mem::take(&mut conn.disconnect) => {
                        session.disconnect(reply, "scriptlet")
                    }
                    None => session.message_done_by(reply, refused_by),
                }
                if grace.is_some() && !session.in_data() {
                    session.shutdown();
                }
            }
            Step::StartTls => {
                let Some(cfg) = inbound.tls.as_ref() else {
                    break;
                };
                let Stream::Plain(tcp) = stream else { break };
                let Some(tls) = handshake(cfg, tcp, peer).await else {
                    return Ok(());
                };
                stream = tls_started(tls, &mut session, &mut conn);
            }
            Step::Auth(login) => {
                let verdict = match &inbound.auth {
                    Some(auth) => {
                        let offer = &inbound.session.auth;
                        crate::smtp_auth::check(&shared, auth, offer, &plan.name, peer, &login)
                            .await
                    }
                    None => bindery_smtp::session::AuthVerdict::Unavailable,
                };
                crate::smtp_auth::context(&mut conn, &login, &verdict);
                session.auth_done(verdict);
            }
            Step::Close => break,
        }
    }
    let _ = timeout(SHUTDOWN_WRITE_GRACE, stream.shutdown()).await;
    Ok(())
}

/// A finished handshake: the stream, and whether the client's certificate verified against
/// the listener's `TLS_Client_CA`.
struct Handshake {
    stream: Stream,
    verified: bool,
    cipher: Option<String>,
}

/// TLS is up: the session learns it (and whether the client's certificate verified, for
/// `TLS_Verified_Peer_Can_Relay`), and the policy's connection context gets Momentum's
/// `tls`, `tls_cipher` and `tls_client_verified` variables.
fn tls_started(h: Handshake, session: &mut Session, conn: &mut Conn) -> Stream {
    session.tls_started_verified(h.verified);
    conn.context.insert("tls".into(), "on".into());
    if let Some(c) = h.cipher {
        conn.context.insert("tls_cipher".into(), c);
    }
    if h.verified {
        conn.context
            .insert("tls_client_verified".into(), "yes".into());
    } else {
        conn.context.remove("tls_client_verified");
    }
    h.stream
}

/// The server side of a TLS handshake, for `Use_SSL` before the greeting
/// and for STARTTLS after it; `None` when it failed or took longer than
/// `HANDSHAKE_TIMEOUT` (the session then ends without a reply: there is no
/// channel left to send one on).
async fn handshake(
    cfg: &crate::tls::ServerTls,
    tcp: TcpStream,
    peer: std::net::IpAddr,
) -> Option<Handshake> {
    let accept = TlsAcceptor::from(Arc::clone(&cfg.config)).accept(tcp);
    match timeout(HANDSHAKE_TIMEOUT, accept).await {
        Ok(Ok(tls)) => {
            let (_, server) = tls.get_ref();
            let verified = match (&cfg.client_certs, server.peer_certificates()) {
                (Some(judge), Some(chain)) => judge.verified(chain),
                _ => false,
            };
            let cipher = server
                .negotiated_cipher_suite()
                .and_then(|c| c.suite().as_str())
                .map(str::to_string);
            tracing::debug!(%peer, verified, "TLS started");
            Some(Handshake {
                stream: Stream::Tls(Box::new(tokio_rustls::TlsStream::Server(tls))),
                verified,
                cipher,
            })
        }
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// What Momentum's logs need of a session: its id (the mainlog's connection field) and
/// the rejectlog's endpoints. `None` when no `ec_logger` is configured.
struct SessionLog {
    logs: Arc<bindery_delivery::eclog::EcLogs>,
    conn: String,
    remote: String,
    local: String,
    binding: String,
    binding_group: String,
}

impl SessionLog {
    fn new(
        shared: &Shared,
        g: &Generation,
        tcp: &TcpStream,
        peer: std::net::IpAddr,
    ) -> Option<SessionLog> {
        if shared.eclogs.is_empty() {
            return None;
        }
        // Behind a PROXY header the client's port is not the socket's: the address alone.
        let remote = match tcp.peer_addr() {
            Ok(a) if a.ip() == peer => a.to_string(),
            _ => peer.to_string(),
        };
        Some(SessionLog {
            logs: Arc::clone(&shared.eclogs),
            conn: shared.ids.next(crate::unix_now()),
            remote,
            local: tcp.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            binding: g.globals.binding.clone(),
            binding_group: g.globals.binding_group.clone(),
        })
    }

    /// Writes the refusals the session made since the last call.
    fn write(&self, session: &mut Session) {
        for r in session.take_rejections() {
            let (ehlo_string, ehlo_domain) = match &r.hello {
                Some((verb, name)) => (format!("{verb} {name}"), name.as_str()),
                None => (String::new(), ""),
            };
            self.logs.rejection(&bindery_delivery::eclog::Rejection {
                time: crate::unix_now(),
                remote: &self.remote,
                local: &self.local,
                conn: &self.conn,
                binding: &self.binding,
                binding_group: &self.binding_group,
                phase: r.phase,
                code: r.code,
                module: r.module,
                ehlo_string: &ehlo_string,
                ehlo_domain,
                mailfrom: r.sender.as_deref(),
                text: &r.text,
            });
        }
    }
}

/// Counts an inbound session open for as long as it lives.
struct OpenSession<'a>(&'a Shared);

impl Drop for OpenSession<'_> {
    fn drop(&mut self) {
        self.0
            .inbound
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Runs the callout for one session check.
fn ask(policy: &Policy, conn: &mut Conn, msg: &mut Message, check: Check) -> Option<Code> {
    match check {
        Check::Connect => policy.connect(conn),
        Check::Hello(name) => policy.ehlo(conn, &name),
        Check::Mail(from) => {
            *msg = Message {
                sender: from.map(|m| m.to_string()).unwrap_or_default(),
                ..Message::default()
            };
            policy.mailfrom(conn, msg)
        }
        Check::Rcpt(to) => {
            let to = to.to_string();
            let code = policy.rcptto(conn, msg, &to);
            if code.is_none() {
                msg.recipients.push(to);
            }
            code
        }
        Check::Data(list) => {
            // The session's list is the truth (RCPT checks may not have run).
            msg.recipients = list.iter().map(|m| m.to_string()).collect();
            policy.rcptto_list(conn, msg)
        }
    }
}

/// Runs the policy's `validate_dealloc` when dropped: a session's end, whatever ended it.
struct Dealloc(bindery_policy::Policy, Conn);

impl Drop for Dealloc {
    fn drop(&mut self) {
        self.0.dealloc(&mut self.1);
    }
}

/// What a callout asked of the session besides a code: EHLO keywords to add
/// (`ac:esmtp_capability_add`) and a wait before the reply (`vctx:tarpit`).
async fn policy_effects(conn: &mut Conn, session: &mut Session) {
    for k in std::mem::take(&mut conn.capabilities) {
        session.add_capability(&k);
    }
    if let Some(wait) = conn.tarpit.take() {
        tokio::time::sleep(wait).await;
    }
}

/// `vctx:disconnect` with no code: Momentum's closing reply.
fn policy_disconnect() -> Reply {
    Reply::new(421, "4.7.0", "Connection closed by policy")
}

/// A policy's code as an SMTP reply (its text already starts with the enhanced status).
pub fn code_reply(code: Code) -> Reply {
    Reply {
        code: code.code,
        status: "",
        lines: vec![code.text],
    }
}
