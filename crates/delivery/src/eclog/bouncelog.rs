//! Momentum's bouncelog records (`content/momentum/4/log-formats-bouncelog.md` in
//! SparkPost/support-docs), written by `bounce_logger`.
//!
//! A `B` line for every bounce (a permanent failure at delivery, in-band, or one bindery
//! decides itself, such as an expired message), and a `T` line for a transient failure when
//! `log_transient_failures` is on. The classification code is the reply's bounce class
//! (`bindery-bounce`, issue 22).

use super::fields::{line, split_address};

/// "Undetermined" in Momentum's classification codes.
pub const UNDETERMINED: u16 = 1;

pub struct Bounce<'a> {
    pub time: u64,
    pub id: &'a str,
    pub conn: &'a str,
    /// `B` or `T`.
    pub kind: &'a str,
    pub rcpt: &'a str,
    pub sender: &'a str,
    pub binding_group: &'a str,
    pub binding: &'a str,
    pub stage: u8,
    pub class: u16,
    pub size: u64,
    pub ip: &'a str,
    pub reply: &'a str,
}

pub fn bounce(b: &Bounce) -> String {
    let (rl, rd) = split_address(b.rcpt);
    let (sl, sd) = split_address(b.sender);
    line(&[
        &b.time.to_string(),
        b.id,
        b.id,
        b.conn,
        b.kind,
        rl,
        rd,
        sl,
        sd,
        b.binding_group,
        b.binding,
        &b.stage.to_string(),
        &b.class.to_string(),
        &b.size.to_string(),
        b.ip,
        b.reply,
    ])
}

pub fn heartbeat(now: u64) -> String {
    format!("{now}@@@@M1\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_matches_the_documented_example() {
        let l = bounce(&Bounce {
            time: 1064868656,
            id: "91/6D-07914-E67BC044",
            conn: "00/00-04532-A3456B54",
            kind: "B",
            rcpt: "johndoe@example.fict",
            sender: "info@postalengine.com",
            binding_group: "group-a",
            binding: "binding-a",
            stage: 21,
            class: 24,
            size: 1223,
            ip: "10.0.0.1",
            reply: "554 5.4.7 [internal] exceeded max time without delivery",
        });
        assert_eq!(
            l,
            "1064868656@91/6D-07914-E67BC044@91/6D-07914-E67BC044@00/00-04532-A3456B54@B\
             @johndoe@example.fict@info@postalengine.com@group-a@binding-a@21@24@1223\
             @10.0.0.1@554 5.4.7 [internal] exceeded max time without delivery\n"
        );
        assert_eq!(heartbeat(1251222268), "1251222268@@@@M1\n");
    }
}
