//! The Transmissions API on `HTTP_Listener` (issue 21): `POST /api/v1/transmissions` with
//! `Authorization: <api key>`, served where a Listen (or its listener) names bindery's
//! `API_Key_File`. The request is read and checked by `bindery-transmissions`; each
//! recipient's message is generated and received one after the other through
//! [`crate::reception::receive`], the road an SMTP client's message takes (the policy's
//! `msg_gen_data_spool`, `validate_set_binding` and `core_final_validation`, DKIM, the durable
//! spool write, the mainlog with protocol `rest`), so a request of ten thousand recipients
//! holds one message at a time and answers only after every accepted one is durable. The
//! reply is SparkPost's: `results.total_accepted_recipients`, `total_rejected_recipients`,
//! `id`; a refused request gets SparkPost's error object and status.
//!
//! `options.ip_pool` names the binding group the messages go out of (a binding of it picked
//! as `msg:binding_group` does); a policy may choose otherwise in `validate_set_binding`. The
//! recipient's metadata is in the message context as `mo_rcpt_meta` (JSON), where Momentum's
//! sample policy reads its `binding`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bindery_control::injections::Via;
use bindery_policy::inject::RecvMethod;
use bindery_policy::{Assigned, Conn, Message};
use bindery_smtp::Transaction;
use bindery_smtp::address::parse_mailbox;
use bindery_smtp::command::{MailParams, RcptParams};
use bindery_transmissions::keys::Keys;
use bindery_transmissions::{ApiError, Transmission};

use crate::Shared;

/// The permission a key needs to send.
pub const SEND: &str = "transmissions:modify";

/// Where an HTTP listener's API keys are, and how large a request may be.
#[derive(Clone, Debug)]
pub struct ApiPlan {
    pub keys: PathBuf,
    pub max_body: usize,
}

/// A key file, read again when it changes (a new key needs no reload).
pub struct KeyFile(bindery_auth::reread::Reread<Keys>);

impl KeyFile {
    pub fn new(path: PathBuf) -> KeyFile {
        KeyFile(bindery_auth::reread::Reread::new(path))
    }

    /// The keys now; an error names the file and the line.
    pub fn keys(&self) -> Result<Arc<Keys>, String> {
        let shown = self.0.path().display();
        self.0.get(Keys::parse).map_err(|e| match e {
            bindery_auth::reread::ReadError::Io(e) => format!("{shown}: {e}"),
            bindery_auth::reread::ReadError::Parse(e) => format!("{shown}: {e}"),
        })
    }
}

/// What one listener's handler holds.
pub struct Api {
    pub shared: Arc<Shared>,
    pub keys: KeyFile,
    pub max_body: usize,
    /// The listener's name, for the mainlog.
    pub listener: String,
}

fn error(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        e.body(),
    )
        .into_response()
}

/// `POST /api/v1/transmissions`.
pub async fn post(
    State(api): State<Arc<Api>>,
    ConnectInfo(crate::http::Peer(peer)): ConnectInfo<crate::http::Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let keys = match api.keys.keys() {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = %e, "API key file unusable; requests get 503");
            return error(&ApiError::unavailable(
                "the API key file cannot be read".into(),
            ));
        }
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(key) = keys.check(presented) else {
        tracing::warn!(peer = %peer.ip(), "Transmissions API: unknown or missing API key");
        return error(&ApiError::unauthorized());
    };
    if !key.may(SEND) {
        api.shared.injections.login(Via::Api, &key.name, false);
        return error(&ApiError::permission_denied(&format!(
            "API key {} lacks {SEND}",
            key.name
        )));
    }
    api.shared.injections.login(Via::Api, &key.name, true);
    let bytes = match axum::body::to_bytes(body, api.max_body).await {
        Ok(b) => b,
        Err(_) => return error(&ApiError::too_large(api.max_body)),
    };
    let json: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return error(&ApiError::not_json(&e.to_string())),
    };
    drop(bytes);
    let t = match Transmission::from_json(&json) {
        Ok(t) => t,
        Err(e) => return error(&e),
    };
    drop(json);
    let name = key.name.clone();
    match send(&api, &t, peer.ip(), &name).await {
        Ok((accepted, rejected, id)) => {
            let body = serde_json::json!({"results": {
                "total_rejected_recipients": rejected,
                "total_accepted_recipients": accepted,
                "id": id,
            }});
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        Err(e) => error(&e),
    }
}

