//! The outbound SMTP session: replies in, commands and events out, no I/O.
//!
//! The caller writes [`Client::output`] to the socket, feeds what it reads with
//! [`Client::input`], and calls [`Client::step`] until [`ClientStep::NeedInput`]:
//!
//! - [`ClientStep::Ready`]: the handshake (greeting, EHLO, STARTTLS and EHLO again) is done or
//!   the last transaction is over. Give it a message with [`Client::send`] or say
//!   [`Client::quit`].
//! - [`ClientStep::StartTls`]: the server said 220 to STARTTLS. Wrap the socket in TLS and call
//!   [`Client::tls_started`]; the client greets again, as RFC 3207 requires.
//! - [`ClientStep::Done`]: a transaction ended; [`Outcome`] has the reply that counts for
//!   each recipient.
//! - [`ClientStep::Failed`]: the session cannot go on (greeting refused, 421, TLS required but
//!   not offered, bytes that are not SMTP). Close the connection.
//!
//! With PIPELINING the envelope (MAIL, every RCPT, DATA) goes out in one write (RFC 2920);
//! without it, one command per reply. A timeout or a dropped connection is the caller's to
//! notice: [`Client::abort`] then gives the outcome of a transaction cut short, with every
//! recipient unfinished, because a recipient counts as delivered only after the reply to the
//! final dot.
//!
//! [`ClientConfig::protocol`] is Momentum's `Delivery_Method`: `ESMTP` (EHLO, HELO if the
//! server refuses it), `SMTP` (HELO only: no extensions), or LMTP (RFC 2033): `LHLO` (no HELO
//! fallback), and after the final dot one reply per recipient whose RCPT was accepted, in
//! RCPT order, each deciding its own recipient ([`Outcome::per_rcpt`]).

mod auth;
mod downgrade;
mod extensions;
mod outgoing;
mod response;

use std::collections::VecDeque;

pub use downgrade::Transform8Bit;
pub use extensions::Extensions;
pub use outgoing::{Origin, OutRecipient, Outgoing, dot_stuff_into};
pub use response::{Response, ResponseError, ResponseReader};

/// What the configuration asks of TLS (`tls = no|ifavailable|required`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsWish {
    No,
    IfAvailable,
    Required,
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The name we greet with (`ehlo_hostname`, resolved by the caller).
    pub ehlo: String,
    pub tls: TlsWish,
    pub protocol: Protocol,
    /// Momentum's `xclient`: pass each message's origin on with Postfix's XCLIENT before its
    /// MAIL (`ifavailable`: where the server offers it; `required`: a message is deferred
    /// where it does not, or refuses it).
    pub xclient: TlsWish,
    /// Momentum's `transform_8bitmime_content`: an 8-bit body for a server without
    /// 8BITMIME (`downgrade.rs`).
    pub transform_8bit: Transform8Bit,
    /// Momentum's `outbound_smtp_auth`: log in after the handshake where the server offers
    /// AUTH (`auth.rs`).
    pub auth: Option<ClientAuth>,
}

/// Momentum's `outbound_smtp_auth`: how the client logs in to a server that offers AUTH.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientAuth {
    pub mechanism: AuthMechanism,
    pub user: String,
    /// The password, or XOAUTH2's access token.
    pub secret: String,
    /// Log in without TLS too (bindery's `Outbound_SMTP_AUTH_Allow_Plaintext`); otherwise a
    /// connection that is not encrypted fails before the password leaves.
    pub plaintext: bool,
}

/// Never prints the secret.
impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .field("secret", &"<redacted>")
            .field("plaintext", &self.plaintext)
            .finish()
    }
}

/// `Outbound_SMTP_AUTH_Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthMechanism {
    Plain,
    Login,
    /// Google's and Microsoft's OAuth 2.0 bearer token login.
    Xoauth2,
}

impl AuthMechanism {
    pub fn name(self) -> &'static str {
        match self {
            AuthMechanism::Plain => "PLAIN",
            AuthMechanism::Login => "LOGIN",
            AuthMechanism::Xoauth2 => "XOAUTH2",
        }
    }
}

