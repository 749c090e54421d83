//! RSET, QUIT, HELP and STARTTLS (NOOP and VRFY are one-liners in `mod.rs`).

use super::{Phase, Session, Step};
use crate::reply::Reply;

impl Session {
    pub(super) fn rset(&mut self) {
        self.reset_transaction();
        self.ok(Reply::new(250, "2.0.0", "OK"));
    }

    pub(super) fn quit(&mut self) -> Step {
        let text = format!("{} closing connection", self.cfg.hostname);
        self.close_with(Reply::new(221, "2.0.0", text));
        Step::Close
    }

    pub(super) fn help(&mut self) {
        let mut cmds = String::from("Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
        if self.cfg.starttls {
            cmds.push_str(" STARTTLS");
        }
        if self.cfg.auth.usable(self.tls) {
            cmds.push_str(" AUTH");
        }
        self.ok(Reply::new(214, "2.0.0", cmds));
    }

    /// RFC 3207. Pipelined bytes after STARTTLS are thrown away so that nothing sent in the
    /// clear can pose as part of the encrypted session (CVE-2011-0411).
    pub(super) fn starttls(&mut self) -> Option<Step> {
        if !self.cfg.starttls {
            self.error(Reply::new(502, "5.5.1", "Error: STARTTLS not available"));
            return None;
        }
        if self.tls {
            self.error(Reply::new(503, "5.5.1", "Error: TLS already active"));
            return None;
        }
        if matches!(self.phase, Phase::Mail) {
            self.error(Reply::new(
                503,
                "5.5.1",
                "Error: STARTTLS inside a transaction",
            ));
            return None;
        }
        if self.helo.is_none() || !self.esmtp {
            self.error(Reply::new(503, "5.5.1", "Error: send EHLO first"));
            return None;
        }
        self.inbuf.clear();
        self.ok(Reply::new(220, "2.0.0", "Ready to start TLS"));
        Some(Step::StartTls)
    }
}
