//! The control listeners: `Control_Listener { Listen "/path" { } Listen "127.0.0.1:2025" { } }`.
//! The only code that reads and writes console sockets; the protocol and the commands are in
//! `bindery-control`.
//!
//! - A Unix socket is created with `File_Mode` (default 0600), replacing a stale socket file
//!   left by an earlier run. Whoever can open it is trusted, as with Momentum's console.
//! - A TCP listen must require a login: a password file
//!   (`AuthDigestMD5Parameters = [ uri = "digest:///path" ]`, or `file = "/path"`), which turns
//!   the login on unless `Enable_Authentication = false` is written along the fallback chain;
//!   without one the daemon refuses to start, so a console port is never open to anyone who
//!   can reach it. The password file is read at every connection, so editing it needs no reload.
//! - `Enable_Authorization = true` (listener, Listen or Peer) puts every command to the global
//!   `Authorization` stanza (`bindery_control::authz`). A TCP client is the user it logged in
//!   as; a Unix socket's client is its system user (`SO_PEERCRED`), as Momentum's console does.
//!   Roles come from `AuthorizationParameters = [ uri = "groups:///path" ]`, read at every
//!   connection like the password file. Each decision is an acctlog `Z` record.
//! - `Always_Allow` / `Always_Deny` (usually in a `Peer`) decide a login whatever the
//!   password; `Always_Deny` on a Unix socket closes the connection.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bindery_auth::lockout::Lockout;
use bindery_config::inbound::{self, ListenSite};
use bindery_config::schema::{ScopeKind, option_id as opt};
use bindery_config::snapshot::Snapshot;
use bindery_config::value::{ListenAddr, Value};
use bindery_control::auth::{DEFAULT_REALM, Passwords};
use bindery_control::authz::{self, Decision, Groups, RoleSource, Rules};
use bindery_control::frame::{Frame, Status};
use bindery_control::session::{Action, Authz, Login, Session};
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
    /// The listener's `Timeout`: an idle console connection is closed after this.
    pub timeout: Duration,
    /// `Concurrency` (0: 16): connections at once.
    pub concurrency: usize,
    /// Where the Listen sits in this generation's tree, for the options a client's `Peer`
    /// may set (`Enable_Authorization`, `Always_Allow`, `Always_Deny`).
    pub site: ListenSite,
    /// `AuthorizationParameters`' role source, checked at load.
    pub roles: Option<RoleSource>,
    /// The `Authorization` stanza, compiled once per generation (every plan shares it).
    pub rules: Arc<Rules>,
}

/// Every enabled `Control_Listener` `Listen`.
pub fn control_listeners(snap: &Snapshot) -> Result<Vec<ControlPlan>, ServerError> {
    let tree = &snap.tree;
    let rules = Arc::new(Rules::from_snapshot(snap));
    let mut out = Vec::new();
    for EnabledListen { site, chain, name } in enabled_listens(snap, ScopeKind::ControlListener) {
        let get = |name: &'static str| inbound::resolve(tree, &chain, opt(name));
        // The Control_Listener's `Timeout` (Momentum's default 60 s).
        let timeout = match get("timeout") {
            Some(Value::Seconds(s)) => Duration::from_secs(s.max(1)),
            _ => Duration::from_secs(60),
        };
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
        // Momentum's DIGEST-MD5 example (control-auth.md) turns the login on with the
        // password file alone; an explicit `Enable_Authentication` says otherwise either way
        // (its first example switches it off for the Unix socket under a listener-wide file).
        let digest = inbound::setting(tree, &chain, opt("authdigestmd5parameters"));
        let auth = match inbound::setting(tree, &chain, opt("enable_authentication")) {
            Some(st) => matches!(st.value, Value::Bool(true)),
            None => digest.is_some(),
        };
        let file = match digest.map(|st| &st.value) {
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
        let roles = match inbound::setting(tree, &chain, opt("authorizationparameters")) {
            Some(st) => match &st.value {
                Value::Dict(entries) => Some(
                    authz::role_source(entries)
                        .map_err(|e| located(snap, Some(st.span), e, None))?,
                ),
                _ => None,
            },
            None => None,
        };
        out.push(ControlPlan {
            name,
            addr,
            mode,
            login,
            timeout,
            concurrency,
            site,
            roles,
            rules: Arc::clone(&rules),
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
    /// The listener, its path, and the socket file to remove at stop.
    Unix(UnixListener, PathBuf, crate::privileges::Leftover),
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
            let leftover = crate::privileges::Leftover::new(path.clone());
            Socket::Unix(listener, path, leftover)
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
        Socket::Unix(listener, path, leftover) => {
            tracing::info!(listen = %plan.name, path = %path.display(), "listening (control)");
            tokio::spawn(async move {
                accept_loop(listener, shared, plan, shutdown).await;
                leftover.remove();
            });
        }
        Socket::Tcp(listener, local) => {
            tracing::info!(listen = %plan.name, addr = %local, "listening (control)");
            tokio::spawn(accept_loop(listener, shared, plan, shutdown));
        }
    }
}

/// Who is on the other end of a console connection.
#[derive(Clone, Debug)]
enum Client {
    /// A TCP client: its address (the login lockout, `Peer` scopes, the log).
    Tcp(SocketAddr),
    /// A Unix socket's client: its system user name (or uid), when the kernel says.
    Unix(Option<String>),
}

impl Client {
    fn ip(&self) -> Option<IpAddr> {
        match self {
            Client::Tcp(a) => Some(a.ip()),
            Client::Unix(_) => None,
        }
    }

    /// The acctlog's peer field: `ip:port`, empty for a Unix socket.
    fn peer(&self) -> String {
        match self {
            Client::Tcp(a) => a.to_string(),
            Client::Unix(_) => String::new(),
        }
    }
}

/// The system user name of a uid, else the uid itself.
fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => u.name,
        _ => uid.to_string(),
    }
}

/// A listening socket the console accepts on: Unix or TCP.
trait Accept: Send + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept_one(
        &self,
    ) -> impl std::future::Future<Output = std::io::Result<(Self::Stream, Client)>> + Send;
}