/// Momentum's `Delivery_Method`, for the methods bindery speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    #[default]
    Esmtp,
    /// RFC 821 SMTP: HELO, no extensions.
    Smtp,
    /// RFC 2033 LMTP.
    Lmtp,
}

/// What the client is waiting for, which picks the timeout that applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Greeting,
    Ehlo,
    StartTls,
    /// Logging in (`outbound_smtp_auth`), after the handshake.
    Auth,
    /// Nothing outstanding: the connection is idle (`idle_timeout`).
    Ready,
    MailFrom,
    RcptTo,
    Data,
    /// The message was sent; waiting for the reply to the final dot.
    Body,
    Rset,
    Quit,
    /// The client failed or said QUIT and got its answer.
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Awaiting {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    /// TLS handshake in progress (no reply expected; `tls_started` ends it).
    Handshake,
    /// XCLIENT before a transaction: its 220 is a new greeting, EHLO follows.
    Xclient,
    /// AUTH: the reply to the command or to one answer (`auth.rs`).
    Auth(auth::AuthStep),
    Mail,
    Rcpt(usize),
    Data,
    Body,
    /// LMTP: the reply to the final dot for recipient `i` (an accepted one).
    BodyFor(usize),
    /// The empty `.` sent after a 354 that came although no recipient was accepted.
    EmptyBody,
    Rset,
    Quit,
}

impl Awaiting {
    fn phase(self) -> Phase {
        match self {
            Awaiting::Greeting => Phase::Greeting,
            Awaiting::Ehlo | Awaiting::Helo => Phase::Ehlo,
            Awaiting::Auth(_) => Phase::Auth,
            Awaiting::StartTls | Awaiting::Handshake => Phase::StartTls,
            Awaiting::Xclient | Awaiting::Mail => Phase::MailFrom,
            Awaiting::Rcpt(_) => Phase::RcptTo,
            Awaiting::Data => Phase::Data,
            Awaiting::Body | Awaiting::BodyFor(_) | Awaiting::EmptyBody => Phase::Body,
            Awaiting::Rset => Phase::Rset,
            Awaiting::Quit => Phase::Quit,
        }
    }
}

/// The replies one transaction got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub mail: Option<Response>,
    pub rcpts: Vec<Option<Response>>,
    pub data: Option<Response>,
    /// Set when the transaction was cut short (421, timeout, dropped connection, garbage):
    /// the reply every unfinished recipient gets.
    pub cut: Option<Response>,
    /// What the client was waiting for when it was cut short.
    pub cut_at: Option<Phase>,
    /// Whether `data` answers the DATA command (`Data`) or the final dot (`Body`).
    pub data_at: Option<Phase>,
    /// LMTP: the final reply of each recipient, by index (empty for SMTP, where `data` is
    /// every recipient's). `data` then holds the last of them.
    pub per_rcpt: Vec<Option<Response>>,
}

impl Outcome {
    /// A transaction of `n` recipients that ended before any reply counted.
    pub fn cut_short(n: usize, reason: Response) -> Outcome {
        Outcome {
            cut: Some(reason),
            ..Outcome::new(n)
        }
    }

    fn new(n: usize) -> Outcome {
        Outcome {
            mail: None,
            rcpts: vec![None; n],
            data: None,
            cut: None,
            cut_at: None,
            data_at: None,
            per_rcpt: Vec::new(),
        }
    }

    fn mail_ok(&self) -> bool {
        self.mail
            .as_ref()
            .is_some_and(Response::is_positive_completion)
    }

    fn accepted(&self) -> usize {
        self.rcpts
            .iter()
            .filter(|r| r.as_ref().is_some_and(Response::is_positive_completion))
            .count()
    }

