//! The outbound TLS configurations, one per (`tls_verify`, `tls_ca`, `tls_protocols`) in use.
//!
//! Opportunistic TLS to MX hosts cannot insist on a valid certificate: most MX certificates
//! do not name the MX host, and `tls_verify = no` is Momentum's default. So the default
//! configuration encrypts without authenticating the server. The other values check the
//! server's certificate against the CA certificates in `tls_ca` (a PEM file; unset, the
//! system's bundle):
//!
//! | `tls_verify` | chain to a trusted CA | names the host connected to | on failure |
//! |---|---|---|---|
//! | `no` | not checked | not checked | — |
//! | `ca` | required | not checked | the handshake fails |
//! | `host` | required | required (the MX or gateway name, or its IP) | the handshake fails |
//! | `optional` | checked | checked | logged; the session goes on encrypted |
//!
//! A failed handshake is a TLS failure like any other: with `tls = required` the delivery is
//! deferred (`4.7.5`, with rustls's reason), with `tls = ifavailable` and
//! `tls_ifavailable_fallback` it is tried again in plaintext. (Momentum's documentation names
//! the four values without defining them; this table is bindery's reading of them.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bindery_config::tls_protocols::Protocols;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore};

/// How the server's certificate is checked (`tls_verify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsVerify {
    No,
    Ca,
    Host,
    Optional,
}

impl TlsVerify {
    pub fn parse(word: Option<&str>) -> TlsVerify {
        match word {
            Some("ca") => TlsVerify::Ca,
            Some("host") => TlsVerify::Host,
            Some("optional") => TlsVerify::Optional,
            _ => TlsVerify::No,
        }
    }
}

/// The certificate check for one `tls_verify`. With `No` (no webpki verifier) it accepts any
/// certificate; otherwise webpki checks it against a root store and `ca` forgives a
/// certificate for another name, `optional` forgives everything but logs it. Either way the
/// handshake signatures must be valid for the certificate presented, so the session keys are
/// bound to it.
#[derive(Debug)]
struct Verifier {
    mode: TlsVerify,
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        let r =
            webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        match (r, self.mode) {
            (Ok(v), _) => Ok(v),
            // webpki checks the name only after the chain, so this error means the chain
            // is good.
            (
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )),
                TlsVerify::Ca,
            ) => Ok(ServerCertVerified::assertion()),
            (Err(e), TlsVerify::Optional) => {
                tracing::info!(host = ?server_name, error = %e, "tls_verify optional: certificate not verified; going on");
                Ok(ServerCertVerified::assertion())
            }
            (Err(e), _) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The rustls versions a `TLS_Protocols` list leaves, 1.3 first; the inbound configurations
/// (bindery-server) take them from here too.
pub fn versions(protocols: Protocols) -> Vec<&'static rustls::SupportedProtocolVersion> {
    [
        (protocols.tls13, &rustls::version::TLS13),
        (protocols.tls12, &rustls::version::TLS12),
    ]
    .into_iter()
    .filter_map(|(on, v)| on.then_some(v))
    .collect()
}

/// A client configuration around `verifier`, offering the versions `protocols` leaves.
fn client_config(
    verifier: Verifier,
    protocols: Protocols,
) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::clone(&verifier.provider))
        .with_protocol_versions(&versions(protocols))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Where the system keeps its CA bundle: `SSL_CERT_FILE`, else the first of the usual
/// places (Debian, RHEL, SUSE, Alpine/BSD) that exists.
fn system_bundle() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SSL_CERT_FILE") {
        return Some(PathBuf::from(p));
    }
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/ssl/cert.pem",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

fn roots(ca: Option<&Path>) -> Result<RootCertStore, String> {
    let path = match ca {
        Some(p) => p.to_path_buf(),
        None => system_bundle().ok_or("tls_ca is not set and no system CA bundle was found")?,
    };
    let mut store = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&path)
        .map_err(|e| format!("tls_ca {}: {e}", path.display()))?;
    for c in certs {
        let c = c.map_err(|e| format!("tls_ca {}: {e}", path.display()))?;
        store
            .add(c)
            .map_err(|e| format!("tls_ca {}: {e}", path.display()))?;
    }
    if store.is_empty() {
        return Err(format!("tls_ca {}: no certificates in it", path.display()));
    }
    Ok(store)
}

/// `tls_verify`, `tls_ca` and `tls_protocols`: what tells one client configuration from
/// another.
type ConfigKey = (TlsVerify, Option<PathBuf>, Protocols);

/// The client configurations, built the first time a (`tls_verify`, `tls_ca`) pair is used
/// and kept: a CA file is read once, not per connection. A pair that fails to build (a
/// missing file) is not kept, so fixing the file needs no restart.
pub struct ClientConfigs {
    provider: Arc<CryptoProvider>,
    opportunistic: Arc<rustls::ClientConfig>,
    checked: Mutex<HashMap<ConfigKey, Arc<rustls::ClientConfig>>>,
}

impl ClientConfigs {
    pub fn new() -> Result<ClientConfigs, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(ClientConfigs {
            opportunistic: client_config(
                Verifier {
                    mode: TlsVerify::No,
                    webpki: None,
                    provider: Arc::clone(&provider),
                },
                Protocols::default(),
            )?,
            provider,
            checked: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration for `verify` with roots from `ca` (the system's when `None`),
    /// offering the versions in `protocols`.
    pub fn get(
        &self,
        verify: TlsVerify,
        ca: Option<&Path>,
        protocols: Protocols,
    ) -> Result<Arc<rustls::ClientConfig>, String> {
        if verify == TlsVerify::No && protocols == Protocols::default() {
            return Ok(Arc::clone(&self.opportunistic));
        }
        let key = (verify, ca.map(Path::to_path_buf), protocols);
        if let Some(c) = self
            .checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(Arc::clone(c));
        }
        let webpki = match verify {
            TlsVerify::No => None,
            _ => Some(
                WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots(ca)?),
                    Arc::clone(&self.provider),
                )
                .build()
                .map_err(|e| e.to_string())?,
            ),
        };
        let cfg = client_config(
            Verifier {
                mode: verify,
                webpki,
                provider: Arc::clone(&self.provider),
            },
            protocols,
        )
        .map_err(|e| e.to_string())?;
        self.checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, Arc::clone(&cfg));
        Ok(cfg)
    }
}
