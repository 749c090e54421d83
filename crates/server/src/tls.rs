//! Inbound TLS: rustls server configurations built from `TLS_Certificate` and `TLS_Key`, the
//! protocol versions `TLS_Protocols` leaves, and the client-certificate rule of
//! `TLS_Client_CA` and `TLS_Verify_Mode`.
//!
//! Client certificates follow Momentum's inbound-TLS page: a failed verification does not end
//! the session, it is recorded (the connection context's `tls_client_verified` stays unset) and
//! policy decides. So the handshake takes any certificate the client proves it holds (the
//! handshake signature is always checked), and [`ClientCerts::verified`] judges the chain
//! against the CA list once the handshake is done:
//!
//! | `TLS_Verify_Mode` | certificate asked for | a client without one | verified against `TLS_Client_CA` |
//! |---|---|---|---|
//! | `none` | no | goes on | — |
//! | not set | yes | goes on | when presented |
//! | `require` | yes | the handshake fails | always |
//!
//! Without `TLS_Client_CA` no certificate is asked for (nothing could verify one), and
//! `require` is a configuration error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bindery_config::tls_protocols::Protocols;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig};

use crate::ServerError;

/// `TLS_Verify_Mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VerifyMode {
    /// `none`: no certificate is asked for.
    None,
    /// Not set: asked for, optional, verified when presented.
    Optional,
    /// `require`: a client without a certificate fails the handshake.
    Require,
}

impl VerifyMode {
    /// The option's word (the schema allows `none` and `require`); `None` when unset.
    pub fn parse(word: Option<&str>) -> VerifyMode {
        match word {
            Some(w) if w.eq_ignore_ascii_case("none") => VerifyMode::None,
            Some(w) if w.eq_ignore_ascii_case("require") => VerifyMode::Require,
            _ => VerifyMode::Optional,
        }
    }
}

/// What tells one server configuration from another.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsSettings {
    pub cert: String,
    pub key: String,
    /// `TLS_Client_CA`, when client certificates are asked for.
    pub client_ca: Option<String>,
    pub verify: VerifyMode,
    pub protocols: Protocols,
}

/// A listener's TLS: the rustls configuration and, when client certificates are asked for,
/// the verifier that judges them after the handshake.
#[derive(Clone)]
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
    pub client_certs: Option<Arc<ClientCerts>>,
}

/// Builds a server configuration from PEM files (a certificate chain and its private key).
pub fn server_config(s: &TlsSettings) -> Result<ServerTls, ServerError> {
    let tls = |what: &str, e: &dyn std::fmt::Display| ServerError::Tls(format!("{what}: {e}"));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&s.cert)
        .map_err(|e| tls(&s.cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| tls(&s.cert, &e))?;
    if certs.is_empty() {
        return Err(tls(&s.cert, &"no certificate in file"));
    }
    let key = PrivateKeyDer::from_pem_file(&s.key).map_err(|e| tls(&s.key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&bindery_delivery::tls::versions(s.protocols))
        .map_err(|e| tls("TLS versions", &e))?;
    let client_certs = match (&s.client_ca, s.verify) {
        (Some(ca), VerifyMode::Optional | VerifyMode::Require) => {
            Some(Arc::new(ClientCerts::new(ca, s.verify, provider)?))
        }
        _ => None,
    };
    let builder = match &client_certs {
        Some(c) => builder.with_client_cert_verifier(Arc::clone(c) as Arc<dyn ClientCertVerifier>),
        None => builder.with_no_client_auth(),
    };
    let cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| tls("certificate and key", &e))?;
    Ok(ServerTls {
        config: Arc::new(cfg),
        client_certs,
    })
}

/// Asks for client certificates and judges them against `TLS_Client_CA` after the handshake
/// (see the module documentation for why not during it).
#[derive(Debug)]
pub struct ClientCerts {
    webpki: Arc<dyn ClientCertVerifier>,
    mandatory: bool,
}

impl ClientCerts {
    fn new(
        ca: &str,
        mode: VerifyMode,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<ClientCerts, ServerError> {
        let tls = |e: &dyn std::fmt::Display| ServerError::TlsClientCa(format!("{ca}: {e}"));
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca).map_err(|e| tls(&e))? {
            roots.add(c.map_err(|e| tls(&e))?).map_err(|e| tls(&e))?;
        }
        if roots.is_empty() {
            return Err(tls(&"no certificates in it"));
        }
        let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()
            .map_err(|e| tls(&e))?;
        Ok(ClientCerts {
            webpki,
            mandatory: mode == VerifyMode::Require,
        })
    }

    /// Whether the chain the client presented (end entity first) chains to a CA in
    /// `TLS_Client_CA` and is valid now for client authentication.
    pub fn verified(&self, chain: &[CertificateDer<'_>]) -> bool {
        let Some((end, intermediates)) = chain.split_first() else {
            return false;
        };
        self.webpki
            .verify_client_cert(end, intermediates, UnixTime::now())
            .is_ok()
    }
}

impl ClientCertVerifier for ClientCerts {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    /// Any chain passes here; [`ClientCerts::verified`] gives the verdict the session keeps.
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// One configuration per [`TlsSettings`], built on first use.
#[derive(Default)]
pub struct TlsCache {
    map: Mutex<HashMap<TlsSettings, ServerTls>>,
}

impl TlsCache {
    pub fn get(&self, s: &TlsSettings) -> Result<ServerTls, ServerError> {
        if let Some(c) = self.map.lock().unwrap_or_else(|e| e.into_inner()).get(s) {
            return Ok(c.clone());
        }
        let c = server_config(s)?;
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(s.clone(), c.clone());
        Ok(c)
    }
}