    /// The reply that decides recipient `i`'s fate: MAIL's if MAIL failed, else its RCPT's if
    /// that failed, else the final reply to the message. A recipient is delivered only if
    /// this is a 2xx.
    pub fn for_recipient(&self, i: usize) -> &Response {
        static NONE: std::sync::LazyLock<Response> = std::sync::LazyLock::new(|| {
            Response::local(451, "4.4.0 no reply (transaction not finished)")
        });
        let cut = self.cut.as_ref();
        match &self.mail {
            Some(m) if !m.is_positive_completion() => return m,
            None => return cut.unwrap_or(&NONE),
            _ => {}
        }
        match self.rcpts.get(i).and_then(Option::as_ref) {
            Some(r) if !r.is_positive_completion() => r,
            // LMTP after the dot: the recipient's own reply, once there is any.
            Some(_) if !self.per_rcpt.is_empty() => self
                .per_rcpt
                .get(i)
                .and_then(Option::as_ref)
                .or(cut)
                .unwrap_or(&NONE),
            Some(_) => self.data.as_ref().or(cut).unwrap_or(&NONE),
            None => cut.unwrap_or(&NONE),
        }
    }

    /// Where in the dialogue the reply that decides recipient `i` came (see
    /// [`Outcome::for_recipient`]): for the logs' connection stage.
    pub fn phase_for(&self, i: usize) -> Phase {
        let cut = self.cut_at.unwrap_or(Phase::Closed);
        match &self.mail {
            Some(m) if !m.is_positive_completion() => return Phase::MailFrom,
            None => return cut,
            _ => {}
        }
        match self.rcpts.get(i).and_then(Option::as_ref) {
            Some(r) if !r.is_positive_completion() => Phase::RcptTo,
            Some(_) if !self.per_rcpt.is_empty() => {
                if self.per_rcpt.get(i).is_some_and(Option::is_some) {
                    Phase::Body
                } else {
                    cut
                }
            }
            Some(_) if self.data.is_some() => self.data_at.unwrap_or(Phase::Body),
            _ => cut,
        }
    }
}

/// Why the session ended without QUIT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub phase: Phase,
    /// The server's reply, or one we made up (`451 4.5.0 ...` for garbage, `451 4.7.4 ...`
    /// when TLS is required but not offered).
    pub response: Response,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ClientStep {
    NeedInput,
    Ready,
    StartTls,
    Done(Box<Outcome>),
    Failed(Failure),
    /// QUIT was answered.
    Closed,
}

/// The output buffer's room kept between writes: a transaction's commands, not a body.
const OUT_KEPT: usize = 512;

/// The client state machine for one connection.
pub struct Client {
    cfg: ClientConfig,
    reader: ResponseReader,
    out: Vec<u8>,
    awaiting: VecDeque<Awaiting>,
    events: VecDeque<ClientStep>,
    ext: Extensions,
    tls_active: bool,
    /// The transaction in flight, with its message and the replies so far.
    tx: Option<(Outgoing, Outcome)>,
    pipelined: bool,
    closed: bool,
    /// Reported `Ready` for the current idle period already.
    ready_reported: bool,
    /// Replies read so far: a new reply awaited is a new phase for its timeout.
    replies: u64,
    /// XCLIENT was accepted: the transaction starts once the new EHLO is answered.
    resume: bool,
    /// AUTH succeeded on this connection.
    authenticated: bool,
}

impl Client {
    /// A client that has just connected and waits for the greeting.
    pub fn new(cfg: ClientConfig) -> Client {
        Client {
            cfg,
            reader: ResponseReader::default(),
            out: Vec::new(),
            awaiting: VecDeque::from([Awaiting::Greeting]),
            events: VecDeque::new(),
            ext: Extensions::default(),
            tls_active: false,
            tx: None,
            pipelined: false,
            closed: false,
            ready_reported: false,
            replies: 0,
            resume: false,
            authenticated: false,
        }
    }

    pub fn input(&mut self, bytes: &[u8]) {
        self.reader.push(bytes);
    }

    /// Bytes to write before the next read.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// The output was written. A message body went through this buffer (dot-stuffed); its
    /// room is given back, so an idle connection holds nothing, not its largest message.
    pub fn clear_output(&mut self) {
        self.out.clear();
        if self.out.capacity() > OUT_KEPT {
            self.out = Vec::new();
        }
    }

