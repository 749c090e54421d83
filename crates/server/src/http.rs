//! `HTTP_Listener { Listen "127.0.0.1:8080" { } }`: `GET /metrics` in Prometheus text. The
//! figures are gathered at each scrape by `bindery_control::metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use bindery_config::inbound;
use bindery_config::schema::{ScopeKind, option_id as opt};
use bindery_config::snapshot::Snapshot;
use bindery_config::value::{ListenAddr, Value};
use tokio::sync::watch;

use crate::{ServerError, Shared};

/// Every enabled `HTTP_Listener` `Listen` address.
pub fn http_listeners(snap: &Snapshot) -> Result<Vec<std::net::SocketAddr>, ServerError> {
    let tree = &snap.tree;
    let mut out = Vec::new();
    for site in inbound::listens(tree, ScopeKind::HttpListener) {
        let chain = inbound::chain(tree, &site, None);
        if matches!(
            inbound::resolve(tree, &chain, opt("enable")),
            Some(Value::Bool(false))
        ) {
            continue;
        }
        match &site.addr {
            Some(ListenAddr::Tcp { ip, port }) => out.push(std::net::SocketAddr::new(
                ip.unwrap_or(std::net::IpAddr::from([0, 0, 0, 0])),
                *port,
            )),
            _ => {
                let name = tree.scope(site.listen).name.clone().unwrap_or_default();
                return Err(ServerError::Config(format!(
                    "HTTP_Listener Listen \"{name}\" is not a TCP address"
                )));
            }
        }
    }
    Ok(out)
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let text = bindery_control::metrics::render(&*shared);
    (
        [(CONTENT_TYPE, bindery_control::metrics::CONTENT_TYPE)],
        text,
    )
}

/// Binds and serves until shutdown; returns the bound address.
pub async fn start(
    shared: Arc<Shared>,
    addr: std::net::SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) -> Result<std::net::SocketAddr, ServerError> {
    let (listener, local) = crate::bind_tcp(addr).await?;
    tracing::info!(addr = %local, "listening (HTTP)");
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(shared);
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
    Ok(local)
}
