//! The inbound SMTP session: bytes in, replies and events out, no I/O.
//!
//! The caller feeds what it read with [`Session::input`], then calls [`Session::step`] until it
//! returns [`Step::NeedInput`], writing [`Session::output`] before every read. Replies to
//! pipelined commands pile up in the output buffer and go out in one write. When a message is
//! complete, `step` hands it over as [`Step::Message`] and the session waits: no further command
//! is read until the caller reports the spool's verdict with [`Session::message_done`]. That is
//! what makes "250 only after the message is durable" a property of the protocol core.
//!
//! Policy checks work the same way: where [`SessionConfig::checks`] asks for one, `step`
//! returns [`Step::Check`] and no further input is read until the caller answers with
//! [`Session::verdict`] (see `check.rs`).
//!
//! One file per verb family: `hello.rs` (EHLO, HELO), `mail.rs`, `rcpt.rs`, `data.rs`,
//! `other.rs` (RSET, NOOP, QUIT, VRFY, EXPN, HELP, STARTTLS), `auth.rs` (AUTH and its SASL
//! exchange), `check.rs` (policy checks).

mod auth;
mod check;
mod data;
mod hello;
mod mail;
mod other;
mod rcpt;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::address::Mailbox;
use crate::command::{self, Command, CommandError, MailParams, RcptParams};
use crate::data::DataReceiver;
use crate::relay::DomainSet;
use crate::reply::Reply;

pub use auth::{AuthOffer, AuthVerdict, Login, Mechanism, Proof};
use check::Pending;
pub use check::{Check, Checks};

/// Longest command line, CRLF included (RFC 5321 §4.5.3.1.4).
pub const MAX_LINE: usize = 1000;

/// Everything the session needs to know about its listener, resolved by the caller from the
/// configuration (Listen::Peer > Listen > listener > global) for this one client.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Our name in the greeting, EHLO reply and Received header.
    pub hostname: String,
    /// Largest message in bytes; 0 means no limit.
    pub max_message_size: u64,
    /// Most recipients per message; 0 means no limit.
    pub max_recipients: usize,
    /// Most messages per connection; 0 means no limit.
    pub max_messages: u32,
    /// `Max_Recipients_Per_Connection`: recipients accepted in the whole session before a
    /// further RCPT gets `421` and the session closes; 0 means no limit.
    pub max_session_recipients: u32,
    /// `Allow_Trailing_Whitespace_In_Commands`: `< user@example.com >` is taken.
    pub loose_paths: bool,
    /// The client is in `relay_hosts`: it may send anywhere.
    pub relay_client: bool,
    /// Where anyone may send (`relay_domains`).
    pub relay_domains: DomainSet,
    /// STARTTLS is offered (a certificate is configured).
    pub starttls: bool,
    /// `TLS_Verified_Peer_Can_Relay`: a client whose certificate verified against
    /// `TLS_Client_CA` may relay as if it were in `relay_hosts`.
    pub tls_verified_peer_can_relay: bool,
    /// Errors in a row before `421` and close.
    pub max_errors: u32,
    /// Which commands wait for the caller's policy verdict.
    pub checks: Checks,
    /// Where mail to `<Postmaster>` (and `postmaster@` our host name) goes. With it, anyone
    /// may send there (RFC 5321 §4.5.1), relay rules aside; without it, such a recipient is
    /// relayed like any other, which for a client outside `relay_hosts` means 550.
    pub postmaster: Option<Mailbox>,
    /// `Require_EHLO`: MAIL before HELO/EHLO is refused. Momentum's default is false (an
    /// RFC 788 client may send MAIL first); after TLS starts, EHLO is always asked for again
    /// (RFC 3207).
    pub require_hello: bool,
    /// `Allow_Null_Envelope_Sender`: `MAIL FROM:<>` is taken (bounces need it).
    pub allow_null_sender: bool,
    /// `Allow_IP_Literal`: addresses such as `u@[192.0.2.1]` are taken.
    pub allow_ip_literal: bool,
    /// `Relay_For_Sending_Domains`: a client outside `relay_hosts` may relay when the
    /// envelope sender's domain is in this set (any sender when the set is empty).
    pub relay_senders: Option<DomainSet>,
    /// `Static_Banner`: the greeting's text in place of `HOSTNAME ESMTP Bindery`.
    pub banner: Option<String>,
    /// Free bytes where messages are stored, as the caller last measured them: a `SIZE=`
    /// larger than this gets `452 4.3.1` (RFC 1870). `None`: not measured.
    pub spool_free: Option<Arc<AtomicU64>>,
    /// Keep every 4xx/5xx reply as a [`Rejected`] for the caller (Momentum's rejectlog).
    pub record_rejections: bool,
    /// `Domain_For_Unqualified_Sender_Address`: `MAIL FROM:<joe>` becomes `joe@` this domain.
    /// Without it an unqualified sender is a syntax error.
    pub unqualified_sender_domain: Option<String>,
    /// `Domain_For_Unqualified_Recipient_Addresses`: `RCPT TO:<abuse>` becomes `abuse@` this
    /// domain, `<Postmaster>` included (unless `Postmaster_Address` takes it first). Without
    /// it only `<Postmaster>` may be unqualified.
    pub unqualified_recipient_domain: Option<String>,
    /// SMTP AUTH as offered to this client (`SMTP_Extensions` "AUTH ..."); empty: none.
    pub auth: AuthOffer,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            hostname: "localhost".into(),
            max_message_size: 0,
            max_recipients: 0,
            max_messages: 0,
            max_session_recipients: 0,
            loose_paths: false,
            relay_client: false,
            relay_domains: DomainSet::default(),
            starttls: false,
            tls_verified_peer_can_relay: false,
            max_errors: 10,
            checks: Checks::default(),
            postmaster: None,
            require_hello: false,
            banner: None,
            allow_null_sender: true,
            allow_ip_literal: true,
            relay_senders: None,
            spool_free: None,
            record_rejections: false,
            unqualified_sender_domain: None,
            unqualified_recipient_domain: None,
            auth: AuthOffer::default(),
        }
    }
}