    /// The server's extensions from the latest EHLO.
    pub fn extensions(&self) -> &Extensions {
        &self.ext
    }

    pub fn tls_active(&self) -> bool {
        self.tls_active
    }

    /// How many replies the server has given: with [`Client::phase`], what names the reply
    /// awaited now, so that its timeout bounds the whole wait for it however the bytes
    /// trickle in.
    pub fn replies(&self) -> u64 {
        self.replies
    }

    /// What we are waiting for now.
    pub fn phase(&self) -> Phase {
        if self.closed {
            return Phase::Closed;
        }
        self.awaiting.front().map_or(Phase::Ready, |a| a.phase())
    }

    /// Starts a transaction. Only valid after `Ready`; the message must have recipients.
    pub fn send(&mut self, mut msg: Outgoing) {
        debug_assert!(self.tx.is_none() && self.awaiting.is_empty());
        self.ready_reported = false;
        let n = msg.recipients.len();
        match downgrade::transform(&msg.body, self.cfg.transform_8bit, self.ext.eight_bit_mime) {
            Ok(std::borrow::Cow::Borrowed(_)) => {}
            Ok(std::borrow::Cow::Owned(b)) => msg.body = std::sync::Arc::new(b),
            Err(why) => {
                self.tx = Some((msg, Outcome::new(n)));
                let r = Response::local(
                    554,
                    format!(
                        "5.6.3 the remote host does not take 8-bit data and the message cannot be converted: {why} (transform_8bitmime_content = strict)"
                    ),
                );
                self.refuse_tx(r);
                return;
            }
        }
        let xclient = match (self.cfg.xclient, &self.ext.xclient) {
            (TlsWish::No, _) => None,
            (_, Some(attrs)) => Some(msg.xclient_command(attrs)),
            (TlsWish::IfAvailable, None) => None,
            (TlsWish::Required, None) => {
                self.tx = Some((msg, Outcome::new(n)));
                let r = Response::local(
                    451,
                    "4.7.0 XCLIENT required but not offered by the remote host",
                );
                self.refuse_tx(r);
                return;
            }
        };
        self.tx = Some((msg, Outcome::new(n)));
        match xclient {
            Some(c) => {
                self.out.extend_from_slice(&c);
                self.awaiting.push_back(Awaiting::Xclient);
            }
            None => self.begin(),
        }
    }

    /// The transaction's envelope: MAIL, and with PIPELINING every RCPT and DATA.
    fn begin(&mut self) {
        let Some((msg, _)) = &self.tx else { return };
        let n = msg.recipients.len();
        self.out.extend_from_slice(&msg.mail_command(&self.ext));
        self.awaiting.push_back(Awaiting::Mail);
        self.pipelined = self.ext.pipelining;
        if self.pipelined {
            for i in 0..n {
                self.out.extend_from_slice(&msg.rcpt_command(i, &self.ext));
                self.awaiting.push_back(Awaiting::Rcpt(i));
            }
            self.out.extend_from_slice(b"DATA\r\n");
            self.awaiting.push_back(Awaiting::Data);
        }
    }

    /// Ends the transaction before MAIL: every recipient gets `r` (as a MAIL refusal would
    /// give it), and the session stays open.
    fn refuse_tx(&mut self, r: Response) {
        if let Some((_, o)) = &mut self.tx {
            o.mail = Some(r);
        }
        self.finish(false);
    }

    /// The reply to XCLIENT: Postfix's smtpd says 220, a new greeting, and Postfix's
    /// smtp-sink says 250: either way EHLO again, then the transaction. A refusal sends the
    /// message without it, unless XCLIENT is required.
    fn on_xclient(&mut self, r: Response) {
        if r.is_positive_completion() {
            self.ext = Extensions::default();
            self.resume = true;
            self.send_ehlo();
        } else if self.cfg.xclient == TlsWish::Required {
            let r = Response::local(451, format!("4.7.0 XCLIENT refused: {}", r.one_line()));
            self.refuse_tx(r);
        } else {
            self.begin();
        }
    }

