//! One console connection, without I/O: greeting, login where required, then command lines
//! in and [`Action`]s out. The server's `control` module feeds it bytes, runs the commands it
//! asks for, and writes the frames.
//!
//! A listener that requires authentication greets with `auth REALM NONCE`; until the client
//! answers with `auth USER RESPONSE` (see [`crate::auth`]) no command runs, whatever it is.
//! A wrong answer gets a fresh challenge; the third closes the connection.
//!
//! Where `Enable_Authorization` is on, every command line is put to the `Authorization`
//! rules ([`crate::authz`]) before it runs; a refused one gets `Not Authorized for this
//! command`, as Momentum's console says, and either way the decision is kept for the
//! acctlog's `Z` record ([`Session::take_authorization`]).

use std::sync::Arc;

use crate::auth::{Passwords, nonce};
use crate::authz::{Decision, Groups, Rules};
use crate::frame::{Frame, FrameError, LineDecoder, Status};
use crate::words::split;

/// Wrong answers before the connection is closed.
pub const MAX_FAILURES: u32 = 3;

/// Who may log in on a listener that requires it.
#[derive(Clone, Debug)]
pub struct Login {
    pub realm: String,
    pub passwords: Arc<Passwords>,
    /// Momentum's `Always_Allow` / `Always_Deny` for this client: the login's outcome
    /// whatever the password (deny wins where both are set).
    pub always: Option<bool>,
}

/// The authorization of one connection: the rules and the roles of its users.
#[derive(Clone, Debug)]
pub struct Authz {
    pub rules: Arc<Rules>,
    pub groups: Arc<Groups>,
}

/// One command put to the rules, for the acctlog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorized {
    pub user: String,
    /// The command line as the rules saw it.
    pub command: String,
    pub decision: Decision,
}

/// What a refused command gets, in Momentum's words.
pub const NOT_AUTHORIZED: &str = "Not Authorized for this command";

/// What the server should do next.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Write this frame and read on.
    Send(Frame),
    /// Run the command and write its output; `json` asks for the JSON form.
    Run { words: Vec<String>, json: bool },
    /// Write this frame and close.
    Close(Frame),
}

pub struct Session {
    login: Option<Login>,
    /// The open challenge while the client has not logged in.
    challenge: Option<String>,
    failures: u32,
    lines: LineDecoder,
    /// The logged-in user, for the log.
    pub user: Option<String>,
    /// A login that just failed, with the user name it gave (`-` for a malformed line), for
    /// the server to log and count against the client's address.
    failed: Option<String>,
    /// A login just succeeded (for the log).
    admitted: bool,
    authz: Option<Authz>,
    /// The last command put to the rules, until the server takes it for the log.
    authorized: Option<Authorized>,
}

impl Session {
    /// `login` is `Some` where the listener requires authentication.
    pub fn new(login: Option<Login>) -> Session {
        let challenge = login.as_ref().map(|_| nonce());
        Session {
            login,
            challenge,
            failures: 0,
            lines: LineDecoder::default(),
            user: None,
            failed: None,
            admitted: false,
            authz: None,
            authorized: None,
        }
    }

    /// Puts every command to `authz` before it runs.
    pub fn with_authz(mut self, authz: Authz) -> Session {
        self.authz = Some(authz);
        self
    }

    /// The user a Unix socket's client is known as (its system user name), where there is
    /// no login.
    pub fn with_user(mut self, user: String) -> Session {
        self.user = Some(user);
        self
    }

    /// The authorization decision made since the last call, if a command was put to it.
    pub fn take_authorization(&mut self) -> Option<Authorized> {
        self.authorized.take()
    }

    pub fn greeting(&self) -> Frame {
        match (&self.login, &self.challenge) {
            (Some(l), Some(n)) => Frame::new(Status::Auth, format!("{} {n}", l.realm)),
            _ => Frame::new(
                Status::Ok,
                format!("bindery {} console", env!("CARGO_PKG_VERSION")),
            ),
        }
    }

    /// The user name of a login that failed since the last call, if one did.
    pub fn take_failure(&mut self) -> Option<String> {
        self.failed.take()
    }

    /// The user who logged in since the last call, if one did.
    pub fn take_login(&mut self) -> Option<String> {
        std::mem::take(&mut self.admitted)
            .then(|| self.user.clone())
            .flatten()
    }

