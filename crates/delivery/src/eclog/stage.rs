//! Momentum's connection stages (`content/momentum/4/4-log-formats-connection-stages.md` in
//! SparkPost/support-docs): the number the mainlog's failure records and the bouncelog carry
//! for where in the SMTP dialogue a failure happened.

use bindery_smtp::client::Phase;

/// No connection was made (DNS, connect, a host that is down, an internal failure).
pub const NOT_CONNECTED: u8 = 0;

/// A bounce that came back as mail after delivery ("out-of-band bounce (MDN)").
pub const OUT_OF_BAND: u8 = 21;

/// The stage a failure that came while the client was in `phase` is logged with.
pub fn of(phase: Phase) -> u8 {
    match phase {
        Phase::Ready | Phase::Quit => 1,
        Phase::MailFrom => 2,
        Phase::RcptTo => 4,
        Phase::Data => 6,
        // The body went out; the reply to the final dot is what failed.
        Phase::Body => 9,
        // Momentum has no stage of its own for the login, which is part of the handshake.
        Phase::Ehlo | Phase::Auth => 10,
        Phase::Greeting => 12,
        Phase::Rset => 13,
        Phase::StartTls => 15,
        Phase::Closed => 22,
    }
}