/// Generates and receives every recipient's message; (accepted, rejected, transmission id).
async fn send(
    api: &Arc<Api>,
    t: &Transmission,
    peer: IpAddr,
    key: &str,
) -> Result<(u64, u64, String), ApiError> {
    let shared = &api.shared;
    if !shared.spool.healthy() {
        return Err(ApiError::unavailable(
            "spool write errors; try again later".into(),
        ));
    }
    let generation = shared.current();
    let now = crate::unix_now();
    let transmission_id = shared.ids.next(now);
    let host = generation.globals.hostname.clone();
    let pool = match &t.ip_pool {
        None => None,
        Some(p) => {
            let snap = &generation.snapshot;
            let Some(g) = snap.group_id(p) else {
                return Err(ApiError::bad_field(format!(
                    "options.ip_pool '{p}' is not a binding group of this configuration"
                )));
            };
            Some(g)
        }
    };
    let (mut accepted, mut rejected) = (0u64, 0u64);
    let mut last_refusal = None;
    let mut in_flight = std::collections::VecDeque::new();
    for i in 0..t.recipients.len() {
        let message_id = format!("{transmission_id}.{i}@{host}");
        let g = t.generate(i, now, &message_id)?;
        let r = &t.recipients[i];
        let refused = |why: String| {
            tracing::info!(rcpt = %r.email, reason = %why, "Transmissions API: recipient refused");
            why
        };
        let (Ok(sender), Ok(rcpt)) = (
            if g.sender.is_empty() {
                Ok(None)
            } else {
                parse_mailbox(&g.sender).map(Some)
            },
            parse_mailbox(&g.recipient),
        ) else {
            rejected += 1;
            last_refusal = Some(refused(format!(
                "{} or {} is not an address",
                g.sender, g.recipient
            )));
            continue;
        };
        if rcpt.domain.is_none() {
            rejected += 1;
            last_refusal = Some(refused(format!("{} has no domain", g.recipient)));
            continue;
        }
        let tx = Box::new(Transaction {
            peer,
            helo: "api".into(),
            protocol: "HTTP",
            auth_user: None,
            sender,
            params: MailParams::default(),
            recipients: vec![bindery_smtp::session::Recipient {
                mailbox: rcpt,
                params: RcptParams::default(),
            }],
            body: g.message,
        });
        let mut conn = Conn::new(peer, &api.listener, &[]);
        conn.context.insert("can_relay".into(), "true".into());
        let mut context = std::collections::HashMap::new();
        let mut meta = t.metadata.clone();
        meta.extend(r.metadata.clone());
        context.insert(
            "mo_rcpt_meta".to_string(),
            serde_json::Value::Object(meta).to_string(),
        );
        if let Some(c) = &t.campaign_id {
            context.insert("mo_campaign_id".to_string(), c.clone());
        }
        let msg = Message {
            sender: g.sender.clone(),
            recipients: vec![g.recipient.clone()],
            recv_method: RecvMethod::Http,
            context,
            binding: pool.and_then(|grp| {
                let held = bindery_policy::choose::held_bindings(
                    &api.shared.adaptive,
                    [bindery_policy::choose::domain_of(&g.recipient)],
                    crate::unix_now(),
                );
                generation
                    .bindings
                    .pick_avoiding(
                        grp,
                        |n| fastrand::usize(..n),
                        |b| !held.is_empty() && held.contains(generation.snapshot.binding_name(b)),
                    )
                    .map(|b| Assigned::of(&generation.snapshot, b))
            }),
            ..Message::default()
        };
        // Up to IN_FLIGHT messages are received at once, so their durable writes share the
        // spool's group commits; the next is generated only when one of them is done.
        while in_flight.len() >= IN_FLIGHT {
            if let Some(h) = in_flight.pop_front() {
                tally(h.await, &mut accepted, &mut rejected, &mut last_refusal);
            }
        }
        let (shared, generation) = (Arc::clone(&api.shared), Arc::clone(&generation));
        let (listener, host) = (api.listener.clone(), host.clone());
        // Spawned, not polled here: a client that hangs up drops this request, and a message
        // half way through reception must still finish (a dropped JoinHandle detaches).
        in_flight.push_back(tokio::spawn(async move {
            let (mut conn, mut msg) = (conn, msg);
            let mut refused_by = "";
            let mut discarded = None;
            let place = crate::reception::Place {
                listener: &listener,
                received_by: &host,
                session: "",
                refused_by: &mut refused_by,
                discarded: &mut discarded,
            };
            crate::reception::receive(&shared, &generation, tx, None, place, &mut conn, &mut msg)
                .await
        }));
    }
    while let Some(h) = in_flight.pop_front() {
        tally(h.await, &mut accepted, &mut rejected, &mut last_refusal);
    }
    if accepted > 0 {
        shared.injections.message(Via::Api, key, accepted, rejected);
    } else {
        shared.injections.rejected(Via::Api, key, rejected);
    }
    if accepted == 0 {
        return Err(ApiError::generation_rejected(
            last_refusal.unwrap_or_else(|| "no recipient was accepted".into()),
        ));
    }
    tracing::info!(id = %transmission_id, accepted, rejected, key, "Transmissions API: transmission received");
    Ok((accepted, rejected, transmission_id))
}

/// Messages of one request in reception at once.
const IN_FLIGHT: usize = 64;

/// Counts one recipient's reply. A message the policy discarded counts as accepted, as the
/// client is told over SMTP.
fn tally(
    done: Result<bindery_smtp::Reply, tokio::task::JoinError>,
    accepted: &mut u64,
    rejected: &mut u64,
    last_refusal: &mut Option<String>,
) {
    match done {
        Ok(reply) if reply.is_positive() => *accepted += 1,
        Ok(reply) => {
            *rejected += 1;
            tracing::info!(reply = %reply, "Transmissions API: recipient refused");
            *last_refusal = Some(reply.to_string());
        }
        Err(e) => {
            *rejected += 1;
            tracing::error!(error = %e, "Transmissions API: reception failed");
            *last_refusal = Some("451 4.3.0 reception failed".into());
        }
    }
}

/// Any other path under `/api/`: SparkPost's 404.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    error(&ApiError::not_found(uri.path()))
}

/// `/api/v1/transmissions` with another method.
pub async fn method() -> Response {
    error(&ApiError::method())
}
