//! The `Received:` trace header (RFC 5321 §4.4) and the RFC 5322 date it ends with.

use std::fmt::Write;
use std::net::IpAddr;

/// What the trace header says about one reception.
pub struct Trace<'a> {
    pub helo: &'a str,
    pub peer: IpAddr,
    pub hostname: &'a str,
    /// `SMTP`, `ESMTP`, `ESMTPS` (RFC 3848).
    pub protocol: &'a str,
    pub id: &'a str,
    /// Named in a `for` clause only when there is exactly one, so a copy does not list the
    /// other recipients.
    pub single_rcpt: Option<&'a str>,
    /// Seconds since the Unix epoch.
    pub time: u64,
    /// The user the client logged in as with SMTP AUTH: an `Authentication-Results:` header
    /// (RFC 8601 `auth`) goes above the trace header, as Momentum's inbound-smtp page says.
    pub auth_user: Option<&'a str>,
}

/// The whole header (with `Authentication-Results:` first for a logged-in client), folded,
/// ending in CRLF.
pub fn received(t: &Trace<'_>) -> String {
    let mut s = String::with_capacity(200);
    if let Some(user) = t.auth_user {
        // RFC 8601 §2.7.4: `smtp.auth` is the login; a value that is not a token is quoted.
        // RFC 2045's tspecials are quoted, except '@', which RFC 8601's pvalue allows bare.
        let token = !user.is_empty()
            && user
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>,;:\\\"/[]?=".contains(&b));
        let user = if token {
            user.to_string()
        } else {
            let clean: String = user
                .chars()
                .filter(|c| !c.is_control())
                .map(|c| if c == '"' || c == '\\' { '?' } else { c })
                .collect();
            format!("\"{clean}\"")
        };
        let _ = write!(
            s,
            "Authentication-Results: {};\r\n\tauth=pass smtp.auth={user}\r\n",
            t.hostname
        );
    }
    let peer = match t.peer {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("IPv6:{v6}"),
    };
    // No HELO (`Require_EHLO = false` lets a client skip it): the address stands for the
    // name, as RFC 5321 §4.4 allows.
    let from = if t.helo.is_empty() {
        format!("[{peer}]")
    } else {
        sanitize(t.helo)
    };
    let _ = write!(
        s,
        "Received: from {} ([{}])\r\n\tby {} (Bindery) with {} id {}",
        from, peer, t.hostname, t.protocol, t.id
    );
    if let Some(r) = t.single_rcpt {
        let _ = write!(s, "\r\n\tfor <{}>", sanitize(r));
    }
    let _ = write!(s, ";\r\n\t{}\r\n", rfc5322_date(t.time));
    s
}

/// Keeps client-supplied text from breaking the header: no controls, no parentheses.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || c == '(' || c == ')' {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// `Tue, 24 Nov 2026 10:00:00 +0000` for a Unix time, in UTC.
pub fn rfc5322_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_795_478_400),
            "Tue, 24 Nov 2026 00:00:00 +0000"
        );
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    /// A trace of a session from 127.0.0.2 to mx.example at the epoch.
    fn trace<'a>(
        helo: &'a str,
        protocol: &'a str,
        rcpt: Option<&'a str>,
        user: Option<&'a str>,
    ) -> Trace<'a> {
        Trace {
            helo,
            peer: "127.0.0.2".parse().unwrap(),
            hostname: "mx.example",
            protocol,
            id: "0123",
            single_rcpt: rcpt,
            time: 0,
            auth_user: user,
        }
    }

    #[test]
    fn header() {
        let h = received(&trace("client(x)", "ESMTPS", Some("u@x.example"), None));
        assert_eq!(
            h,
            "Received: from client?x? ([127.0.0.2])\r\n\tby mx.example (Bindery) with ESMTPS id 0123\r\n\tfor <u@x.example>;\r\n\tThu, 1 Jan 1970 00:00:00 +0000\r\n"
        );
        for (user, shown) in [
            ("alice", "alice"),
            ("a@b.example", "a@b.example"),
            ("my user", "\"my user\""),
        ] {
            let h = received(&trace("c", "ESMTPSA", None, Some(user)));
            assert!(
                h.starts_with(&format!(
                    "Authentication-Results: mx.example;\r\n\tauth=pass smtp.auth={shown}\r\nReceived: "
                )),
                "{h}"
            );
        }
    }
}
