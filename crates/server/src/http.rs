//! `HTTP_Listener { Listen "127.0.0.1:8080" { } }`: `GET /metrics` in Prometheus text. The
//! figures are gathered at each scrape by `bindery_control::metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use bindery_config::schema::ScopeKind;
use bindery_config::snapshot::Snapshot;
use tokio::sync::watch;

use crate::settings::{enabled_listens, tcp_addr};
use crate::{ServerError, Shared};

/// Every enabled `HTTP_Listener` `Listen` address.
pub fn http_listeners(snap: &Snapshot) -> Result<Vec<std::net::SocketAddr>, ServerError> {
    enabled_listens(snap, ScopeKind::HttpListener)
        .into_iter()
        .map(|l| {
            l.site.addr.as_ref().and_then(tcp_addr).ok_or_else(|| {
                ServerError::Config(format!(
                    "HTTP_Listener Listen \"{}\" is not a TCP address",
                    l.name
                ))
            })
        })
        .collect()
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
