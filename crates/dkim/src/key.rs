//! Private keys: PEM or DER, PKCS#1 or PKCS#8, RSA of any usual size or Ed25519.
//!
//! RSA keys of 2048 to 4096 bits and Ed25519 keys sign through aws-lc (mail-auth's aws-lc-rs
//! backend): constant-time and as fast as OpenSSL. aws-lc refuses RSA keys under 2048 bits, and
//! Momentum's own examples (`dkim-s1024`) and many senders still publish 1024-bit keys, so
//! those (and any size aws-lc will not load) sign through the `rsa` crate. That crate's
//! private-key operations are not constant-time (RUSTSEC-2023-0071): acceptable for the
//! legacy keys only, and `Key::legacy` says when a key takes that road.

use mail_auth::common::crypto::{Algorithm, Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::Writable;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer};

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM private key (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY): {0}")]
    Pem(String),
    #[error("not base64: {0}")]
    Base64(String),
    #[error("an EC (SEC1) key: DKIM signs with RSA or Ed25519")]
    Ec,
    #[error("not an RSA or Ed25519 private key: {0}")]
    Unknown(String),
    #[error("RSA key of {0} bits: DKIM verifiers refuse keys under 1024 bits (RFC 8301)")]
    TooSmall(usize),
}

/// A signing key.
pub enum Key {
    /// RSA 2048 to 4096 bits, through aws-lc (the public half kept for its DNS record).
    Rsa(RsaKey<Sha256>, Box<rsa::RsaPublicKey>),
    Ed25519(Ed25519Key),
    /// RSA that aws-lc does not load (under 2048 bits), through the `rsa` crate.
    LegacyRsa(Box<rsa::RsaPrivateKey>),
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.describe())
    }
}

impl Key {
    /// A key from a PEM file's text.
    pub fn from_pem(text: &[u8]) -> Result<Key, KeyError> {
        let der = PrivateKeyDer::from_pem_slice(text).map_err(|e| KeyError::Pem(e.to_string()))?;
        Key::from_der(der)
    }

    /// A key from Momentum's `keybuf`: the base64 body of a PEM key, without its BEGIN and
    /// END lines (PKCS#1 or PKCS#8).
    pub fn from_base64(b64: &str) -> Result<Key, KeyError> {
        use base64::Engine as _;
        let clean: String = b64.split_whitespace().collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(clean)
            .map_err(|e| KeyError::Base64(e.to_string()))?;
        match Key::from_der(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der.clone()))) {
            Ok(k) => Ok(k),
            Err(_) => Key::from_der(PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der))),
        }
    }

    /// A key from DER.
    pub fn from_der(der: PrivateKeyDer<'_>) -> Result<Key, KeyError> {
        let rsa = match &der {
            PrivateKeyDer::Pkcs8(p) => {
                if let Ok(k) = Ed25519Key::from_pkcs8_maybe_unchecked_der(p.secret_pkcs8_der()) {
                    return Ok(Key::Ed25519(k));
                }
                rsa::RsaPrivateKey::from_pkcs8_der(p.secret_pkcs8_der())
                    .map_err(|e| KeyError::Unknown(e.to_string()))?
            }
            PrivateKeyDer::Pkcs1(p) => rsa::RsaPrivateKey::from_pkcs1_der(p.secret_pkcs1_der())
                .map_err(|e| KeyError::Unknown(e.to_string()))?,
            PrivateKeyDer::Sec1(_) => return Err(KeyError::Ec),
            _ => return Err(KeyError::Unknown("an unknown key format".into())),
        };
        let bits = rsa::traits::PublicKeyParts::size(&rsa) * 8;
        if bits < 1024 {
            return Err(KeyError::TooSmall(bits));
        }
        match RsaKey::<Sha256>::from_key_der(der) {
            Ok(k) => Ok(Key::Rsa(k, Box::new(rsa.to_public_key()))),
            Err(_) => Ok(Key::LegacyRsa(Box::new(rsa))),
        }
    }

    /// `rsa-2048`, `ed25519`, `rsa-1024 (legacy signer)`.
    pub fn describe(&self) -> String {
        match self {
            Key::Rsa(_, p) => format!("rsa-{}", rsa::traits::PublicKeyParts::size(p.as_ref()) * 8),
            Key::Ed25519(_) => "ed25519".into(),
            Key::LegacyRsa(k) => format!(
                "rsa-{} (legacy signer)",
                rsa::traits::PublicKeyParts::size(k.as_ref()) * 8
            ),
        }
    }

    /// Whether it signs through the non-constant-time `rsa` crate.
    pub fn legacy(&self) -> bool {
        matches!(self, Key::LegacyRsa(_))
    }

    /// The `p=` of the key's DNS record (DER public key, base64): what a selector must
    /// publish for this key.
    pub fn public_key_base64(&self) -> String {
        use base64::Engine as _;
        use rsa::pkcs8::EncodePublicKey;
        // RSA: SubjectPublicKeyInfo, as `openssl rsa -pubout` writes it; Ed25519: the 32
        // bytes of the key (RFC 8463).
        let spki = |p: &rsa::RsaPublicKey| {
            p.to_public_key_der()
                .map(|d| d.as_bytes().to_vec())
                .unwrap_or_default()
        };
        let der = match self {
            Key::Rsa(_, p) => spki(p),
            Key::Ed25519(k) => k.public_key(),
            Key::LegacyRsa(k) => spki(&k.to_public_key()),
        };
        base64::engine::general_purpose::STANDARD.encode(der)
    }
}

impl SigningKey for Key {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        match self {
            Key::Rsa(k, _) => k.sign(input),
            Key::Ed25519(k) => k.sign(input),
            Key::LegacyRsa(k) => {
                let digest = self.hash(input);
                k.sign(
                    rsa::Pkcs1v15Sign::new::<rsa::sha2::Sha256>(),
                    digest.as_ref(),
                )
                .map_err(|e| {
                    mail_auth::Error::Crypto(mail_auth::common::crypto::CryptoError::Library(
                        e.to_string(),
                    ))
                })
            }
        }
    }

    fn algorithm(&self) -> Algorithm {
        match self {
            Key::Ed25519(_) => Algorithm::Ed25519Sha256,
            _ => Algorithm::RsaSha256,
        }
    }
}
