//! `msys.expandMacro`: Momentum's `%{scope:key}` macros in a string. The validation-context
//! scopes (`vctx_conn`, `vctx_mess`) are expanded; a macro bindery does not know, or a key
//! that is not set, is left as written (never replaced by an invented value).

/// `text` with each `%{kind:key}` that `lookup(kind, key)` answers replaced.
pub fn expand(text: &str, lookup: impl Fn(&str, &str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("%{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        let value = inner
            .split_once(':')
            .and_then(|(kind, key)| lookup(kind, key));
        match value {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// An SPF macro letter (RFC 7208 §7.3) for the session and message in hand: `s` the
/// sender, `l` its local part, `o` and `d` its domain, `i` and `c` the client's address,
/// `v` `in-addr` or `ip6`, `h` the HELO name, `t` the time. `p` (a validated PTR name) and
/// `r` are not known here and stay as written.
pub fn spf(letter: &str, conn: &crate::Conn, msg: &crate::Message) -> Option<String> {
    let sender = || {
        if msg.sender.is_empty() {
            // RFC 7208 §4.3: the null sender is postmaster at the HELO name.
            conn.ehlo.as_ref().map(|h| format!("postmaster@{h}"))
        } else {
            Some(msg.sender.clone())
        }
    };
    match letter.to_ascii_lowercase().as_str() {
        "s" => sender(),
        "l" => sender().and_then(|s| s.rsplit_once('@').map(|(l, _)| l.to_string())),
        "o" | "d" => sender().and_then(|s| s.rsplit_once('@').map(|(_, d)| d.to_string())),
        "i" | "c" => conn.peer.map(|p| p.to_string()),
        "v" => conn
            .peer
            .map(|p| if p.is_ipv4() { "in-addr" } else { "ip6" }.to_string()),
        "h" => conn.ehlo.clone(),
        "t" => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs().to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn known_macros_expand_and_the_rest_stay() {
        let f = |kind: &str, key: &str| {
            (kind == "vctx_conn" && key == "ehlo").then(|| "c.example".to_string())
        };
        assert_eq!(
            expand(
                "ehlo %{vctx_conn:ehlo} %{vctx_conn:none} %{spf:x} %{open",
                f
            ),
            "ehlo c.example %{vctx_conn:none} %{spf:x} %{open"
        );
    }
}
