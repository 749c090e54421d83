//! MAIL FROM (RFC 5321 §4.1.1.2) with SIZE, BODY, SMTPUTF8, RET and ENVID.

use super::{Pending, Phase, Session, Step};
use crate::address::Mailbox;
use crate::command::MailParams;
use crate::reply::Reply;

impl Session {
    pub(super) fn mail(&mut self, from: Option<Mailbox>, params: MailParams) -> Option<Step> {
        self.mail_checks(&params)?;
        // Domain_For_Unqualified_Sender_Address; an unqualified sender without it is the
        // syntax error it always was.
        let from = match from {
            Some(m) if m.is_unqualified() => match &self.cfg.unqualified_sender_domain {
                Some(d) => Some(m.qualified(d)),
                None => {
                    self.error(Reply::new(501, "5.1.7", "Error: bad sender address syntax"));
                    return None;
                }
            },
            other => other,
        };
        let refused =
            match &from {
                None if !self.cfg.allow_null_sender => {
                    Some(Reply::new(550, "5.7.1", "Error: null sender not accepted"))
                }
                Some(m) if !self.cfg.allow_ip_literal && m.has_literal_domain() => Some(
                    Reply::new(550, "5.1.7", "Error: address literals are not accepted"),
                ),
                _ => None,
            };
        if let Some(r) = refused {
            self.error(r);
            return None;
        }
        if self.cfg.checks.mail {
            return Some(self.ask(Pending::Mail { from, params }));
        }
        self.mail_accepted(from, params);
        None
    }

    /// The protocol's checks; `None` when one refused the command (the reply is out).
    fn mail_checks(&mut self, params: &MailParams) -> Option<()> {
        let refuse = |s: &mut Session, r: Reply| {
            s.error(r);
            None
        };
        match self.phase {
            Phase::Fresh if self.cfg.require_hello || self.tls => {
                return refuse(
                    self,
                    Reply::new(503, "5.5.1", "Error: send HELO/EHLO first"),
                );
            }
            Phase::Mail => {
                return refuse(self, Reply::new(503, "5.5.1", "Error: nested MAIL command"));
            }
            _ => {}
        }
        let esmtp_params = params.size.is_some()
            || params.body.is_some()
            || params.smtputf8
            || params.ret.is_some()
            || params.envid.is_some();
        if esmtp_params && !self.esmtp {
            return refuse(
                self,
                Reply::new(555, "5.5.4", "Error: parameters need EHLO"),
            );
        }
        let limit = self.cfg.max_message_size;
        if limit > 0 && params.size.is_some_and(|s| s > limit) {
            return refuse(
                self,
                Reply::new(552, "5.3.4", "Error: message size exceeds fixed limit"),
            );
        }
        if let (Some(size), Some(free)) = (params.size, self.spool_free())
            && size > free
        {
            // Not the client's fault: no error counted (RFC 1870 §6.1).
            self.reply(Reply::new(
                452,
                "4.3.1",
                "Error: insufficient system storage",
            ));
            return None;
        }
        if self.cfg.max_messages > 0 && self.messages >= self.cfg.max_messages {
            return refuse(
                self,
                Reply::new(451, "4.7.0", "Error: too many messages in this connection"),
            );
        }
        Some(())
    }

    /// MAIL passed every check: the transaction starts.
    pub(super) fn mail_accepted(&mut self, from: Option<Mailbox>, params: MailParams) {
        self.sender = from;
        self.params = params;
        self.phase = Phase::Mail;
        self.ok(Reply::new(250, "2.1.0", "Sender OK"));
    }
}
