//! Momentum's acctlog authentication records (`content/momentum/4/4-log-formats.md`,
//! "acctlog", in SparkPost/support-docs): `TIME@N@LISTENER@PEER@USER@1|0`. Bindery writes one
//! for every console login (the `auth` answer to the challenge); `Z` authorization records
//! need per-command authorization, which bindery's console does not have yet.

use super::fields::line;

/// `listener` as Momentum shows it (`*:2025`, or a socket path); `peer` `ip:port`, empty for
/// a Unix socket.
pub fn authentication(now: u64, listener: &str, peer: &str, user: &str, ok: bool) -> String {
    line(&[
        &now.to_string(),
        "N",
        listener,
        peer,
        user,
        if ok { "1" } else { "0" },
    ])
}

#[cfg(test)]
mod tests {
    #[test]
    fn records_match_the_documented_examples() {
        assert_eq!(
            super::authentication(1160172232, "*:2025", "10.80.116.126:37164", "ec_user", true),
            "1160172232@N@*:2025@10.80.116.126:37164@ec_user@1\n"
        );
        assert_eq!(
            super::authentication(1160503808, "/tmp/2025", "", "ec-user", true),
            "1160503808@N@/tmp/2025@@ec-user@1\n"
        );
    }
}