/// A command the session refused, as the rejectlog records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// What the session was waiting for: `awaiting ehlo`, `awaiting mailfrom`,
    /// `awaiting rcptto`, `awaiting data`, `reading body`, `closing`.
    pub phase: &'static str,
    pub code: u16,
    /// `scriptlet` for a policy verdict, `esmtp` for the protocol core.
    pub module: &'static str,
    /// The reply's text (status code included), one line.
    pub text: String,
    /// The HELO/EHLO command's verb and name, once one was accepted.
    pub hello: Option<(&'static str, String)>,
    /// The envelope sender, once MAIL was accepted (empty for `<>`).
    pub sender: Option<String>,
}

/// A recipient the session accepted, with its DSN parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub mailbox: Mailbox,
    pub params: RcptParams,
}

/// A complete message, ready for the spool.
#[derive(Debug)]
pub struct Transaction {
    pub peer: IpAddr,
    pub helo: String,
    /// `SMTP`, `ESMTP`, `ESMTPS`, `ESMTPA` or `ESMTPSA`, for the Received header (RFC 3848).
    pub protocol: &'static str,
    /// The user the client logged in as with AUTH.
    pub auth_user: Option<String>,
    pub sender: Option<Mailbox>,
    pub params: MailParams,
    pub recipients: Vec<Recipient>,
    /// The message as received: CRLF line ends, dots un-stuffed, no trace header yet.
    pub body: Vec<u8>,
}

/// What the caller must do next.
#[derive(Debug)]
pub enum Step {
    /// Write the output, then read more input.
    NeedInput,
    /// Write the output, spool this message, then call [`Session::message_done`].
    Message(Box<Transaction>),
    /// Write the output (the 220), run the TLS handshake, then call [`Session::tls_started`].
    StartTls,
    /// Write the output and close the connection.
    Close,
    /// Ask the policy about this, then call [`Session::verdict`].
    Check(Check),
    /// Check this login against the password store, then call [`Session::auth_done`].
    Auth(Login),
}

