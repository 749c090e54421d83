//! Momentum's mainlog records (`content/momentum/4/log-formats-mainlog.md` in
//! SparkPost/support-docs): `@`-separated, the fifth field the record type.
//!
//! - `R` reception: one line per recipient of an accepted message;
//! - `D` delivery, `T` transient failure, `P` permanent failure: one line per recipient;
//! - `M` heartbeat.
//!
//! Bindery keeps a multi-recipient message as one spool entry, so the message id and the
//! batch id (the reception that made it) are the same id.

use super::fields::{line, split_address};

/// One recipient of an accepted message.
pub struct Reception<'a> {
    pub time: u64,
    pub id: &'a str,
    /// The inbound session the message came over.
    pub conn: &'a str,
    pub rcpt: &'a str,
    pub sender: &'a str,
    /// The client's address; `unknown` for HTTP, as Momentum writes.
    pub peer_ip: &'a str,
    pub size: u64,
    /// `esmtp`, `rest` (HTTP) or `internal` (a bounce bindery made).
    pub protocol: &'a str,
    pub binding_group: &'a str,
    pub binding: &'a str,
}

pub fn reception(r: &Reception) -> String {
    let (rl, rd) = split_address(r.rcpt);
    let (sl, sd) = split_address(r.sender);
    line(&[
        &r.time.to_string(),
        r.id,
        r.id,
        r.conn,
        "R",
        rl,
        rd,
        sl,
        sd,
        r.peer_ip,
        &r.size.to_string(),
        r.protocol,
        r.binding_group,
        r.binding,
    ])
}

/// One recipient's delivery attempt.
pub struct Attempt<'a> {
    pub time: u64,
    pub id: &'a str,
    /// The outbound connection; empty when none was made.
    pub conn: &'a str,
    pub rcpt: &'a str,
    pub sender: &'a str,
    /// The message's size (a delivery record's field).
    pub size: u64,
    /// The bytes written on the connection in this transaction before it failed (a failure
    /// record's field; 0: no connection was made).
    pub bytes: u64,
    pub binding_group: &'a str,
    pub binding: &'a str,
    /// See `stage.rs`.
    pub stage: u8,
    /// Attempts before this one (0 for the first).
    pub retries: u32,
    /// Seconds since reception, three decimals.
    pub elapsed: &'a str,
    /// The server that answered; empty when there was none.
    pub ip: &'a str,
    pub reply: &'a str,
    /// The failure's bounce class (the bouncelog's field 12); 0 for a delivery.
    pub class: u16,
}

impl Attempt<'_> {
    /// The recipient's domain.
    pub fn domain(&self) -> &str {
        split_address(self.rcpt).1
    }
}

pub fn delivery(a: &Attempt) -> String {
    line(&[
        &a.time.to_string(),
        a.id,
        a.id,
        a.conn,
        "D",
        a.domain(),
        &a.size.to_string(),
        a.binding_group,
        a.binding,
        &a.retries.to_string(),
        a.elapsed,
        a.ip,
    ])
}

/// A `T` (transient) or `P` (permanent) failure record.
pub fn failure(kind: &str, a: &Attempt) -> String {
    line(&[
        &a.time.to_string(),
        a.id,
        a.id,
        a.conn,
        kind,
        a.domain(),
        &a.bytes.to_string(),
        a.binding_group,
        a.binding,
        &a.stage.to_string(),
        &a.retries.to_string(),
        a.elapsed,
        a.ip,
        a.reply,
    ])
}

pub fn heartbeat(now: u64) -> String {
    format!("{now}@@@@M\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented examples, field for field (the ids are the page's).
    #[test]
    fn records_match_the_documented_examples() {
        let r = reception(&Reception {
            time: 1064868656,
            id: "00/00-25004-31B987F3",
            conn: "00/00-04532-A3456B54",
            rcpt: "bob@example.fict",
            sender: "info@postalengine.com",
            peer_ip: "10.0.1.1",
            size: 201,
            protocol: "esmtp",
            binding_group: "default",
            binding: "default",
        });
        assert_eq!(
            r,
            "1064868656@00/00-25004-31B987F3@00/00-25004-31B987F3@00/00-04532-A3456B54@R\
             @bob@example.fict@info@postalengine.com@10.0.1.1@201@esmtp@default@default\n"
        );
        let a = Attempt {
            time: 1064869327,
            id: "00/00-25593-CBD987F3",
            conn: "00/00-04532-A3456B54",
            rcpt: "someone@example.fict",
            sender: "info@postalengine.com",
            size: 266,
            bytes: 0,
            binding_group: "group-a",
            binding: "binding-a",
            stage: 15,
            retries: 0,
            elapsed: "18.53",
            ip: "10.0.0.1",
            reply: "421 no adequate servers",
            class: 70,
        };
        assert_eq!(
            failure("T", &a),
            "1064869327@00/00-25593-CBD987F3@00/00-25593-CBD987F3@00/00-04532-A3456B54@T\
             @example.fict@0@group-a@binding-a@15@0@18.53@10.0.0.1@421 no adequate servers\n"
        );
        let d = delivery(&Attempt {
            elapsed: "0.393",
            ..a
        });
        assert_eq!(
            d,
            "1064869327@00/00-25593-CBD987F3@00/00-25593-CBD987F3@00/00-04532-A3456B54@D\
             @example.fict@266@group-a@binding-a@0@0.393@10.0.0.1\n"
        );
        assert_eq!(heartbeat(1251470342), "1251470342@@@@M\n");
    }
}