    /// After a HELO or EHLO: a transaction that waited for it (behind XCLIENT) starts.
    fn resume_tx(&mut self) {
        if self.resume && self.awaiting.is_empty() {
            self.resume = false;
            self.begin();
        }
    }

    /// Says QUIT; the next steps end in `Closed` (or `Failed` if the server misbehaves).
    pub fn quit(&mut self) {
        self.ready_reported = false;
        self.out.extend_from_slice(b"QUIT\r\n");
        self.awaiting.push_back(Awaiting::Quit);
    }

    /// The TLS handshake finished: greet again and forget what the plaintext EHLO said.
    pub fn tls_started(&mut self) {
        self.tls_active = true;
        self.ext = Extensions::default();
        self.awaiting.retain(|a| *a != Awaiting::Handshake);
        self.send_ehlo();
    }

    /// The connection timed out or dropped. Returns the transaction cut short, if one was in
    /// flight and not yet reported, with `reason` for every unfinished recipient.
    pub fn abort(&mut self, reason: Response) -> Option<Outcome> {
        let at = self.awaiting.front().map_or(Phase::Ready, |a| a.phase());
        self.abort_at(at, reason)
    }

    fn abort_at(&mut self, at: Phase, reason: Response) -> Option<Outcome> {
        self.closed = true;
        self.awaiting.clear();
        self.tx.take().map(|(_, mut o)| {
            o.cut = Some(reason);
            o.cut_at = Some(at);
            o
        })
    }

    pub fn step(&mut self) -> ClientStep {
        loop {
            if let Some(e) = self.events.pop_front() {
                return e;
            }
            if self.closed {
                return ClientStep::NeedInput;
            }
            if self.awaiting.is_empty() && self.tx.is_none() && !self.ready_reported {
                self.ready_reported = true;
                return ClientStep::Ready;
            }
            if self.awaiting.front() == Some(&Awaiting::Handshake) {
                return ClientStep::NeedInput;
            }
            match self.reader.next_response() {
                Ok(Some(r)) => self.on_response(r),
                Ok(None) => return ClientStep::NeedInput,
                Err(e) => {
                    let resp = Response::local(451, format!("4.5.0 protocol error: {e}"));
                    self.fail_at(self.phase(), resp);
                }
            }
        }
    }

    fn send_ehlo(&mut self) {
        let verb = match self.cfg.protocol {
            Protocol::Esmtp => "EHLO",
            Protocol::Smtp => {
                self.out
                    .extend_from_slice(format!("HELO {}\r\n", self.cfg.ehlo).as_bytes());
                self.awaiting.push_back(Awaiting::Helo);
                return;
            }
            Protocol::Lmtp => "LHLO",
        };
        self.out
            .extend_from_slice(format!("{verb} {}\r\n", self.cfg.ehlo).as_bytes());
        self.awaiting.push_back(Awaiting::Ehlo);
    }

    /// Reports the transaction's outcome; sends RSET first when the server may still hold
    /// transaction state (anything but a completed DATA).
    fn finish(&mut self, reset: bool) {
        if let Some((_, o)) = self.tx.take() {
            self.events.push_back(ClientStep::Done(Box::new(o)));
        }
        if reset {
            self.out.extend_from_slice(b"RSET\r\n");
            self.awaiting.push_back(Awaiting::Rset);
        }
    }