#[derive(Debug)]
enum Phase {
    /// Before EHLO/HELO (also right after STARTTLS).
    Fresh,
    /// Greeted; no transaction.
    Idle,
    /// MAIL accepted; collecting recipients.
    Mail,
    /// Inside DATA.
    Data(Box<DataReceiver>),
    /// A message was handed over; waiting for [`Session::message_done`].
    Spooling,
    /// Inside an AUTH exchange: the next line is the client's base64 answer to a `334`.
    Auth(auth::Exchange),
    /// A login was handed over; waiting for [`Session::auth_done`].
    Verifying(String, Mechanism),
    /// After QUIT or a 421.
    Closed,
}

pub struct Session {
    cfg: Arc<SessionConfig>,
    peer: IpAddr,
    /// Keywords a policy added to the EHLO reply (`ac:esmtp_capability_add`).
    extra_capabilities: Vec<String>,
    phase: Phase,
    helo: Option<String>,
    esmtp: bool,
    tls: bool,
    /// The client's certificate verified (see [`Session::tls_started_verified`]).
    peer_verified: bool,
    sender: Option<Mailbox>,
    params: MailParams,
    recipients: Vec<Recipient>,
    /// RCPT commands refused in this transaction (for the DATA reply).
    refused: usize,
    messages: u32,
    /// Recipients accepted in this session, every transaction counted.
    session_recipients: u32,
    /// DATA commands answered 354 so far: names the message being received.
    data_serial: u64,
    errors: u32,
    /// Skipping the rest of an over-long line.
    discarding: bool,
    /// A command waiting for its policy verdict; `true` once `step` announced it.
    pending: Option<(Pending, bool)>,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    /// What the next refusal is attributed to (see [`Rejected::module`]).
    refuser: &'static str,
    rejected: Vec<Rejected>,
    /// Who logged in with AUTH, and how.
    user: Option<(String, Mechanism)>,
    /// The caller's random part of CRAM-MD5 challenges ([`Session::set_auth_seed`]).
    auth_seed: u64,
    /// AUTH exchanges begun, to number the challenges.
    auth_serial: u64,
}

impl Session {
    /// A new session; the greeting is already in the output.
    pub fn new(cfg: Arc<SessionConfig>, peer: IpAddr) -> Session {
        let mut s = Session {
            peer,
            extra_capabilities: Vec::new(),
            phase: Phase::Fresh,
            helo: None,
            esmtp: false,
            tls: false,
            peer_verified: false,
            sender: None,
            params: MailParams::default(),
            recipients: Vec::new(),
            refused: 0,
            messages: 0,
            session_recipients: 0,
            data_serial: 0,
            errors: 0,
            discarding: false,
            pending: None,
            inbuf: Vec::with_capacity(4096),
            out: Vec::with_capacity(512),
            refuser: "esmtp",
            rejected: Vec::new(),
            user: None,
            auth_seed: 0,
            auth_serial: 0,
            cfg,
        };
        if s.cfg.checks.connect {
            s.pending = Some((Pending::Connect, false));
        } else {
            s.greet();
        }
        s
    }

    fn greet(&mut self) {
        let greeting = match &self.cfg.banner {
            Some(b) => b.clone(),
            None => format!("{} ESMTP Bindery", self.cfg.hostname),
        };
        self.reply(Reply::new(220, "", greeting));
    }

