//! `HTTP_Listener { Listen "127.0.0.1:8080" { } }`: `GET /metrics` in Prometheus text (the
//! figures are gathered at each scrape by `bindery_control::metrics`), and, where the Listen
//! names an `API_Key_File`, the Transmissions API (`transmissions.rs`). Connections go through
//! the side listeners' [`Gate`](crate::guard::Gate): `Concurrency` (0: 64) at once, each
//! closed after `Idle_Time` without progress either way, none past the descriptor reserve.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use bindery_config::schema::ScopeKind;
use bindery_config::snapshot::Snapshot;
use bindery_config::value::Value;
use tokio::sync::watch;

use crate::guard::{Backoff, Deadline, Gate, HTTP_CONCURRENCY};
use crate::settings::{enabled_listens, listen_span, located, side_limits, tcp_addr};
use crate::{ServerError, Shared};

/// Where and how one HTTP listener listens.
#[derive(Clone, Debug)]
pub struct HttpPlan {
    pub addr: std::net::SocketAddr,
    pub concurrency: usize,
    /// `Idle_Time`: a connection making no progress either way is closed after this.
    pub idle: Duration,
    /// The Transmissions API, where the Listen names its key file.
    pub api: Option<crate::transmissions::ApiPlan>,
    /// The Listen's name, for the mainlog.
    pub name: String,
}

/// Every enabled `HTTP_Listener` `Listen`.
pub fn http_listeners(snap: &Snapshot) -> Result<Vec<HttpPlan>, ServerError> {
    enabled_listens(snap, ScopeKind::HttpListener)
        .into_iter()
        .map(|l| {
            let addr = l.site.addr.as_ref().and_then(tcp_addr).ok_or_else(|| {
                located(
                    snap,
                    listen_span(snap, &l.site),
                    format!("HTTP_Listener Listen \"{}\" is not a TCP address", l.name),
                    Some("an HTTP listener listens on \"IP:PORT\" or \":PORT\""),
                )
            })?;
            let (concurrency, idle) = side_limits(snap, &l.chain, HTTP_CONCURRENCY);
            let tree = &snap.tree;
            // HTTP listeners speak plain HTTP: a certificate here would be a promise of TLS
            // that is not kept (with API keys on the wire), so it is refused.
            for name in ["tls_certificate", "tls_key", "tls_client_ca", "use_ssl"] {
                // Only where the listener's own scopes set it: a global certificate is
                // the ESMTP listeners' and delivery's.
                if let Some((scope, st)) = bindery_config::inbound::setting_at(
                    tree,
                    &l.chain,
                    bindery_config::schema::option_id(name),
                ) && scope != bindery_config::tree::ROOT
                {
                    return Err(located(
                        snap,
                        Some(st.span),
                        format!(
                            "HTTP_Listener Listen \"{}\": bindery's HTTP listeners speak plain HTTP, so {} would do nothing",
                            l.name,
                            st.option.def().name
                        ),
                        Some("listen on loopback or a private network, and put a TLS proxy (HAProxy, nginx) in front for clients elsewhere"),
                    ));
                }
            }
            let api = match bindery_config::inbound::setting(
                tree,
                &l.chain,
                bindery_config::schema::option_id("api_key_file"),
            ) {
                Some(st) => {
                    let Value::Path(p) = &st.value else {
                        return Err(located(snap, Some(st.span), "expected a path".into(), None));
                    };
                    let file = crate::transmissions::KeyFile::new(p.into());
                    if let Err(e) = file.keys() {
                        return Err(located(
                            snap,
                            Some(st.span),
                            format!("cannot use the API key file: {e}"),
                            Some("one NAME:SHA256:PERMISSIONS line per key; `bindery api-key NAME` makes one"),
                        ));
                    }
                    let max = match bindery_config::inbound::resolve(
                        tree,
                        &l.chain,
                        bindery_config::schema::option_id("api_max_request_size"),
                    ) {
                        Some(Value::Bytes(n)) => n as usize,
                        _ => 20 * 1024 * 1024,
                    };
                    Some(crate::transmissions::ApiPlan {
                        keys: p.into(),
                        max_body: max,
                    })
                }
                None => None,
            };
            Ok(HttpPlan {
                addr,
                concurrency,
                idle,
                api,
                name: l.name.clone(),
            })
        })
        .collect()
}

/// The listener's accepted connections, gated.
struct Gated {
    tcp: tokio::net::TcpListener,
    gate: Gate,
    backoff: Backoff,
}

impl axum::serve::Listener for Gated {
    type Io = Deadline<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.tcp.accept().await {
                Ok((tcp, peer)) => {
                    self.backoff.succeeded();
                    if let Some(io) = self.gate.admit(tcp) {
                        return (io, peer);
                    }
                }
                Err(e) => self.backoff.failed(&e).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// The client's address, for handlers that log it (`ConnectInfo<Peer>`).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub std::net::SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Gated>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Gated>) -> Self {
        Peer(*stream.remote_addr())
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let text = bindery_control::metrics::render(&*shared);
    (
        [(CONTENT_TYPE, bindery_control::metrics::CONTENT_TYPE)],
        text,
    )
}

/// Binds one HTTP listener; nothing is served until [`serve`].
pub async fn bind(
    plan: HttpPlan,
) -> Result<(HttpPlan, tokio::net::TcpListener, std::net::SocketAddr), ServerError> {
    let (tcp, local) = crate::bind_tcp(plan.addr).await?;
    Ok((plan, tcp, local))
}

/// Serves a bound HTTP listener until shutdown.
pub fn serve(
    shared: Arc<Shared>,
    (plan, tcp, local): (HttpPlan, tokio::net::TcpListener, std::net::SocketAddr),
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::info!(addr = %local, concurrency = plan.concurrency, "listening (HTTP)");
    let listener = Gated {
        tcp,
        gate: Gate::new("http", plan.concurrency, plan.idle),
        backoff: Backoff::new("http"),
    };
    let mut app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(Arc::clone(&shared));
    if let Some(api) = &plan.api {
        use axum::routing::{any, post};
        let state = Arc::new(crate::transmissions::Api {
            shared,
            keys: crate::transmissions::KeyFile::new(api.keys.clone()),
            max_body: api.max_body,
            listener: plan.name.clone(),
        });
        let tx = post(crate::transmissions::post).fallback(crate::transmissions::method);
        let api_routes = Router::new()
            .route("/api/v1/transmissions", tx.clone())
            .route("/api/v1/transmissions/", tx)
            .route("/api/{*rest}", any(crate::transmissions::not_found))
            // The body is read by the handler against API_Max_Request_Size, so axum's own
            // 2 MB default does not answer first with a plain-text 413.
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(state);
        app = app.merge(api_routes);
        tracing::info!(addr = %local, "Transmissions API on this listener");
    }
    let app = app.into_make_service_with_connect_info::<Peer>();
    tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.changed().await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::warn!(error = %e, "HTTP listener stopped");
        }
    });
}
