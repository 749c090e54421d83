//! Logging in to the server (RFC 4954) as Momentum's `outbound_smtp_auth` does: PLAIN (RFC
//! 4616, with its initial response), LOGIN (`334 Username:` / `334 Password:`), and XOAUTH2
//! (a bearer token; a refusal comes as a `334` with a JSON reason, answered with an empty
//! line before the final `535`).
//!
//! The login is the last step of the handshake: after EHLO, after STARTTLS and the EHLO that
//! follows it. Only a server that offers AUTH is asked; one that does not gets the mail
//! without a login, as a server that does not ask for one. Where the connection is not
//! encrypted the client refuses to send the secret unless told it may
//! ([`ClientAuth::plaintext`]). Every failure ends the session with a `4xx` reply of ours
//! that carries the server's, in [`Phase::Auth`]: a wrong password is a configuration error
//! to fix, not a reason to bounce the mail, and not an outage of the server either.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::{AuthMechanism, Awaiting, Client, Phase, Response};

/// Which reply of the exchange is awaited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AuthStep {
    /// LOGIN: `334` asking for the user name.
    LoginUser,
    /// LOGIN: `334` asking for the password.
    LoginPassword,
    /// XOAUTH2: `235`, or a `334` error challenge.
    Xoauth2,
    /// The last reply: `235` or a refusal.
    Final,
}

impl Client {
    /// Sends AUTH if the configuration asks for it and the server offers it.
    pub(super) fn login(&mut self) {
        let Some(auth) = &self.cfg.auth else { return };
        if self.authenticated {
            return;
        }
        let Some(offered) = &self.ext.auth else {
            return;
        };
        let mech = auth.mechanism;
        if !self.tls_active && !auth.plaintext {
            let r = Response::local(
                451,
                format!(
                    "4.7.0 AUTH {} is configured but the connection is not encrypted: set tls = \"required\" for this destination (or Outbound_SMTP_AUTH_Allow_Plaintext = true)",
                    mech.name()
                ),
            );
            self.fail_at(Phase::Auth, r);
            return;
        }
        if !offered.iter().any(|m| m == mech.name()) {
            let r = Response::local(
                451,
                format!(
                    "4.7.0 AUTH {} is configured but the remote host offers only AUTH {}",
                    mech.name(),
                    offered.join(" ")
                ),
            );
            self.fail_at(Phase::Auth, r);
            return;
        }
        let line = match mech {
            AuthMechanism::Plain => {
                let creds = format!("\0{}\0{}", auth.user, auth.secret);
                self.awaiting.push_back(Awaiting::Auth(AuthStep::Final));
                format!("AUTH PLAIN {}\r\n", B64.encode(creds))
            }
            AuthMechanism::Login => {
                self.awaiting.push_back(Awaiting::Auth(AuthStep::LoginUser));
                "AUTH LOGIN\r\n".to_string()
            }
            AuthMechanism::Xoauth2 => {
                let creds = format!("user={}\x01auth=Bearer {}\x01\x01", auth.user, auth.secret);
                self.awaiting.push_back(Awaiting::Auth(AuthStep::Xoauth2));
                format!("AUTH XOAUTH2 {}\r\n", B64.encode(creds))
            }
        };
        self.out.extend_from_slice(line.as_bytes());
    }

    pub(super) fn on_auth(&mut self, step: AuthStep, r: Response) {
        let Some(auth) = &self.cfg.auth else { return };
        let answer = |c: &mut Client, text: &str, next: AuthStep| {
            c.out.extend_from_slice(B64.encode(text).as_bytes());
            c.out.extend_from_slice(b"\r\n");
            c.awaiting.push_back(Awaiting::Auth(next));
        };
        match (step, r.code) {
            (AuthStep::LoginUser, 334) => {
                let user = auth.user.clone();
                answer(self, &user, AuthStep::LoginPassword);
            }
            (AuthStep::LoginPassword, 334) => {
                let secret = auth.secret.clone();
                answer(self, &secret, AuthStep::Final);
            }
            (AuthStep::Xoauth2, 334) => {
                // The server's reason is in the challenge; an empty answer ends the exchange
                // and the refusal follows (Google's and Microsoft's documented dialogue).
                self.out.extend_from_slice(b"\r\n");
                self.awaiting.push_back(Awaiting::Auth(AuthStep::Final));
            }
            (_, 235) => self.authenticated = true,
            _ => {
                let mech = auth.mechanism.name();
                let user = auth.user.clone();
                let why = Response::local(
                    if r.code == 454 { 454 } else { 451 },
                    format!("4.7.0 AUTH {mech} as {user} failed: {}", r.one_line()),
                );
                self.fail_at(Phase::Auth, why);
            }
        }
    }
}
