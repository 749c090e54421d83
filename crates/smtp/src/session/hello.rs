//! EHLO and HELO (RFC 5321 §4.1.1.1).

use super::{Pending, Phase, Session, Step};
use crate::reply::Reply;

impl Session {
    pub(super) fn hello(&mut self, name: String, esmtp: bool) -> Option<Step> {
        if matches!(self.phase, Phase::Closed) {
            return None;
        }
        if self.cfg.checks.ehlo {
            return Some(self.ask(Pending::Hello { name, esmtp }));
        }
        self.hello_accepted(name, esmtp);
        None
    }

    /// EHLO or HELO passed every check.
    pub(super) fn hello_accepted(&mut self, name: String, esmtp: bool) {
        // A new greeting resets any transaction (RFC 5321 §4.1.4).
        self.phase = Phase::Idle;
        self.reset_transaction();
        self.helo = Some(name);
        self.esmtp = esmtp;
        let host = self.cfg.hostname.clone();
        if !esmtp {
            self.ok(Reply::new(250, "", host));
            return;
        }
        let mut lines = vec![host, "PIPELINING".to_string()];
        lines.push(match self.cfg.max_message_size {
            0 => "SIZE".to_string(),
            n => format!("SIZE {n}"),
        });
        if self.cfg.starttls && !self.tls {
            lines.push("STARTTLS".into());
        }
        for ext in ["ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8"] {
            lines.push(ext.into());
        }
        if let Some(auth) = self.auth_capability() {
            lines.push(auth);
        }
        // A policy's additions (`ac:esmtp_capability_add`), unless already offered.
        for ext in &self.extra_capabilities {
            let keyword = ext.split_whitespace().next();
            if !lines
                .iter()
                .skip(1)
                .any(|l| l.split_whitespace().next() == keyword)
            {
                lines.push(ext.clone());
            }
        }
        self.ok(Reply {
            code: 250,
            status: "",
            lines,
        });
    }
}
