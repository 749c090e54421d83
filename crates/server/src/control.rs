//! The control listeners: `Control_Listener { Listen "/path" { } Listen "127.0.0.1:2025" { } }`.
//! The only code that reads and writes console sockets; the protocol and the commands are in
//! `bindery-control`.
//!
//! - A Unix socket is created with `File_Mode` (default 0600), replacing a stale socket file
//!   left by an earlier run. Whoever can open it is trusted, as with Momentum's console.
//! - A TCP listen must have `Enable_Authentication = true` and a password file
//!   (`AuthDigestMD5Parameters = [ uri = "digest:///path" ]`, or `file = "/path"`); without
//!   both the daemon refuses to start, so a console port is never open to anyone who can
//!   reach it. The password file is read at every connection, so editing it needs no reload.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bindery_config::inbound;
use bindery_config::schema::{ScopeKind, option_id as opt};
use bindery_config::snapshot::Snapshot;
use bindery_config::value::{ListenAddr, Value};
use bindery_control::auth::{DEFAULT_REALM, Passwords};
use bindery_control::frame::{Frame, Status};
use bindery_control::lockout::Lockout;
use bindery_control::session::{Action, Login, Session};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

use crate::guard::{Backoff, CONTROL_CONCURRENCY, Gate};
use crate::settings::{
    EnabledListen, enabled_listens, listen_span, located, side_limits, socket_addr,
};
use crate::{ServerError, Shared};

/// Where and how one console listens.
#[derive(Clone, Debug)]
pub struct ControlPlan {
    pub name: String,
    pub addr: ListenAddr,
    pub mode: u32,
    /// `Some` where clients must log in: (realm, password file).
    pub login: Option<(String, PathBuf)>,
    /// `Control_Client_Timeout`: an idle console connection is closed after this.
    pub timeout: Duration,
    /// `Concurrency` (0: 16): connections at once.
    pub concurrency: usize,
}

/// Every enabled `Control_Listener` `Listen`.
pub fn control_listeners(snap: &Snapshot) -> Result<Vec<ControlPlan>, ServerError> {
    let tree = &snap.tree;
    let timeout = match snap.global(opt("control_client_timeout")) {
        Some(Value::Seconds(s)) => Duration::from_secs((*s).max(1)),
        _ => Duration::from_secs(60),
    };
    let mut out = Vec::new();
    for EnabledListen { site, chain, name } in enabled_listens(snap, ScopeKind::ControlListener) {
        let get = |name: &'static str| inbound::resolve(tree, &chain, opt(name));
        let here = listen_span(snap, &site);
        let Some(addr) = site.addr.clone() else {
            return Err(located(
                snap,
                here,
                format!(
                    "Control_Listener Listen \"{name}\" is neither a socket path nor an address"
                ),
                None,
            ));
        };
        let mode = match get("file_mode") {
            Some(Value::Mode(m)) => m,
            _ => 0o600,
        };
        let auth = matches!(get("enable_authentication"), Some(Value::Bool(true)));
        let file = match get("authdigestmd5parameters") {
            Some(Value::Dict(entries)) => entries
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("uri") || k.eq_ignore_ascii_case("file"))
                .map(|(_, v)| PathBuf::from(v.strip_prefix("digest://").unwrap_or(v)))
                .map(|p| {
                    let realm = entries
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("realm"))
                        .map_or(DEFAULT_REALM.to_string(), |(_, v)| v.clone());
                    (realm, p)
                }),
            _ => None,
        };
        let login = match (auth, file, &addr) {
            (true, Some(f), _) => Some(f),
            (true, None, _) => {
                return Err(located(
                    snap,
                    here,
                    format!(
                        "Control_Listener Listen \"{name}\": Enable_Authentication needs a \
                         password file"
                    ),
                    Some("AuthDigestMD5Parameters = [ uri = \"digest:///path/to/passwd\" ]"),
                ));
            }
            (false, _, ListenAddr::Tcp { .. }) => {
                return Err(located(
                    snap,
                    here,
                    format!(
                        "Control_Listener Listen \"{name}\": a TCP console must require a login"
                    ),
                    Some(
                        "set Enable_Authentication = true and AuthDigestMD5Parameters, or use \
                         a Unix socket for an unauthenticated local console",
                    ),
                ));
            }
            (false, _, ListenAddr::Unix(_)) => None,
        };
        let (concurrency, _) = side_limits(snap, &chain, CONTROL_CONCURRENCY);
        out.push(ControlPlan {
            name,
            addr,
            mode,
            login,
            timeout,
            concurrency,
        });
    }
    Ok(out)
}