    pub fn input(&mut self, bytes: &[u8]) {
        self.lines.feed(bytes);
    }

    /// The next thing to do, or `None` until more input arrives.
    pub fn next_action(&mut self) -> Option<Action> {
        let line = match self.lines.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => return None,
            Err(FrameError::LineTooLong) | Err(_) => {
                return Some(Action::Close(Frame::new(
                    Status::Bye,
                    "request line too long",
                )));
            }
        };
        let mut words = split(&line);
        if let Some(challenge) = self.challenge.clone() {
            return Some(self.login_line(&words, &challenge));
        }
        match words.first().map(String::as_str) {
            None => Some(Action::Send(Frame::new(Status::Ok, ""))),
            Some("quit" | "exit") => Some(Action::Close(Frame::new(Status::Bye, "bye"))),
            Some("json") => {
                words.remove(0);
                Some(self.authorize(words, true))
            }
            Some(_) => Some(self.authorize(words, false)),
        }
    }

    /// `Run` the command, or refuse it where the rules do not allow it.
    fn authorize(&mut self, words: Vec<String>, json: bool) -> Action {
        let Some(authz) = &self.authz else {
            return Action::Run { words, json };
        };
        let user = self.user.clone().unwrap_or_default();
        let command = words.join(" ");
        let decision = authz.rules.decide(&user, &authz.groups, &command);
        let allowed = decision != Decision::Denied;
        self.authorized = Some(Authorized {
            user,
            command,
            decision,
        });
        if allowed {
            Action::Run { words, json }
        } else {
            Action::Send(Frame::new(Status::Error, NOT_AUTHORIZED))
        }
    }

    fn login_line(&mut self, words: &[String], challenge: &str) -> Action {
        let Some(login) = self.login.clone() else {
            return Action::Close(Frame::new(Status::Bye, "internal error"));
        };
        let ok = match words {
            [cmd, user, response] if cmd == "auth" => {
                let ok = login
                    .always
                    .unwrap_or_else(|| login.passwords.verify(user, challenge, response));
                if ok {
                    self.user = Some(user.clone());
                } else {
                    self.failed = Some(user.clone());
                }
                ok
            }
            [cmd, ..] if cmd == "quit" || cmd == "exit" => {
                return Action::Close(Frame::new(Status::Bye, "bye"));
            }
            _ => {
                self.failed = Some("-".into());
                false
            }
        };
        if ok {
            self.challenge = None;
            self.admitted = true;
            return Action::Send(Frame::new(Status::Ok, "authenticated"));
        }
        self.failures += 1;
        if self.failures >= MAX_FAILURES {
            return Action::Close(Frame::new(Status::Bye, "authentication failed; closing"));
        }
        let fresh = nonce();
        self.challenge = Some(fresh.clone());
        Action::Send(Frame::new(Status::Auth, format!("{} {fresh}", login.realm)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{ha1, passwd_line, respond};

    fn login() -> Login {
        let file = passwd_line("admin", "bindery", "secret");
        Login {
            realm: "bindery".into(),
            passwords: Arc::new(Passwords::parse(&file, "bindery").expect("valid")),
            always: None,
        }
    }

    fn challenge(f: &Frame) -> String {
        assert_eq!(f.status, Status::Auth, "{f:?}");
        f.body.split(' ').nth(1).expect("nonce").to_string()
    }

    #[test]
    fn no_command_runs_before_login_and_three_failures_close() {
        let mut s = Session::new(Some(login()));
        challenge(&s.greeting());
        s.input(b"binding summary\n");
        let nonce = match s.next_action() {
            Some(Action::Send(f)) => challenge(&f),
            other => panic!("a command before login must not run: {other:?}"),
        };
        let wrong = respond(&ha1("admin", "bindery", "guess"), &nonce);
        s.input(format!("auth admin {wrong}\n").as_bytes());
        let nonce = match s.next_action() {
            Some(Action::Send(f)) => challenge(&f),
            other => panic!("a wrong answer gets a new challenge: {other:?}"),
        };
        // The right password against a stale challenge is still wrong.
        let stale = respond(&ha1("admin", "bindery", "secret"), &format!("{nonce}x"));
        s.input(format!("auth admin {stale}\n").as_bytes());
        let Some(Action::Close(f)) = s.next_action() else {
            panic!("the third failure closes");
        };
        assert_eq!(f.status, Status::Bye);
        assert_eq!(s.take_failure().as_deref(), Some("admin"), "for the log");
        assert_eq!(s.take_failure(), None);
    }

    #[test]
    fn a_right_answer_opens_the_console() {
        let mut s = Session::new(Some(login()));
        let nonce = challenge(&s.greeting());
        let good = respond(&ha1("admin", "bindery", "secret"), &nonce);
        s.input(format!("auth admin {good}\njson summary\nquit\n").as_bytes());
        assert_eq!(
            s.next_action(),
            Some(Action::Send(Frame::new(Status::Ok, "authenticated")))
        );
        assert_eq!(
            s.next_action(),
            Some(Action::Run {
                words: vec!["summary".into()],
                json: true
            })
        );
        assert!(matches!(s.next_action(), Some(Action::Close(_))));
        assert_eq!(s.user.as_deref(), Some("admin"));
        assert_eq!(s.take_login().as_deref(), Some("admin"));
        assert_eq!(s.take_login(), None, "once");
    }

    fn authz() -> Authz {
        Authz {
            rules: Arc::new(
                Rules::new(&[("root", &[".*"]), ("admin", &["^config", "^summary$"])])
                    .expect("patterns"),
            ),
            groups: Arc::new(Groups::parse("admin:serv,ec\n")),
        }
    }

    #[test]
    fn commands_are_put_to_the_rules() {
        let mut s = Session::new(None)
            .with_user("serv".into())
            .with_authz(authz());
        s.input(b"summary\njson summary\nsummary reset\nquit\n");
        assert_eq!(
            s.next_action(),
            Some(Action::Run {
                words: vec!["summary".into()],
                json: false
            })
        );
        let allowed = Authorized {
            user: "serv".into(),
            command: "summary".into(),
            decision: Decision::Allowed {
                role: "admin".into(),
            },
        };
        assert_eq!(s.take_authorization(), Some(allowed.clone()));
        assert_eq!(s.take_authorization(), None, "once");
        // `json` is bindery's output switch, not part of the command the rules see.
        assert!(matches!(
            s.next_action(),
            Some(Action::Run { json: true, .. })
        ));
        assert_eq!(s.take_authorization(), Some(allowed));
        assert_eq!(
            s.next_action(),
            Some(Action::Send(Frame::new(Status::Error, NOT_AUTHORIZED)))
        );
        assert_eq!(
            s.take_authorization().map(|a| (a.command, a.decision)),
            Some(("summary reset".into(), Decision::Denied))
        );
        assert!(matches!(s.next_action(), Some(Action::Close(_))));
        assert_eq!(s.take_authorization(), None, "quit is not a command");
    }

    #[test]
    fn no_rules_no_checks() {
        let mut s = Session::new(None).with_user("serv".into());
        s.input(b"shutdown\n");
        assert!(matches!(s.next_action(), Some(Action::Run { .. })));
        assert_eq!(s.take_authorization(), None);
    }

    #[test]
    fn always_allow_and_always_deny_decide_the_login() {
        for (always, admitted) in [(Some(true), true), (Some(false), false)] {
            let mut l = login();
            l.always = always;
            let mut s = Session::new(Some(l));
            let nonce = challenge(&s.greeting());
            let answer = if admitted {
                "0".repeat(32)
            } else {
                respond(&ha1("admin", "bindery", "secret"), &nonce)
            };
            s.input(format!("auth admin {answer}\n").as_bytes());
            let ok = matches!(s.next_action(), Some(Action::Send(f)) if f.status == Status::Ok);
            assert_eq!(ok, admitted, "{always:?}");
        }
    }

    #[test]
    fn unix_sockets_need_no_login() {
        let mut s = Session::new(None);
        assert_eq!(s.greeting().status, Status::Ok);
        s.input(b"binding summary default\n");
        assert_eq!(
            s.next_action(),
            Some(Action::Run {
                words: vec!["binding".into(), "summary".into(), "default".into()],
                json: false
            })
        );
        assert_eq!(s.next_action(), None);
    }
}