impl Accept for UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept_one(&self) -> std::io::Result<(Self::Stream, Client)> {
        let (s, _) = self.accept().await?;
        let user = s.peer_cred().ok().map(|c| user_name(c.uid()));
        Ok((s, Client::Unix(user)))
    }
}

impl Accept for TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept_one(&self) -> std::io::Result<(Self::Stream, Client)> {
        self.accept().await.map(|(s, a)| (s, Client::Tcp(a)))
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
            Ok((stream, client)) => {
                backoff.succeeded();
                if let Some(stream) = gate.admit(stream) {
                    tokio::spawn(session(
                        Arc::clone(&shared),
                        stream,
                        client,
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
fn login_for(plan: &ControlPlan, always: Option<bool>) -> Option<Login> {
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
        always,
    })
}

/// What one client of a console listener is allowed, from the generation in force when it
/// connected (a `config reload` changes the rules for the next connection).
struct Access {
    /// The listener's plan in that generation (the accept loop's when the Listen is gone).
    plan: ControlPlan,
    /// `Always_Allow` (`Some(true)`) or `Always_Deny` (`Some(false)`, which wins).
    always: Option<bool>,
    authz: Option<Authz>,
}

fn access(shared: &Shared, started: &ControlPlan, ip: Option<IpAddr>) -> Access {
    let generation = shared.current();
    let Some(plan) = generation.controls.iter().find(|p| p.name == started.name) else {
        // The Listen left the configuration: nothing of the new one speaks for it.
        return Access {
            plan: started.clone(),
            always: None,
            authz: None,
        };
    };
    let tree = &generation.snapshot.tree;
    let chain = inbound::chain(tree, &plan.site, ip);
    let on = |name: &'static str| {
        matches!(
            inbound::resolve(tree, &chain, opt(name)),
            Some(Value::Bool(true))
        )
    };
    let always = if on("always_deny") {
        Some(false)
    } else if on("always_allow") {
        Some(true)
    } else {
        None
    };
    let authz = on("enable_authorization").then(|| {
        let groups = match &plan.roles {
            Some(RoleSource::Groups(path)) => match std::fs::read_to_string(path) {
                Ok(text) => Groups::parse(&text),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "console role file unreadable; users hold only the roles named after them");
                    Groups::default()
                }
            },
            None => Groups::default(),
        };
        Authz {
            rules: Arc::clone(&plan.rules),
            groups: Arc::new(groups),
        }
    });
    Access {
        plan: plan.clone(),
        always,
        authz,
    }
}

/// The acctlog's authentication record for a console login.
fn acct(shared: &Shared, plan: &ControlPlan, client: &Client, user: &str, ok: bool) {
    shared.eclogs.authentication(
        crate::unix_now(),
        &crate::smtp_auth::acct_listener(&plan.name),
        &client.peer(),
        user,
        ok,
    );
}

async fn session<S>(
    shared: Arc<Shared>,
    mut stream: S,
    client: Client,
    lockout: Arc<Lockout>,
    started: ControlPlan,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let peer = client.ip();
    let Access {
        plan,
        always,
        authz,
    } = access(&shared, &started, peer);
    let login = login_for(&plan, always);
    let who = match &client {
        Client::Tcp(a) => a.to_string(),
        Client::Unix(u) => format!("local ({})", u.as_deref().unwrap_or("unknown user")),
    };
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
    let needs_login = login.is_some();
    let mut session = Session::new(login);
    if let Client::Unix(user) = &client
        && !needs_login
    {
        // No login on this socket: its client is its system user, as in Momentum.
        let user = user.clone().unwrap_or_default();
        if always == Some(false) {
            tracing::warn!(listen = %plan.name, user = %user, "console connection refused: Always_Deny");
            acct(&shared, &plan, &client, &user, false);
            let bye = Frame::new(Status::Bye, "access denied");
            let _ = stream.write_all(&bye.encode()).await;
            return;
        }
        if authz.is_some() {
            acct(&shared, &plan, &client, &user, true);
        }
        session = session.with_user(user);
    }
    if let Some(a) = authz {
        session = session.with_authz(a);
    }
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
                acct(&shared, &plan, &client, &user, false);
                tokio::time::sleep(FAILURE_DELAY).await;
            } else if let Some(user) = session.take_login() {
                if let Some(ip) = peer {
                    lockout.succeeded(ip);
                }
                tracing::info!(listen = %plan.name, peer = %who, user = %user, "console login");
                acct(&shared, &plan, &client, &user, true);
            }
            if let Some(a) = session.take_authorization() {
                let role = match &a.decision {
                    Decision::Allowed { role } => Some(role.as_str()),
                    Decision::Denied => {
                        tracing::warn!(listen = %plan.name, peer = %who, user = %a.user, command = %a.command, "console command not authorized");
                        None
                    }
                };
                shared.eclogs.authorization(
                    crate::unix_now(),
                    &crate::smtp_auth::acct_listener(&plan.name),
                    &client.peer(),
                    &a.user,
                    &a.command,
                    role,
                );
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