/// A console listener bound and not yet served.
pub struct Bound {
    plan: ControlPlan,
    socket: Socket,
}

enum Socket {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener, std::net::SocketAddr),
}

/// Binds one console listener. Nothing is served until [`serve`]: the daemon binds every
/// listener first, so that a later one failing leaves nothing half-started.
pub async fn bind(plan: ControlPlan) -> Result<Bound, ServerError> {
    let io = |what: String| move |source| ServerError::Io { what, source };
    let socket = match plan.addr.clone() {
        ListenAddr::Unix(path) => {
            let path = PathBuf::from(path);
            if let Ok(meta) = std::fs::symlink_metadata(&path) {
                use std::os::unix::fs::FileTypeExt;
                // A socket nobody answers on is left over from an earlier run; one that
                // answers belongs to a running daemon and is not ours to take.
                if meta.file_type().is_socket() {
                    if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                        return Err(ServerError::Config(format!(
                            "console socket {} is in use by another daemon",
                            path.display()
                        )));
                    }
                    let _ = std::fs::remove_file(&path);
                }
            }
            let listener = UnixListener::bind(&path)
                .map_err(io(format!("cannot listen on {}", path.display())))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(plan.mode))
                .map_err(io(format!("cannot set the mode of {}", path.display())))?;
            Socket::Unix(listener, path)
        }
        ListenAddr::Tcp { ip, port } => {
            let (listener, local) = crate::bind_tcp(socket_addr(ip, port)).await?;
            Socket::Tcp(listener, local)
        }
    };
    Ok(Bound { plan, socket })
}

/// Serves a bound console listener until shutdown.
pub fn serve(shared: Arc<Shared>, bound: Bound, shutdown: watch::Receiver<bool>) {
    let Bound { plan, socket } = bound;
    match socket {
        Socket::Unix(listener, path) => {
            tracing::info!(listen = %plan.name, path = %path.display(), "listening (control)");
            tokio::spawn(async move {
                accept_loop(listener, shared, plan, shutdown).await;
                let _ = std::fs::remove_file(&path);
            });
        }
        Socket::Tcp(listener, local) => {
            tracing::info!(listen = %plan.name, addr = %local, "listening (control)");
            tokio::spawn(accept_loop(listener, shared, plan, shutdown));
        }
    }
}

/// A listening socket the console accepts on: Unix or TCP. A TCP client comes with its
/// address (for the login lockout and the log).
trait Accept: Send + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept_one(
        &self,
    ) -> impl std::future::Future<Output = std::io::Result<(Self::Stream, Option<IpAddr>)>> + Send;
}

impl Accept for UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept_one(&self) -> std::io::Result<(Self::Stream, Option<IpAddr>)> {
        self.accept().await.map(|(s, _)| (s, None))
    }
}

impl Accept for TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept_one(&self) -> std::io::Result<(Self::Stream, Option<IpAddr>)> {
        self.accept().await.map(|(s, a)| (s, Some(a.ip())))
    }
}

/// How long a wrong console password waits for its answer: one connection guesses at most
/// once a second, and an address ten times a minute ([`Lockout`]).
const FAILURE_DELAY: Duration = Duration::from_secs(1);

/// Accepts console connections through the side listeners' [`Gate`]: at most
/// `Concurrency` at once, none past the descriptor reserve, every write bounded (a read is
/// bounded by `Control_Client_Timeout` in [`session`], the gate's deadline a little later), and
/// a failing accept (out of descriptors) backs off instead of spinning.
async fn accept_loop<L: Accept>(
    listener: L,
    shared: Arc<Shared>,
    plan: ControlPlan,
    shutdown: watch::Receiver<bool>,
) {
    let mut stop = shutdown.clone();
    let gate = Gate::new(
        "control",
        plan.concurrency,
        plan.timeout + Duration::from_secs(5),
    );
    let mut backoff = Backoff::new("control");
    let lockout = Arc::new(Lockout::default());
    loop {
        let accepted = tokio::select! {
            r = listener.accept_one() => r,
            _ = stop.changed() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff.succeeded();
                if let Some(stream) = gate.admit(stream) {
                    tokio::spawn(session(
                        Arc::clone(&shared),
                        stream,
                        peer,
                        Arc::clone(&lockout),
                        plan.clone(),
                        shutdown.clone(),
                    ));
                }
            }
            Err(e) => backoff.failed(&e).await,
        }
    }
}

