//! MAIL FROM (RFC 5321 §4.1.1.2) with SIZE, BODY, SMTPUTF8, RET and ENVID.

use super::{Phase, Session};
use crate::address::Mailbox;
use crate::command::MailParams;
use crate::reply::Reply;

impl Session {
    pub(super) fn mail(&mut self, from: Option<Mailbox>, params: MailParams) {
        match self.phase {
            Phase::Fresh => {
                return self.error(Reply::new(503, "5.5.1", "Error: send HELO/EHLO first"));
            }
            Phase::Mail => {
                return self.error(Reply::new(503, "5.5.1", "Error: nested MAIL command"));
            }
            _ => {}
        }
        let esmtp_params = params.size.is_some()
            || params.body.is_some()
            || params.smtputf8
            || params.ret.is_some()
            || params.envid.is_some();
        if esmtp_params && !self.esmtp {
            return self.error(Reply::new(555, "5.5.4", "Error: parameters need EHLO"));
        }
        let limit = self.cfg.max_message_size;
        if limit > 0 && params.size.is_some_and(|s| s > limit) {
            return self.error(Reply::new(
                552,
                "5.3.4",
                "Error: message size exceeds fixed limit",
            ));
        }
        if self.cfg.max_messages > 0 && self.messages >= self.cfg.max_messages {
            return self.error(Reply::new(
                451,
                "4.7.0",
                "Error: too many messages in this connection",
            ));
        }
        self.sender = from;
        self.params = params;
        self.phase = Phase::Mail;
        self.ok(Reply::new(250, "2.1.0", "Sender OK"));
    }
}
