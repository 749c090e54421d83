//! Accept loops: one per `Listen` address, with the connection cap and the spool-health gate.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::Shared;
use crate::connection::serve;
use crate::guard::Backoff;
use crate::settings::inbound;

/// Sends a one-line refusal and closes, without starting a session; a client that does not
/// read gets 10 seconds.
async fn refuse(mut tcp: TcpStream, line: String) {
    let bye = async {
        tcp.write_all(line.as_bytes()).await?;
        tcp.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), bye).await;
}

/// Accepts on one listen address. Each connection takes the configuration generation current
/// when it was accepted, and keeps it to the end.
pub async fn accept_loop(
    shared: Arc<Shared>,
    name: String,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) {
    // The connection cap is fixed when the socket opens (a change needs a restart).
    let cap = shared.current().plan(&name).map_or(1, |p| p.concurrency);
    let slots = Arc::new(Semaphore::new(cap));
    let mut backoff = Backoff::new("esmtp");
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => {
                backoff.succeeded();
                a
            }
            Err(e) => {
                // Out of descriptors and the like: wait a little rather than spin.
                backoff.failed(&e).await;
                continue;
            }
        };
        let generation = shared.current();
        let host = &generation.globals.hostname;
        let Some(plan) = generation.plan(&name).cloned() else {
            let line = format!("421 4.3.2 {host} Error: listener no longer configured\r\n");
            tokio::spawn(refuse(tcp, line));
            continue;
        };
        if !shared.spool.healthy() {
            let line = format!("421 4.3.0 {host} Service unavailable: spool write errors\r\n");
            tokio::spawn(refuse(tcp, line));
            continue;
        }
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            let line = format!("421 4.7.0 {host} Error: too many connections\r\n");
            tokio::spawn(refuse(tcp, line));
            continue;
        };
        let (shared, rx, alive) = (Arc::clone(&shared), shutdown.clone(), alive.clone());
        tokio::spawn(async move {
            let mut tcp = tcp;
            // Behind a load balancer the client is the one its PROXY header names; a
            // connection without a valid header is closed without a banner, and nothing is
            // logged in the name of what it claimed.
            let client = match plan.proxy {
                None => peer.ip(),
                Some(limit) => match crate::proxy::read(&mut tcp, limit).await {
                    Ok(h) => h.source.map_or(peer.ip(), |s| s.ip()),
                    Err(e) => {
                        tracing::info!(%peer, listen = %plan.name, error = %e, "connection closed");
                        return;
                    }
                },
            };
            let env = crate::settings::Env {
                tls: &shared.tls,
                policy: &generation.policy,
                auth: &generation.auth_stores,
                spool_free: Some(&shared.spool_free),
            };
            let settings = match inbound(
                &generation.snapshot,
                &generation.globals,
                &plan,
                client,
                &env,
            ) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot configure connection");
                    let host = &generation.globals.hostname;
                    let line = format!("421 4.3.0 {host} Error: local configuration problem\r\n");
                    refuse(tcp, line).await;
                    return;
                }
            };
            let Some(held) = shared.sessions.enter(&settings.session_budgets) else {
                let line = "421 4.4.5 Service unavailable, concurrency limit reached.\r\n";
                refuse(tcp, line.to_string()).await;
                return;
            };
            if let Err(e) = serve(shared, generation, plan, tcp, client, settings, rx).await {
                tracing::debug!(%peer, %client, error = %e, "connection ended with an error");
            }
            drop(held);
            // Naming the permit here moves it into the task: it is held for the
            // session and released on every return above as well.
            drop(permit);
            drop(alive);
        });
    }
}
