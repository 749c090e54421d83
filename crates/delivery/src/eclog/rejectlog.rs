//! Momentum's rejectlog records (`content/momentum/4/log-formats-rejectlog.md` in
//! SparkPost/support-docs): space-separated `KEY=value` fields after `TIME:`, the reason
//! last.
//!
//! The phase names the state the session was in when the refused command came
//! (`awaiting ehlo`, `awaiting mailfrom`, `awaiting rcptto`, `awaiting data`, `reading body`;
//! the documentation shows the second and the last). `M` names what refused: `scriptlet` for
//! a policy verdict, `esmtp` for the protocol core (syntax, relaying, limits).

/// One refused command.
pub struct Rejection<'a> {
    pub time: u64,
    /// `ip:port` of the client and of our end.
    pub remote: &'a str,
    pub local: &'a str,
    pub conn: &'a str,
    /// The binding and binding group (Momentum's pathway) the session is on.
    pub binding: &'a str,
    pub binding_group: &'a str,
    pub phase: &'a str,
    pub code: u16,
    pub module: &'a str,
    /// The HELO/EHLO line and the name it gave; empty before one came.
    pub ehlo_string: &'a str,
    pub ehlo_domain: &'a str,
    /// The envelope sender, when MAIL was accepted.
    pub mailfrom: Option<&'a str>,
    pub text: &'a str,
}

/// `"..."` with `"` and `\` escaped.
fn quoted(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A context value: bare when it is one plain word, quoted otherwise (as the example shows
/// `ehlo_domain=rh52-node1` but `ehlo_string="EHLO rh52-node1"`).
fn value(s: &str, out: &mut String) {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        out.push_str(s);
    } else {
        quoted(s, out);
    }
}

pub fn rejection(r: &Rejection) -> String {
    let mut out = format!("{}: R=", r.time);
    quoted(r.remote, &mut out);
    out.push_str(" L=");
    quoted(r.local, &mut out);
    out.push_str(" C=");
    quoted(r.conn, &mut out);
    out.push_str(" PATH=");
    quoted(r.binding, &mut out);
    out.push_str(" PATH_GRP=");
    quoted(r.binding_group, &mut out);
    out.push_str(" P=");
    quoted(r.phase, &mut out);
    out.push_str(&format!(" E={} M={} CTXCONN=[pathway=", r.code, r.module));
    value(r.binding, &mut out);
    if !r.ehlo_string.is_empty() {
        out.push_str(",ehlo_string=");
        value(r.ehlo_string, &mut out);
        out.push_str(",ehlo_domain=");
        value(r.ehlo_domain, &mut out);
    }
    out.push_str("] CTXMESS=[");
    if let Some(from) = r.mailfrom {
        let (l, d) = super::fields::split_address(from);
        out.push_str("mailfrom_domain=");
        value(d, &mut out);
        out.push_str(",mailfrom_localpart=");
        value(l, &mut out);
    }
    out.push_str("] ");
    super::fields::flat(r.text, &mut out);
    out.push('\n');
    out
}

pub fn heartbeat(now: u64) -> String {
    format!("{now}: Marker 1\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_follows_the_documented_example() {
        let l = rejection(&Rejection {
            time: 1236672125,
            remote: "10.79.25.142:42601",
            local: "10.79.25.142:25",
            conn: "18/00-07149-D7E16B94",
            binding: "default",
            binding_group: "default",
            phase: "awaiting mailfrom",
            code: 550,
            module: "scriptlet",
            ehlo_string: "EHLO rh52-node1",
            ehlo_domain: "rh52-node1",
            mailfrom: Some(""),
            text: "relaying denied",
        });
        assert_eq!(
            l,
            "1236672125: R=\"10.79.25.142:42601\" L=\"10.79.25.142:25\" C=\"18/00-07149-D7E16B94\" \
             PATH=\"default\" PATH_GRP=\"default\" P=\"awaiting mailfrom\" E=550 M=scriptlet \
             CTXCONN=[pathway=default,ehlo_string=\"EHLO rh52-node1\",ehlo_domain=rh52-node1] \
             CTXMESS=[mailfrom_domain=,mailfrom_localpart=] relaying denied\n"
        );
        assert_eq!(heartbeat(1252064908), "1252064908: Marker 1\n");
    }
}