    /// Appends bytes read from the client.
    pub fn input(&mut self, bytes: &[u8]) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        self.inbuf.extend_from_slice(bytes);
    }

    /// Replies not yet written.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// The caller wrote the output.
    pub fn clear_output(&mut self) {
        self.out.clear();
    }

    /// Inside DATA, once the message kept so far has reached `at_least` bytes, hands those
    /// bytes over and goes on receiving; `None` otherwise. The caller writes what it takes to
    /// the spool as it arrives, so a large message is never held in memory whole; what it does
    /// not take comes in the transaction's `body` as usual. The bytes are the message as
    /// received (dots un-stuffed, no trace header), and a message refused at its end is
    /// refused whatever was taken.
    pub fn take_data(&mut self, at_least: usize) -> Option<Vec<u8>> {
        match &mut self.phase {
            Phase::Data(rx) => rx.take_body(at_least),
            _ => None,
        }
    }

    /// Which message is being received (a new number at every DATA): a caller that holds
    /// what it took of one message with [`Session::take_data`] knows when that message is
    /// over, refused or not, and another began.
    pub fn data_serial(&self) -> u64 {
        self.data_serial
    }

    /// What a trace header needs of the transaction in progress: the HELO name, the
    /// protocol word, and the recipients so far.
    pub fn trace(&self) -> (&str, &'static str, &[Recipient]) {
        (
            self.helo.as_deref().unwrap_or(""),
            self.protocol(),
            &self.recipients,
        )
    }

    /// Free spool bytes as last measured, if the caller measures them.
    fn spool_free(&self) -> Option<u64> {
        self.cfg
            .spool_free
            .as_ref()
            .map(|f| f.load(Ordering::Relaxed))
    }

    /// True while a message is being received: a graceful shutdown lets it finish.
    pub fn in_data(&self) -> bool {
        matches!(self.phase, Phase::Data(_) | Phase::Spooling)
    }

    fn reply(&mut self, r: Reply) {
        if self.cfg.record_rejections && r.code >= 400 {
            self.record(&r);
        }
        r.write_to(&mut self.out);
    }

    fn record(&mut self, r: &Reply) {
        let phase = match &self.phase {
            Phase::Fresh => "awaiting ehlo",
            Phase::Idle | Phase::Auth(_) | Phase::Verifying(..) => "awaiting mailfrom",
            Phase::Mail if self.recipients.is_empty() => "awaiting rcptto",
            Phase::Mail => "awaiting data",
            Phase::Data(_) | Phase::Spooling => "reading body",
            Phase::Closed => "closing",
        };
        let mut text = r.status.to_string();
        for l in &r.lines {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(l);
        }
        let verb = if self.esmtp { "EHLO" } else { "HELO" };
        self.rejected.push(Rejected {
            phase,
            code: r.code,
            module: self.refuser,
            text,
            hello: self.helo.clone().map(|h| (verb, h)),
            sender: self.sender.as_ref().map(|m| m.to_string()),
        });
    }

    /// The refusals since the last call (only kept with `record_rejections`).
    pub fn take_rejections(&mut self) -> Vec<Rejected> {
        std::mem::take(&mut self.rejected)
    }

    /// A successful command: the error run ends.
    fn ok(&mut self, r: Reply) {
        self.errors = 0;
        self.reply(r);
    }

    /// A refused command. Too many in a row ends the session.
    fn error(&mut self, r: Reply) {
        self.reply(r);
        self.errors += 1;
        if self.cfg.max_errors > 0 && self.errors >= self.cfg.max_errors {
            let text = format!("{} Error: too many errors", self.cfg.hostname);
            self.close_with(Reply::new(421, "4.7.0", text));
        }
    }

    fn close_with(&mut self, r: Reply) {
        self.reply(r);
        self.phase = Phase::Closed;
        self.inbuf.clear();
    }

    fn reset_transaction(&mut self) {
        self.sender = None;
        self.params = MailParams::default();
        self.recipients.clear();
        self.refused = 0;
        if !matches!(self.phase, Phase::Fresh | Phase::Closed) {
            self.phase = Phase::Idle;
        }
    }

    /// The `with` word of the Received header (RFC 3848): A for a logged-in client.
    fn protocol(&self) -> &'static str {
        match (self.esmtp, self.tls, self.user.is_some()) {
            (false, _, _) => "SMTP",
            (true, false, false) => "ESMTP",
            (true, true, false) => "ESMTPS",
            (true, false, true) => "ESMTPA",
            (true, true, true) => "ESMTPSA",
        }
    }

    /// The command timeout fired: say so and close.
    pub fn timeout(&mut self) {
        let text = format!("{} Error: timeout exceeded", self.cfg.hostname);
        self.close_with(Reply::new(421, "4.4.2", text));
    }

    /// The daemon is stopping: refuse to go on.
    pub fn shutdown(&mut self) {
        let text = format!(
            "{} Service shutting down, closing transmission channel",
            self.cfg.hostname
        );
        self.close_with(Reply::new(421, "4.3.2", text));
    }

    /// Processes buffered input as far as it goes.
    pub fn step(&mut self) -> Step {
        loop {
            if let Some((pending, announced)) = &mut self.pending {
                if *announced || matches!(self.phase, Phase::Closed) {
                    return Step::NeedInput;
                }
                *announced = true;
                return Step::Check(pending.check());
            }
            match &mut self.phase {
                Phase::Closed => return Step::Close,
                Phase::Spooling | Phase::Verifying(..) => return Step::NeedInput,
                Phase::Data(rx) => {
                    let (used, done) = rx.feed(&self.inbuf);
                    self.inbuf.drain(..used);
                    if !done {
                        return Step::NeedInput;
                    }
                    let Phase::Data(rx) = std::mem::replace(&mut self.phase, Phase::Idle) else {
                        unreachable!()
                    };
                    if let Some(t) = self.end_of_data(*rx) {
                        return Step::Message(Box::new(t));
                    }
                }
                _ => {
                    let Some(line) = self.next_line() else {
                        return Step::NeedInput;
                    };
                    // Inside an AUTH exchange a line is the client's answer, not a command.
                    let sasl = matches!(self.phase, Phase::Auth(_));
                    match line {
                        Ok(line) => {
                            let step = if sasl {
                                self.sasl_line(&line)
                            } else {
                                self.command(&line)
                            };
                            if let Some(step) = step {
                                return step;
                            }
                        }
                        Err(r) => {
                            if sasl {
                                self.phase = Phase::Idle;
                            }
                            self.error(r);
                        }
                    }
                }
            }
        }
    }

    /// Takes the next command line from the buffer, or says why it is unusable.
    fn next_line(&mut self) -> Option<Result<String, Reply>> {
        let nl = self.inbuf.iter().position(|&b| b == b'\n');
        let Some(nl) = nl else {
            if self.inbuf.len() > MAX_LINE {
                // Drop what we have; the reply goes out once the line finally ends.
                self.discarding = true;
                self.inbuf.clear();
            }
            return None;
        };
        let discarding = std::mem::take(&mut self.discarding);
        let line = command_line(&self.inbuf[..=nl], discarding);
        self.inbuf.drain(..=nl);
        Some(line)
    }

    /// Runs one command; returns a step when the caller has to act.
    fn command(&mut self, line: &str) -> Option<Step> {
        let utf8 = self.esmtp && (self.params.smtputf8 || !matches!(self.phase, Phase::Mail));
        let cmd = match command::parse_with(line, utf8, self.cfg.loose_paths) {
            Ok(c) => c,
            Err(e) => {
                self.command_error(e);
                return None;
            }
        };
        match cmd {
            Command::Ehlo(name) => return self.hello(name, true),
            Command::Helo(name) => return self.hello(name, false),
            Command::Mail(from, params) => return self.mail(from, params),
            Command::Rcpt(to, params) => return self.rcpt(to, params),
            Command::Data => return self.data(),
            Command::Rset => self.rset(),
            Command::Noop => self.ok(Reply::new(250, "2.0.0", "OK")),
            Command::Quit => return Some(self.quit()),
            Command::Vrfy => self.ok(Reply::new(
                252,
                "2.5.2",
                "Cannot VRFY user, but will accept message and attempt delivery",
            )),
            Command::Expn => self.error(Reply::new(502, "5.5.1", "Error: EXPN not supported")),
            Command::Help => self.help(),
            Command::StartTls => return self.starttls(),
            Command::Auth(mechanism, initial) => return self.auth(&mechanism, initial),
            Command::NotImplemented(verb) => self.error(Reply::new(
                502,
                "5.5.1",
                format!("Error: {verb} not implemented"),
            )),
        }
        None
    }

    fn command_error(&mut self, e: CommandError) {
        use crate::address::PathError;
        let r = match e {
            CommandError::Unknown => Reply::new(500, "5.5.2", "Error: command not recognized"),
            CommandError::Syntax(usage) => Reply::new(501, "5.5.4", format!("Syntax: {usage}")),
            CommandError::BadPath(PathError::NeedsUtf8, _) => {
                Reply::new(553, "5.6.7", "Error: non-ASCII address needs SMTPUTF8")
            }
            CommandError::BadPath(PathError::TooLong, sender) => Reply::new(
                501,
                if sender { "5.1.7" } else { "5.1.3" },
                "Error: address too long",
            ),
            CommandError::BadPath(PathError::Syntax, true) => {
                Reply::new(501, "5.1.7", "Error: bad sender address syntax")
            }
            CommandError::BadPath(PathError::Syntax, false) => {
                Reply::new(501, "5.1.3", "Error: bad recipient address syntax")
            }
            CommandError::BadParam(k) => {
                Reply::new(555, "5.5.4", format!("Error: unsupported parameter {k}"))
            }
        };
        self.error(r);
    }

    /// The caller's verdict on the message of the last [`Step::Message`]: the 250 with its
    /// queue id, or the 4xx/5xx the spool or policy chose.
    pub fn message_done(&mut self, reply: Reply) {
        self.message_done_by(reply, "esmtp");
    }

    /// As [`Session::message_done`], with what refused the message if it was refused
    /// (`scriptlet` for the end-of-DATA policy), for the rejectlog.
    pub fn message_done_by(&mut self, reply: Reply, refuser: &'static str) {
        self.refuser = refuser;
        if reply.is_positive() {
            self.messages += 1;
        }
        self.reply(reply);
        self.refuser = "esmtp";
        self.phase = Phase::Idle;
        self.reset_transaction();
    }

    /// The message of the last [`Step::Message`] was discarded by `refuser` (Momentum's
    /// `msg:discard`): the client gets `reply`, a success, and the rejectlog records
    /// `reason` as the refusal it was.
    pub fn message_discarded(&mut self, reply: Reply, reason: &Reply, refuser: &'static str) {
        if self.cfg.record_rejections {
            self.refuser = refuser;
            self.record(reason);
            self.refuser = "esmtp";
        }
        self.message_done(reply);
    }

    /// A policy ends the session (`vctx:disconnect`): `reply` answers the command waiting
    /// for a verdict (or the message), and the connection closes after it.
    pub fn disconnect(&mut self, reply: Reply, refuser: &'static str) {
        self.pending = None;
        self.refuser = refuser;
        self.close_with(reply);
        self.refuser = "esmtp";
    }

    /// Adds a keyword to this session's EHLO reply (`ac:esmtp_capability_add`, usually at
    /// connect); a keyword already offered is not repeated.
    pub fn add_capability(&mut self, keyword: &str) {
        let k = keyword.trim();
        if !k.is_empty()
            && !self
                .extra_capabilities
                .iter()
                .any(|e| e.eq_ignore_ascii_case(k))
        {
            self.extra_capabilities.push(k.to_string());
        }
    }

    /// The TLS handshake after STARTTLS succeeded: forget everything, as RFC 3207 §4.2 says.
    pub fn tls_started(&mut self) {
        self.tls_started_verified(false);
    }

    /// TLS is up and the client presented a certificate that verified against the
    /// listener's CAs (`verified`): with `TLS_Verified_Peer_Can_Relay` it may relay.
    pub fn tls_started_verified(&mut self, verified: bool) {
        self.peer_verified = verified;
        self.tls = true;
        self.user = None;
        self.helo = None;
        self.esmtp = false;
        self.phase = Phase::Fresh;
        self.reset_transaction();
    }
}

/// Checks one raw command line (LF included): length, NUL, bare CR, UTF-8. `discarding` says
/// its start was already thrown away for being too long.
fn command_line(raw: &[u8], discarding: bool) -> Result<String, Reply> {
    let bad = |text: &str| Err(Reply::new(500, "5.5.2", text));
    if discarding || raw.len() > MAX_LINE {
        return bad("Error: line too long");
    }
    let line = &raw[..raw.len() - 1];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.contains(&0) {
        return bad("Error: NUL character in command");
    }
    match std::str::from_utf8(line) {
        Ok(s) if s.contains('\r') => bad("Error: bare CR in command"),
        Ok(s) => Ok(s.to_string()),
        Err(_) => bad("Error: command is not valid UTF-8"),
    }
}
