//! Momentum's acctlog (`content/momentum/4/4-log-formats.md`, "acctlog", in
//! SparkPost/support-docs): authentication records `TIME@N@LISTENER@PEER@USER@1|0`, one for
//! every console login (the `auth` answer to the challenge, or a Unix socket's system user
//! where authorization is on), and authorization records
//! `TIME@Z@LISTENER@PEER@USER@1|0@COMMAND[@ROLE]`, one for every command put to the
//! `Authorization` rules.

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

/// One console command put to the rules: allowed by `role`, or refused (`None`). Momentum's
/// `-1` (an error while authorizing) has no counterpart: bindery's rules cannot fail.
pub fn authorization(
    now: u64,
    listener: &str,
    peer: &str,
    user: &str,
    command: &str,
    role: Option<&str>,
) -> String {
    let now = now.to_string();
    let mut fields = vec![now.as_str(), "Z", listener, peer, user];
    match role {
        Some(r) => fields.extend(["1", command, r]),
        None => fields.extend(["0", command]),
    }
    line(&fields)
}

#[cfg(test)]
mod tests {
    #[test]
    fn authorization_records_match_the_documented_examples() {
        assert_eq!(
            super::authorization(
                1160503811,
                "/tmp/2025",
                "",
                "ec-user",
                "summary",
                Some("users")
            ),
            "1160503811@Z@/tmp/2025@@ec-user@1@summary@users\n"
        );
        assert_eq!(
            super::authorization(1160504707, "/tmp/2025", "", "ec-user", "shutdown", None),
            "1160504707@Z@/tmp/2025@@ec-user@0@shutdown\n"
        );
        assert_eq!(
            super::authorization(
                1160172223,
                "*:2025",
                "10.80.116.126:37162",
                "ec-user",
                "summary",
                Some("users")
            ),
            "1160172223@Z@*:2025@10.80.116.126:37162@ec-user@1@summary@users\n"
        );
        // A command with the separator in it keeps the field count.
        assert_eq!(
            super::authorization(1, "/s", "", "u", "message a@b", None),
            "1@Z@/s@@u@0@message a\\@b\n"
        );
    }

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
