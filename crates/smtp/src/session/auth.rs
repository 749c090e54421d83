//! AUTH (RFC 4954) with the PLAIN (RFC 4616), LOGIN and CRAM-MD5 (RFC 2195) mechanisms.
//!
//! The session runs the SASL exchange (the `334` challenges and the client's base64 answers)
//! and hands what the client proved to the caller as [`Step::Auth`]; it does not know any
//! password. The caller checks the [`Login`] against its store (which may be slow: bcrypt,
//! a failed-login delay) and answers with [`Session::auth_done`]; no input is read until it
//! does. A successful login lets the client relay, as Momentum's `can_relay` does.
//!
//! AUTH is offered only where [`AuthOffer::usable`] says so: under TLS, or before it where the
//! operator allowed plaintext logins for this client. Asked for anyway, it gets `538 5.7.11`
//! and no password is read.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::{Phase, Session, Step};
use crate::reply::Reply;

/// A SASL mechanism the session speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    Plain,
    Login,
    CramMd5,
}

impl Mechanism {
    /// Every mechanism, in the order the EHLO reply lists them.
    pub const ALL: [Mechanism; 3] = [Mechanism::Plain, Mechanism::Login, Mechanism::CramMd5];

    /// The name on the wire and in `SMTP_Extensions` (`AUTH PLAIN`).
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::CramMd5 => "CRAM-MD5",
        }
    }

    /// A mechanism by name, any case.
    pub fn parse(name: &str) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

/// How the listener offers AUTH to this client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthOffer {
    /// The mechanisms, in the order they are listed; empty: AUTH is not offered.
    pub mechanisms: Vec<Mechanism>,
    /// A login may be made before TLS (bindery's `Allow_Plaintext_Auth`, for trusted
    /// addresses); otherwise only under TLS.
    pub plaintext: bool,
    /// `Always_Allow`: every login of this client succeeds whatever its password (Momentum's
    /// override for trusted peers). The session only carries it; the caller applies it.
    pub always_allow: bool,
    /// `Always_Deny`: every login of this client fails; wins over `always_allow`.
    pub always_deny: bool,
}

impl AuthOffer {
    /// Whether AUTH may be used now.
    pub fn usable(&self, tls: bool) -> bool {
        !self.mechanisms.is_empty() && (tls || self.plaintext)
    }
}

/// What the client proved.
#[derive(Clone, PartialEq, Eq)]
pub enum Proof {
    /// PLAIN and LOGIN: the password itself.
    Password(String),
    /// CRAM-MD5: the challenge sent and the client's hex HMAC-MD5 of it.
    CramMd5 { challenge: String, digest: String },
}

/// Never prints a password or a digest: a `Login` may end up in a debug log.
impl fmt::Debug for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proof::Password(_) => f.write_str("Password(<redacted>)"),
            Proof::CramMd5 { challenge, .. } => f
                .debug_struct("CramMd5")
                .field("challenge", challenge)
                .field("digest", &"<redacted>")
                .finish(),
        }
    }
}

/// A completed SASL exchange, for the caller to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    pub mechanism: Mechanism,
    /// The identity the client asks to act as (PLAIN's authzid); empty when none.
    pub authzid: String,
    /// The login name.
    pub user: String,
    pub proof: Proof,
}

/// The caller's verdict on a [`Login`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthVerdict {
    /// `235 2.7.0`: the client is `user` from now on and may relay.
    Accepted,
    /// `535 5.7.8`: wrong name or password.
    Invalid,
    /// `454 4.7.0`: the store could not be read; the client may try later.
    Unavailable,
    /// `454 4.7.0`: too many failed logins from this address; nothing was checked.
    Locked,
}

/// Where the exchange is between `334` and the client's answer.
#[derive(Debug)]
pub(super) enum Exchange {
    Plain,
    LoginUser,
    LoginPassword { user: String },
    Cram { challenge: String },
}

/// `334 VXNlcm5hbWU6` / `334 UGFzc3dvcmQ6`: "Username:" and "Password:" in base64, which
/// every LOGIN client expects word for word.
const LOGIN_USER: &str = "VXNlcm5hbWU6";
const LOGIN_PASSWORD: &str = "UGFzc3dvcmQ6";

impl Session {
    /// `AUTH mechanism [initial-response]`.
    pub(super) fn auth(&mut self, mechanism: &str, initial: Option<String>) -> Option<Step> {
        let offer = &self.cfg.auth;
        if offer.mechanisms.is_empty() {
            self.error(Reply::new(502, "5.5.1", "Error: AUTH not available"));
            return None;
        }
        if self.helo.is_none() || !self.esmtp {
            self.error(Reply::new(503, "5.5.1", "Error: send EHLO first"));
            return None;
        }
        if self.user.is_some() {
            self.error(Reply::new(503, "5.5.1", "Error: already authenticated"));
            return None;
        }
        if matches!(self.phase, Phase::Mail) {
            self.error(Reply::new(
                503,
                "5.5.1",
                "Error: AUTH not permitted during a mail transaction",
            ));
            return None;
        }
        if !offer.usable(self.tls) {
            self.error(Reply::new(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            ));
            return None;
        }
        let Some(mech) = Mechanism::parse(mechanism).filter(|m| offer.mechanisms.contains(m))
        else {
            self.error(Reply::new(504, "5.5.4", "Unrecognized authentication type"));
            return None;
        };
        // `=` is an empty initial response (RFC 4954 §4).
        let initial = initial.map(|r| if r == "=" { String::new() } else { r });
        match (mech, initial) {
            (Mechanism::Plain, Some(r)) => self.sasl_answer(Exchange::Plain, &r),
            (Mechanism::Plain, None) => self.challenge(Exchange::Plain, ""),
            (Mechanism::Login, Some(r)) => self.sasl_answer(Exchange::LoginUser, &r),
            (Mechanism::Login, None) => self.challenge(Exchange::LoginUser, LOGIN_USER),
            (Mechanism::CramMd5, Some(_)) => {
                self.error(Reply::new(
                    501,
                    "5.5.2",
                    "Error: CRAM-MD5 takes no initial response",
                ));
                None
            }
            (Mechanism::CramMd5, None) => {
                self.auth_serial += 1;
                let challenge = format!(
                    "<{}.{}@{}>",
                    self.auth_seed, self.auth_serial, self.cfg.hostname
                );
                let b64 = B64.encode(challenge.as_bytes());
                self.challenge(Exchange::Cram { challenge }, &b64)
            }
        }
    }