    fn on_response(&mut self, r: Response) {
        self.replies += 1;
        let Some(what) = self.awaiting.pop_front() else {
            // Unsolicited: a server closing an idle connection says 421 first.
            self.fail_at(Phase::Ready, r);
            return;
        };
        // 421 means the server is closing the channel, whatever it was answering.
        if r.code == 421 && what != Awaiting::Quit {
            self.fail_at(what.phase(), r);
            return;
        }
        match what {
            Awaiting::Greeting => {
                if r.code == 220 {
                    self.send_ehlo();
                } else {
                    self.fail_at(Phase::Greeting, r);
                }
            }
            Awaiting::Ehlo => {
                if r.code == 250 {
                    self.ext = Extensions::from_ehlo(&r);
                    self.after_hello();
                    self.resume_tx();
                } else if r.is_permanent()
                    && !self.tls_active
                    && self.cfg.protocol != Protocol::Lmtp
                {
                    // An old server: try HELO (RFC 5321 §3.2).
                    self.out
                        .extend_from_slice(format!("HELO {}\r\n", self.cfg.ehlo).as_bytes());
                    self.awaiting.push_back(Awaiting::Helo);
                } else {
                    self.fail_at(Phase::Ehlo, r);
                }
            }
            Awaiting::Helo => {
                if r.code == 250 {
                    self.ext = Extensions::default();
                    self.after_hello();
                    self.resume_tx();
                } else {
                    self.fail_at(Phase::Ehlo, r);
                }
            }
            Awaiting::StartTls => {
                if r.code == 220 {
                    self.awaiting.push_front(Awaiting::Handshake);
                    self.events.push_back(ClientStep::StartTls);
                } else if self.cfg.tls == TlsWish::Required {
                    self.fail_at(Phase::StartTls, r);
                } else {
                    // ifavailable: go on in plaintext (step reports Ready).
                    self.login();
                }
            }
            Awaiting::Handshake => {}
            Awaiting::Xclient => self.on_xclient(r),
            Awaiting::Auth(step) => self.on_auth(step, r),
            Awaiting::Mail => self.on_mail(r),
            Awaiting::Rcpt(i) => self.on_rcpt(i, r),
            Awaiting::Data => self.on_data(r),
            Awaiting::Body => {
                if let Some((_, o)) = &mut self.tx {
                    o.data = Some(r);
                    o.data_at = Some(Phase::Body);
                }
                self.finish(false);
            }
            Awaiting::BodyFor(i) => {
                if let Some((_, o)) = &mut self.tx {
                    if let Some(slot) = o.per_rcpt.get_mut(i) {
                        *slot = Some(r.clone());
                    }
                    o.data = Some(r);
                    o.data_at = Some(Phase::Body);
                }
                // The transaction ends with the last recipient's reply.
                if !matches!(self.awaiting.front(), Some(Awaiting::BodyFor(_))) {
                    self.finish(false);
                }
            }
            Awaiting::EmptyBody => self.finish(true),
            Awaiting::Rset => {
                if r.code != 250 {
                    self.fail_at(Phase::Rset, r);
                }
            }
            Awaiting::Quit => {
                self.closed = true;
                self.events.push_back(ClientStep::Closed);
            }
        }
    }

    /// Ends the session: the transaction in flight (if any) is reported cut short by `r`,
    /// then `Failed`.
    fn fail_at(&mut self, phase: Phase, r: Response) {
        if let Some(o) = self.abort_at(phase, r.clone()) {
            self.events.push_back(ClientStep::Done(Box::new(o)));
        }
        self.events
            .push_back(ClientStep::Failed(Failure { phase, response: r }));
    }

    fn after_hello(&mut self) {
        if !self.tls_active && self.cfg.tls != TlsWish::No && self.ext.starttls {
            self.out.extend_from_slice(b"STARTTLS\r\n");
            self.awaiting.push_back(Awaiting::StartTls);
        } else if !self.tls_active && self.cfg.tls == TlsWish::Required {
            let r = Response::local(451, "4.7.4 TLS required but not offered by the remote host");
            self.fail_at(Phase::Ehlo, r);
        } else {
            self.login();
        }
    }

    fn on_mail(&mut self, r: Response) {
        let Some((_, o)) = &mut self.tx else { return };
        let ok = r.is_positive_completion();
        o.mail = Some(r);
        if self.pipelined {
            return; // RCPT and DATA replies follow; on_data decides.
        }
        if ok {
            self.next_rcpt(0);
        } else {
            self.finish(true);
        }
    }

    fn next_rcpt(&mut self, i: usize) {
        let Some((msg, o)) = &self.tx else { return };
        if i < msg.recipients.len() {
            let c = msg.rcpt_command(i, &self.ext);
            self.out.extend_from_slice(&c);
            self.awaiting.push_back(Awaiting::Rcpt(i));
        } else if o.accepted() > 0 {
            self.out.extend_from_slice(b"DATA\r\n");
            self.awaiting.push_back(Awaiting::Data);
        } else {
            self.finish(true);
        }
    }

