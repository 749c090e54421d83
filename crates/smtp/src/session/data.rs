//! DATA (RFC 5321 §4.1.1.4) and what happens at its end.

use super::{Pending, Phase, Session, Step, Transaction};
use crate::data::DataReceiver;
use crate::reply::Reply;

impl Session {
    pub(super) fn data(&mut self) -> Option<Step> {
        if !matches!(self.phase, Phase::Mail) {
            self.error(Reply::new(503, "5.5.1", "Error: need MAIL command"));
            return None;
        }
        if self.recipients.is_empty() {
            let r = if self.refused > 0 {
                Reply::new(554, "5.5.1", "Error: no valid recipients")
            } else {
                Reply::new(503, "5.5.1", "Error: need RCPT command")
            };
            self.error(r);
            return None;
        }
        if self.cfg.checks.data {
            let list = self.recipients.iter().map(|r| r.mailbox.clone()).collect();
            return Some(self.ask(Pending::Data(list)));
        }
        self.data_accepted();
        None
    }

    /// DATA accepted: the message comes next.
    pub(super) fn data_accepted(&mut self) {
        self.data_serial += 1;
        let hint = self.params.size.unwrap_or(0) as usize;
        self.phase = Phase::Data(Box::new(DataReceiver::new(self.cfg.max_message_size, hint)));
        self.ok(Reply::new(354, "", "End data with <CR><LF>.<CR><LF>"));
    }

    /// The end-of-data mark arrived: refuse the message or hand it over.
    pub(super) fn end_of_data(&mut self, rx: DataReceiver) -> Option<Transaction> {
        let refusal = if rx.bare_line_end {
            Some(Reply::new(
                554,
                "5.6.0",
                "Error: bare CR or LF in message data (RFC 5321 section 2.3.8)",
            ))
        } else if rx.nul {
            Some(Reply::new(
                554,
                "5.6.0",
                "Error: NUL character in message data",
            ))
        } else if rx.over_limit() {
            Some(Reply::new(
                552,
                "5.3.4",
                "Error: message size exceeds fixed limit",
            ))
        } else {
            None
        };
        if let Some(r) = refusal {
            self.reset_transaction();
            self.error(r);
            return None;
        }
        self.phase = Phase::Spooling;
        Some(Transaction {
            peer: self.peer,
            helo: self.helo.clone().unwrap_or_default(),
            protocol: self.protocol(),
            auth_user: self.user.as_ref().map(|(u, _)| u.clone()),
            sender: self.sender.take(),
            params: std::mem::take(&mut self.params),
            recipients: std::mem::take(&mut self.recipients),
            body: rx.into_body(),
        })
    }
}
