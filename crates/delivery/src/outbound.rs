//! One outbound SMTP connection: the only code that reads and writes a remote server's socket.
//! It connects from the binding's source address, drives the sans-IO [`Client`], upgrades
//! to TLS on STARTTLS, and applies the timeout of each phase.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bindery_smtp::client::{Client, ClientConfig, ClientStep, Outcome, Outgoing, Phase, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::options::Timeouts;
use crate::route::Target;
use crate::stream::Stream;

/// Why a connection could not be used, with the reply that stands for it in logs and DSNs.
#[derive(Clone, Debug)]
pub struct ConnectFailure {
    pub response: Response,
    /// The TLS handshake failed (so a plaintext retry may help under `ifavailable`).
    pub tls_failed: bool,
    /// The server answered and refused us (a login): no outage of the destination, so its
    /// parts are deferred at once with this reply.
    pub answered: bool,
}

/// A connected, greeted session, ready for transactions.
pub struct Outbound {
    stream: Stream,
    client: Client,
    timeouts: Timeouts,
    pub target: Target,
    /// Our end of the connection: the source address the remote saw.
    pub local: SocketAddr,
    buf: Vec<u8>,
    broken: bool,
    /// The remote closed or reset the connection (as opposed to a timeout or a reply).
    dropped: bool,
    /// The reply awaited (phase, replies so far) and when waiting for it must end.
    wait: Option<((Phase, u64), tokio::time::Instant)>,
    /// The connection's id in Momentum's logs (set by the engine once connected).
    pub id: String,
    /// Bytes written on the connection so far, and when the current transaction began.
    sent: u64,
    tx_start: u64,
}

/// A failure we describe ourselves: always transient (`451`).
fn local_failure(text: String) -> ConnectFailure {
    ConnectFailure {
        response: Response::local(451, text),
        tls_failed: false,
        answered: false,
    }
}

/// Opens a TCP connection to `to` from `source` (any port), within `timeout`.
async fn connect_from(
    source: Option<IpAddr>,
    to: SocketAddr,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    let socket = if to.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    match tokio::time::timeout(timeout, socket.connect(to)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect timed out",
        )),
    }
}

impl Outbound {
    /// Connects and runs the handshake (greeting, EHLO, STARTTLS if `session.tls` wants it
    /// and the server offers it), in `session.protocol` (ESMTP, SMTP or LMTP).
    pub async fn open(
        target: &Target,
        source: Option<IpAddr>,
        session: ClientConfig,
        tls_config: Option<&Arc<rustls::ClientConfig>>,
        timeouts: Timeouts,
    ) -> Result<Outbound, ConnectFailure> {
        if let Some(ip) = source
            && ip.is_ipv4() != target.addr.is_ipv4()
        {
            return Err(local_failure(format!(
                "4.4.1 source {ip} cannot reach {}",
                target.addr
            )));
        }
        let tcp = connect_from(source, target.addr, timeouts.connect)
            .await
            .map_err(|e| {
                local_failure(format!(
                    "4.4.1 connection to {} [{}] failed: {e}",
                    target.host, target.addr
                ))
            })?;
        let _ = tcp.set_nodelay(true);
        let local = tcp
            .local_addr()
            .map_err(|e| local_failure(format!("4.4.1 {e}")))?;
        let mut ob = Outbound {
            stream: Stream::Plain(tcp),
            client: Client::new(session),
            timeouts,
            target: target.clone(),
            local,
            // Replies are short (a larger pipelined batch takes another read), and with a
            // connection per binding to one MX, 16 KB each was a third of the daemon's RSS.
            buf: vec![0; 1024],
            broken: false,
            dropped: false,
            wait: None,
            id: String::new(),
            sent: 0,
            tx_start: 0,
        };
        loop {
            match ob.next_step().await {
                ClientStep::Ready => return Ok(ob),
                ClientStep::StartTls => {
                    let r = match tls_config {
                        Some(cfg) => ob.start_tls(cfg).await,
                        None => Err(std::io::Error::other("no TLS configuration")),
                    };
                    if let Err(e) = r {
                        return Err(ConnectFailure {
                            response: Response::local(
                                451,
                                format!("4.7.5 TLS handshake with {} failed: {e}", target.addr),
                            ),
                            tls_failed: true,
                            answered: false,
                        });
                    }
                    ob.client.tls_started();
                }
                ClientStep::Failed(f) => {
                    return Err(ConnectFailure {
                        answered: f.phase == Phase::Auth,
                        response: f.response,
                        tls_failed: false,
                    });
                }
                ClientStep::Done(_) | ClientStep::Closed | ClientStep::NeedInput => {
                    return Err(local_failure(
                        "4.4.2 connection closed during greeting".into(),
                    ));
                }
            }
        }
    }