    fn on_rcpt(&mut self, i: usize, r: Response) {
        let Some((_, o)) = &mut self.tx else { return };
        if let Some(slot) = o.rcpts.get_mut(i) {
            *slot = Some(r);
        }
        if !self.pipelined {
            self.next_rcpt(i + 1);
        }
    }

    fn on_data(&mut self, r: Response) {
        let Some((msg, o)) = &mut self.tx else { return };
        if r.code == 354 {
            if o.mail_ok() && o.accepted() > 0 {
                dot_stuff_into(&msg.body, &mut self.out);
                if self.cfg.protocol == Protocol::Lmtp {
                    // RFC 2033 §4.2: one reply per recipient that RCPT accepted, in order.
                    o.per_rcpt = vec![None; o.rcpts.len()];
                    for (i, rr) in o.rcpts.iter().enumerate() {
                        if rr.as_ref().is_some_and(Response::is_positive_completion) {
                            self.awaiting.push_back(Awaiting::BodyFor(i));
                        }
                    }
                } else {
                    self.awaiting.push_back(Awaiting::Body);
                }
            } else {
                // RFC 2920 §3.1: DATA accepted with no valid recipient; end it empty.
                self.out.extend_from_slice(b".\r\n");
                self.awaiting.push_back(Awaiting::EmptyBody);
            }
            return;
        }
        if o.mail_ok() && o.accepted() > 0 {
            o.data = Some(r);
            o.data_at = Some(Phase::Data);
        }
        self.finish(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_picks_the_deciding_reply() {
        let ok = Response::local(250, "2.0.0 ok");
        let bad = Response::local(550, "5.1.1 unknown");
        let o = Outcome {
            mail: Some(ok.clone()),
            rcpts: vec![Some(ok.clone()), Some(bad.clone()), None],
            data: Some(Response::local(250, "2.0.0 queued")),
            cut: None,
            cut_at: None,
            data_at: Some(Phase::Body),
            per_rcpt: Vec::new(),
        };
        assert_eq!(o.for_recipient(0).lines[0], "2.0.0 queued");
        assert_eq!(o.phase_for(0), Phase::Body);
        assert_eq!(o.phase_for(1), Phase::RcptTo);
        assert_eq!(o.for_recipient(1), &bad);
        assert_eq!(o.for_recipient(2).code, 451);
        let refused = Outcome {
            mail: Some(bad.clone()),
            ..Outcome::new(2)
        };
        assert_eq!(refused.for_recipient(1), &bad);
        assert_eq!(refused.phase_for(1), Phase::MailFrom);
    }

    /// A transaction cut short names what it was waiting for: a server that hangs up after
    /// RCPT (no pipelining) leaves the recipients at `RcptTo`.
    #[test]
    fn a_cut_transaction_remembers_its_phase() {
        let mut c = Client::new(ClientConfig {
            ehlo: "me".into(),
            tls: TlsWish::No,
            protocol: Protocol::Esmtp,
            xclient: TlsWish::No,
            transform_8bit: Transform8Bit::No,
            auth: None,
        });
        c.input(b"220 hi\r\n250 ok\r\n");
        while !matches!(c.step(), ClientStep::NeedInput | ClientStep::Ready) {}
        c.send(Outgoing {
            sender: "a@b".into(),
            recipients: vec![OutRecipient {
                address: "c@d".into(),
                notify: None,
                orcpt: None,
            }],
            body: std::sync::Arc::new(b"x\r\n".to_vec()),
            ret: None,
            envid: None,
            smtputf8: false,
            announce_8bit: false,
            origin: None,
        });
        c.input(b"250 ok\r\n");
        let _ = c.step();
        let o = c
            .abort(Response::local(451, "4.4.2 dropped"))
            .expect("in flight");
        assert_eq!(o.cut_at, Some(Phase::RcptTo));
        assert_eq!(o.phase_for(0), Phase::RcptTo);
    }
}
