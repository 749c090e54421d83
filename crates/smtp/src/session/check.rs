//! Policy checks: the points where the session stops and asks the caller.
//!
//! With a check enabled, the command is first put through the protocol's own checks; if it
//! passes them, `step` returns [`Step::Check`] and the command waits. [`Session::verdict`]
//! then either completes it as if no check existed (`None`) or refuses it with the caller's
//! reply. A refused connection gets that reply instead of the greeting and is closed.

use super::{Session, Step};
use crate::address::Mailbox;
use crate::command::{MailParams, RcptParams};
use crate::reply::Reply;

/// Which points ask the caller (the policy has a callout there).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checks {
    pub connect: bool,
    pub ehlo: bool,
    pub mail: bool,
    pub rcpt: bool,
    /// DATA, before the 354: the recipient list is complete.
    pub data: bool,
}

/// What the caller is asked about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// A new connection, before the greeting.
    Connect,
    /// EHLO or HELO with this name.
    Hello(String),
    /// MAIL FROM with this reverse-path (`None` for `<>`); a new transaction starts here.
    Mail(Option<Mailbox>),
    /// RCPT TO with this recipient.
    Rcpt(Mailbox),
    /// DATA: the transaction's recipients, complete (Momentum's `validate_rcptto_list`).
    Data(Vec<Mailbox>),
}

/// A command held until its verdict.
#[derive(Debug)]
pub(super) enum Pending {
    Connect,
    Hello {
        name: String,
        esmtp: bool,
    },
    Mail {
        from: Option<Mailbox>,
        params: MailParams,
    },
    Rcpt {
        to: Mailbox,
        params: RcptParams,
    },
    Data(Vec<Mailbox>),
}

impl Pending {
    pub(super) fn check(&self) -> Check {
        match self {
            Pending::Connect => Check::Connect,
            Pending::Hello { name, .. } => Check::Hello(name.clone()),
            Pending::Mail { from, .. } => Check::Mail(from.clone()),
            Pending::Rcpt { to, .. } => Check::Rcpt(to.clone()),
            Pending::Data(list) => Check::Data(list.clone()),
        }
    }
}

impl Session {
    /// Holds a command for its verdict and says so.
    pub(super) fn ask(&mut self, p: Pending) -> Step {
        let check = p.check();
        self.pending = Some((p, true));
        Step::Check(check)
    }

    /// The caller's answer to the last [`Step::Check`]: `None` lets the command go on,
    /// `Some(reply)` refuses it with that reply.
    pub fn verdict(&mut self, refusal: Option<Reply>) {
        let Some((pending, _)) = self.pending.take() else {
            return;
        };
        // A refusal here is the policy's, as the rejectlog's `M` field says.
        self.refuser = "scriptlet";
        match (pending, refusal) {
            (Pending::Connect, None) => self.greet(),
            (Pending::Connect, Some(r)) => self.close_with(r),
            (Pending::Hello { name, esmtp }, None) => self.hello_accepted(name, esmtp),
            (Pending::Mail { from, params }, None) => self.mail_accepted(from, params),
            (Pending::Rcpt { to, params }, None) => self.rcpt_accepted(to, params),
            (Pending::Rcpt { .. }, Some(r)) => {
                self.refused += 1;
                self.error(r);
            }
            (Pending::Data(_), None) => self.data_accepted(),
            (_, Some(r)) => self.error(r),
        }
        self.refuser = "esmtp";
    }
}
