//! Inbound TLS: rustls server configurations built from `TLS_Certificate` and `TLS_Key`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::ServerError;

/// Builds a server configuration from PEM files (a certificate chain and its private key).
pub fn server_config(cert: &str, key: &str) -> Result<Arc<ServerConfig>, ServerError> {
    let tls = |what: &str, e: &dyn std::fmt::Display| ServerError::Tls(format!("{what}: {e}"));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| tls(cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| tls(cert, &e))?;
    if certs.is_empty() {
        return Err(tls(cert, &"no certificate in file"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| tls(key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls("TLS versions", &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls("certificate and key", &e))?;
    Ok(Arc::new(cfg))
}

/// One configuration per (certificate, key) pair, built on first use.
#[derive(Default)]
pub struct TlsCache {
    map: Mutex<HashMap<(String, String), Arc<ServerConfig>>>,
}

impl TlsCache {
    pub fn get(&self, cert: &str, key: &str) -> Result<Arc<ServerConfig>, ServerError> {
        let k = (cert.to_string(), key.to_string());
        if let Some(c) = self.map.lock().unwrap_or_else(|e| e.into_inner()).get(&k) {
            return Ok(Arc::clone(c));
        }
        let c = server_config(cert, key)?;
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(k, Arc::clone(&c));
        Ok(c)
    }
}