    fn challenge(&mut self, next: Exchange, text: &str) -> Option<Step> {
        self.reply(Reply::new(334, "", text));
        self.phase = Phase::Auth(next);
        None
    }

    /// One line the client sent inside the exchange.
    pub(super) fn sasl_line(&mut self, line: &str) -> Option<Step> {
        let Phase::Auth(at) = std::mem::replace(&mut self.phase, Phase::Idle) else {
            return None;
        };
        if line == "*" {
            self.error(Reply::new(501, "5.0.0", "Authentication cancelled"));
            return None;
        }
        self.sasl_answer(at, line)
    }

    /// The client's answer at `at`; the session is out of the exchange (`Idle`) until a
    /// further challenge or `Verifying`.
    fn sasl_answer(&mut self, at: Exchange, b64: &str) -> Option<Step> {
        let Ok(bytes) = B64.decode(b64.trim()) else {
            self.error(Reply::new(501, "5.5.2", "Error: cannot decode response"));
            return None;
        };
        let Ok(text) = String::from_utf8(bytes) else {
            self.error(Reply::new(501, "5.5.2", "Error: response is not UTF-8"));
            return None;
        };
        let login = match at {
            Exchange::Plain => {
                // authzid NUL authcid NUL passwd (RFC 4616 §2)
                let mut parts = text.splitn(3, '\0');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(authzid), Some(user), Some(password)) if !user.is_empty() => Login {
                        mechanism: Mechanism::Plain,
                        authzid: authzid.to_string(),
                        user: user.to_string(),
                        proof: Proof::Password(password.to_string()),
                    },
                    _ => {
                        self.error(Reply::new(501, "5.5.2", "Error: malformed PLAIN response"));
                        return None;
                    }
                }
            }
            Exchange::LoginUser => {
                if text.is_empty() {
                    self.error(Reply::new(501, "5.5.2", "Error: empty user name"));
                    return None;
                }
                return self.challenge(Exchange::LoginPassword { user: text }, LOGIN_PASSWORD);
            }
            Exchange::LoginPassword { user } => Login {
                mechanism: Mechanism::Login,
                authzid: String::new(),
                user,
                proof: Proof::Password(text),
            },
            Exchange::Cram { challenge } => match text.rsplit_once(' ') {
                Some((user, digest))
                    if !user.is_empty()
                        && digest.len() == 32
                        && digest.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    Login {
                        mechanism: Mechanism::CramMd5,
                        authzid: String::new(),
                        user: user.to_string(),
                        proof: Proof::CramMd5 {
                            challenge,
                            digest: digest.to_ascii_lowercase(),
                        },
                    }
                }
                _ => {
                    self.error(Reply::new(
                        501,
                        "5.5.2",
                        "Error: malformed CRAM-MD5 response",
                    ));
                    return None;
                }
            },
        };
        if login.user.contains(['\r', '\n', '\0']) || login.user.len() > 256 {
            self.error(Reply::new(501, "5.5.2", "Error: malformed user name"));
            return None;
        }
        self.phase = Phase::Verifying(login.user.clone(), login.mechanism);
        Some(Step::Auth(login))
    }

    /// The caller's verdict on the [`Login`] of the last [`Step::Auth`].
    pub fn auth_done(&mut self, verdict: AuthVerdict) {
        let Phase::Verifying(user, mechanism) = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return;
        };
        match verdict {
            AuthVerdict::Accepted => {
                self.user = Some((user, mechanism));
                self.ok(Reply::new(235, "2.7.0", "Authentication successful"));
            }
            AuthVerdict::Invalid => self.error(Reply::new(
                535,
                "5.7.8",
                "Authentication credentials invalid",
            )),
            AuthVerdict::Unavailable => {
                self.error(Reply::new(454, "4.7.0", "Temporary authentication failure"))
            }
            AuthVerdict::Locked => self.error(Reply::new(
                454,
                "4.7.0",
                "Too many failed logins from your address, try again later",
            )),
        }
    }

    /// The user this session logged in as, and how.
    pub fn authenticated(&self) -> Option<(&str, Mechanism)> {
        self.user.as_ref().map(|(u, m)| (u.as_str(), *m))
    }

    /// Sets the part of CRAM-MD5 challenges that makes them unique to this connection (the
    /// caller passes something random); challenges are `<SEED.N@hostname>`.
    pub fn set_auth_seed(&mut self, seed: u64) {
        self.auth_seed = seed;
    }

    /// The EHLO keyword for AUTH, when it is offered now.
    pub(super) fn auth_capability(&self) -> Option<String> {
        if !self.cfg.auth.usable(self.tls) {
            return None;
        }
        let names: Vec<&str> = self.cfg.auth.mechanisms.iter().map(|m| m.name()).collect();
        Some(format!("AUTH {}", names.join(" ")))
    }
}
