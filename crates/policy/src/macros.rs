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