    async fn start_tls(&mut self, cfg: &Arc<rustls::ClientConfig>) -> std::io::Result<()> {
        let name = match self.target.host.parse::<IpAddr>() {
            Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
            Err(_) => rustls::pki_types::ServerName::try_from(self.target.host.clone())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
        };
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Closed) else {
            return Err(std::io::Error::other("not a plaintext stream"));
        };
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(cfg));
        let tls = tokio::time::timeout(self.timeouts.ehlo, connector.connect(name, tcp))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
            })??;
        self.stream = Stream::Tls(Box::new(tokio_rustls::TlsStream::Client(tls)));
        Ok(())
    }

    fn phase_timeout(&self) -> Duration {
        let t = &self.timeouts;
        match self.client.phase() {
            Phase::Greeting | Phase::Ehlo | Phase::StartTls | Phase::Auth => t.ehlo,
            Phase::MailFrom => t.mailfrom,
            Phase::RcptTo | Phase::Data => t.rcptto,
            Phase::Body => t.body,
            Phase::Rset | Phase::Quit => t.rset,
            Phase::Ready | Phase::Closed => t.idle,
        }
    }

    /// When waiting for the reply awaited now must end. Each reply gets its phase's timeout
    /// once, from when we began to wait for it: a server that trickles a `220-` greeting a
    /// byte at a time cannot hold the connection past `ehlo_timeout` (a timeout per read
    /// let one hold it for as long as it kept sending).
    fn deadline(&mut self) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        let mark = (self.client.phase(), self.client.replies());
        match self.wait {
            Some((m, at)) if m == mark => at,
            _ => {
                let at = now + self.phase_timeout();
                self.wait = Some((mark, at));
                at
            }
        }
    }

    /// Writes what the client has to say, then reads until it has something to report.
    async fn next_step(&mut self) -> ClientStep {
        loop {
            if !self.client.output().is_empty() {
                let until = self.deadline();
                let out = self.client.output();
                self.sent += out.len() as u64;
                let w = tokio::time::timeout_at(until, self.stream.write_all(out)).await;
                self.client.clear_output();
                match w {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => {
                        self.dropped = true;
                        return self.cut("4.4.2 connection lost while sending");
                    }
                    Err(_) => return self.cut("4.4.2 timeout while sending"),
                }
            }
            match self.client.step() {
                ClientStep::NeedInput => {}
                step => return step,
            }
            // Output produced by the step goes out before we wait for more input.
            if !self.client.output().is_empty() {
                continue;
            }
            let until = self.deadline();
            match tokio::time::timeout_at(until, self.stream.read(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    self.dropped = true;
                    return self.cut("4.4.2 connection dropped by remote");
                }
                Ok(Ok(n)) => {
                    let (client, buf) = (&mut self.client, &self.buf);
                    client.input(&buf[..n]);
                }
                Err(_) => {
                    let phase = self.client.phase();
                    return self.cut(&format!("4.4.2 timeout waiting for reply ({phase:?})"));
                }
            }
        }
    }

    /// The connection is gone: report the transaction in flight (if any) cut short.
    fn cut(&mut self, text: &str) -> ClientStep {
        self.broken = true;
        let reason = Response::local(451, text.to_string());
        match self.client.abort(reason.clone()) {
            Some(o) => ClientStep::Done(Box::new(o)),
            None => ClientStep::Failed(bindery_smtp::client::Failure {
                phase: Phase::Closed,
                response: reason,
            }),
        }
    }

    /// Whether the remote has hung up on, or spoken unasked into, this idle connection: an
    /// EOF, a reset, or bytes nobody asked for (Postfix's smtpd says `421 4.4.2 ... timeout
    /// exceeded` before it closes an idle session). Such a connection cannot take a
    /// transaction. Looks once at what is already there; never waits.
    pub fn stale(&mut self) -> bool {
        use std::task::{Context, Poll, Waker};
        use tokio::io::{AsyncRead, ReadBuf};
        if !self.usable() {
            return true;
        }
        let mut cx = Context::from_waker(Waker::noop());
        let mut one = [0u8; 512];
        let mut rb = ReadBuf::new(&mut one);
        let stale = match std::pin::Pin::new(&mut self.stream).poll_read(&mut cx, &mut rb) {
            Poll::Pending => false,
            Poll::Ready(Ok(())) | Poll::Ready(Err(_)) => true,
        };
        if stale {
            self.broken = true;
            self.dropped = true;
        }
        stale
    }

    /// Whether the remote closed the connection before it answered this transaction's MAIL:
    /// nothing of the message can have been accepted, so it is no delivery attempt.
    pub fn dropped_before_mail(&self, outcome: &Outcome) -> bool {
        self.dropped && outcome.mail.is_none()
    }

    /// Bytes written in the latest transaction (the mainlog's "transferred before the
    /// failure"); counted as handed to the socket, so a write cut short counts whole.
    pub fn transaction_bytes(&self) -> u64 {
        self.sent - self.tx_start
    }

    /// The session runs over TLS.
    pub fn tls(&self) -> bool {
        self.client.tls_active()
    }

    /// What the server offered in its latest EHLO.
    pub fn extensions(&self) -> &bindery_smtp::client::Extensions {
        self.client.extensions()
    }

    /// Whether the session can take another transaction.
    pub fn usable(&self) -> bool {
        !self.broken && self.client.phase() != Phase::Closed
    }

    /// Runs one transaction. Always returns its outcome; after a failure mid-way
    /// (`usable()` false) every unfinished recipient carries the reason.
    pub async fn send(&mut self, msg: Outgoing) -> Outcome {
        self.tx_start = self.sent;
        let n = msg.recipients.len();
        self.client.send(msg);
        let mut outcome = None;
        loop {
            match self.next_step().await {
                ClientStep::Done(o) => {
                    outcome = Some(*o);
                    if !self.usable() {
                        break;
                    }
                }
                ClientStep::Ready => break,
                ClientStep::Failed(f) => {
                    self.broken = true;
                    if outcome.is_none() {
                        outcome = Some(Outcome::cut_short(n, f.response));
                    }
                    break;
                }
                ClientStep::StartTls | ClientStep::Closed | ClientStep::NeedInput => {
                    self.broken = true;
                    break;
                }
            }
        }
        outcome
            .unwrap_or_else(|| Outcome::cut_short(n, Response::local(451, "4.4.2 connection lost")))
    }

    /// Says QUIT and closes, waiting at most `rset_timeout` for the answer.
    pub async fn quit(mut self) {
        if self.usable() {
            self.client.quit();
            let _ = tokio::time::timeout(self.timeouts.rset, self.next_step()).await;
        }
        let _ = self.stream.shutdown().await;
    }
}
