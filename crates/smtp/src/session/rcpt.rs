//! RCPT TO (RFC 5321 §4.1.1.3) with relay control and DSN parameters.

use super::{Pending, Phase, Recipient, Session, Step};
use crate::address::Mailbox;
use crate::command::RcptParams;
use crate::relay;
use crate::reply::Reply;

impl Session {
    pub(super) fn rcpt(&mut self, to: Mailbox, params: RcptParams) -> Option<Step> {
        // RFC 5321 §4.5.1: mail to the postmaster is accepted from anyone, where an address
        // for it is configured; the recipient becomes that address.
        let (to, postmaster) = match &self.cfg.postmaster {
            Some(pm) if is_postmaster(&to, &self.cfg.hostname) => (pm.clone(), true),
            _ => (to, false),
        };
        // Domain_For_Unqualified_Recipient_Addresses qualifies any bare local part; without
        // it only `<Postmaster>` may stand bare (RFC 5321 §4.1.1.3).
        let to = match &self.cfg.unqualified_recipient_domain {
            Some(d) if to.is_unqualified() => to.qualified(d),
            None if to.is_unqualified() && !to.local.eq_ignore_ascii_case("postmaster") => {
                self.error(Reply::new(
                    501,
                    "5.1.3",
                    "Error: bad recipient address syntax",
                ));
                return None;
            }
            _ => to,
        };
        self.rcpt_checks(&to, &params, postmaster)?;
        if self.cfg.checks.rcpt {
            return Some(self.ask(Pending::Rcpt { to, params }));
        }
        self.rcpt_accepted(to, params);
        None
    }

    /// The protocol's checks; `None` when one refused the recipient (the reply is out).
    fn rcpt_checks(&mut self, to: &Mailbox, params: &RcptParams, postmaster: bool) -> Option<()> {
        let refuse = |s: &mut Session, r: Reply| {
            s.refused += 1;
            s.error(r);
            None
        };
        if !matches!(self.phase, Phase::Mail) {
            self.error(Reply::new(503, "5.5.1", "Error: need MAIL command"));
            return None;
        }
        if (params.notify.is_some() || params.orcpt.is_some()) && !self.esmtp {
            return refuse(
                self,
                Reply::new(555, "5.5.4", "Error: parameters need EHLO"),
            );
        }
        if !self.cfg.allow_ip_literal && to.has_literal_domain() {
            return refuse(
                self,
                Reply::new(550, "5.1.3", "Error: address literals are not accepted"),
            );
        }
        let verified_relay = self.peer_verified && self.cfg.tls_verified_peer_can_relay;
        if !self.cfg.relay_client
            && !verified_relay
            && self.user.is_none()
            && !postmaster
            && !self.sender_may_relay()
            && let Err(why) = relay::check(to, &self.cfg.relay_domains, &self.cfg.hostname)
        {
            let text = match why {
                relay::Denied::Routing => {
                    format!("<{to}>: Relay access denied (sender-specified routing)")
                }
                _ => format!("<{to}>: Relay access denied"),
            };
            return refuse(self, Reply::new(550, "5.7.1", text));
        }
        let cap = self.cfg.max_session_recipients;
        if cap > 0 && self.session_recipients >= cap {
            // Momentum's Max_Recipients_Per_Connection: the session is over; the client
            // sends the rest on a new one.
            self.refused += 1;
            let text = format!(
                "{} Error: too many recipients in this session",
                self.cfg.hostname
            );
            self.close_with(Reply::new(421, "4.5.3", text));
            return None;
        }
        if self.cfg.max_recipients > 0 && self.recipients.len() >= self.cfg.max_recipients {
            self.refused += 1;
            // Not an error in the "too many errors" sense: the client did nothing wrong.
            self.reply(Reply::new(452, "4.5.3", "Error: too many recipients"));
            return None;
        }
        Some(())
    }

    /// `Relay_For_Sending_Domains`: the envelope sender's domain lets this client relay.
    fn sender_may_relay(&self) -> bool {
        let Some(set) = &self.cfg.relay_senders else {
            return false;
        };
        if set.is_empty() {
            return true;
        }
        matches!(
            self.sender.as_ref().and_then(|m| m.domain.as_ref()),
            Some(crate::address::Domain::Name(d)) if set.contains(d)
        )
    }

    /// RCPT passed every check: the recipient joins the transaction.
    pub(super) fn rcpt_accepted(&mut self, to: Mailbox, params: RcptParams) {
        self.recipients.push(Recipient {
            mailbox: to,
            params,
        });
        self.session_recipients += 1;
        self.ok(Reply::new(250, "2.1.5", "Recipient OK"));
    }
}

/// `<Postmaster>`, or `postmaster@` our host name (any case).
fn is_postmaster(to: &Mailbox, hostname: &str) -> bool {
    use crate::address::Domain;
    if !to.local_unquoted().eq_ignore_ascii_case("postmaster") {
        return false;
    }
    match &to.domain {
        None => true,
        Some(Domain::Name(d)) => d.eq_ignore_ascii_case(hostname),
        Some(Domain::Literal(_)) => false,
    }
}