/// Reads the password file for a login; a file that cannot be read or parsed lets nobody
/// in, and says why in the log.
fn login_for(plan: &ControlPlan) -> Option<Login> {
    let (realm, path) = plan.login.as_ref()?;
    let passwords = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|t| Passwords::parse(&t, realm))
    {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "console password file unusable; nobody can log in");
            Passwords::default()
        }
    };
    Some(Login {
        realm: realm.clone(),
        passwords: Arc::new(passwords),
    })
}

/// The acctlog's authentication record for a console login (Momentum writes the peer's
/// `ip:port`; the console knows the address only).
fn acct(shared: &Shared, plan: &ControlPlan, peer: Option<IpAddr>, user: &str, ok: bool) {
    let peer = peer.map(|p| p.to_string()).unwrap_or_default();
    shared
        .eclogs
        .authentication(crate::unix_now(), &plan.name, &peer, user, ok);
}

async fn session<S>(
    shared: Arc<Shared>,
    mut stream: S,
    peer: Option<IpAddr>,
    lockout: Arc<Lockout>,
    plan: ControlPlan,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let login = login_for(&plan);
    let who = peer.map_or_else(|| "local".to_string(), |p| p.to_string());
    if let Some(ip) = peer.filter(|_| login.is_some())
        && lockout.locked(ip, crate::unix_now())
    {
        tracing::warn!(listen = %plan.name, peer = %ip, "console login refused: too many failed logins from this address");
        let bye = Frame::new(
            Status::Bye,
            "too many failed logins from your address; try again later",
        );
        let _ = stream.write_all(&bye.encode()).await;
        return;
    }
    let mut session = Session::new(login);
    if stream
        .write_all(&session.greeting().encode())
        .await
        .is_err()
    {
        return;
    }
    let mut buf = vec![0u8; 8192];
    loop {
        while let Some(action) = session.next_action() {
            if let Some(user) = session.take_failure() {
                let n = peer.map_or(0, |ip| lockout.failed(ip, crate::unix_now()));
                tracing::warn!(listen = %plan.name, peer = %who, user = %user, failures = n, "console login failed");
                acct(&shared, &plan, peer, &user, false);
                tokio::time::sleep(FAILURE_DELAY).await;
            } else if let Some(user) = session.take_login() {
                if let Some(ip) = peer {
                    lockout.succeeded(ip);
                }
                tracing::info!(listen = %plan.name, peer = %who, user = %user, "console login");
                acct(&shared, &plan, peer, &user, true);
            }
            let (frame, close) = match action {
                Action::Send(f) => (f, false),
                Action::Close(f) => (f, true),
                Action::Run { words, json } => {
                    tracing::info!(user = session.user.as_deref().unwrap_or("-"), command = %words.join(" "), "console command");
                    let out = bindery_control::run(&*shared, &words).await;
                    let status = if out.ok { Status::Ok } else { Status::Error };
                    let body = if json {
                        out.json.to_string()
                    } else {
                        out.display()
                    };
                    (Frame::new(status, body), false)
                }
            };
            if stream.write_all(&frame.encode()).await.is_err() || close {
                return;
            }
        }
        let read = tokio::select! {
            r = tokio::time::timeout(plan.timeout, stream.read(&mut buf)) => r,
            _ = shutdown.changed() => {
                let _ = stream.write_all(&Frame::new(Status::Bye, "shutting down").encode()).await;
                return;
            }
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => session.input(&buf[..n]),
            Err(_) => {
                let _ = stream
                    .write_all(&Frame::new(Status::Bye, "idle timeout").encode())
                    .await;
                return;
            }
        }
    }
}
