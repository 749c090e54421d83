//! Momentum's Lua dialect. Momentum embeds Lua 5.1 (its own threaded build, "thrlua",
//! 5.1.38 in the 3.x changelog), which bindery runs as it is (mlua's vendored 5.1), plus
//! what its reference pages and real scripts add: `!=` for "not equal", and bitwise
//! operators (`bitwise.rs`). Lua 5.1 rejects both, so before a chunk loads each `!=` outside
//! strings and comments becomes `~=` (the same length: errors keep their line and column),
//! and each bitwise expression becomes calls (lines keep their numbers).

use std::borrow::Cow;

/// `src` in Lua 5.1: `!=` spelt `~=`, and Momentum's bitwise operators as calls
/// (`bitwise.rs`); borrowed when there is nothing to change.
pub fn translate(src: &str) -> Cow<'_, str> {
    match not_equal(src) {
        Cow::Borrowed(s) => crate::bitwise::translate(s),
        Cow::Owned(s) => Cow::Owned(crate::bitwise::translate(&s).into_owned()),
    }
}

/// `src` with every `!=` operator spelt `~=`; borrowed when there is none.
fn not_equal(src: &str) -> Cow<'_, str> {
    if !src.contains("!=") {
        return Cow::Borrowed(src);
    }
    let mut out = src.as_bytes().to_vec();
    for t in crate::lex::lex(src) {
        if t.kind == crate::lex::Tok::Punct && &src[t.start..t.end] == "!=" {
            out[t.start] = b'~';
        }
    }
    // Only an ASCII byte was replaced by another: still UTF-8.
    Cow::Owned(String::from_utf8(out).unwrap_or_else(|_| src.to_string()))
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn not_equal_is_rewritten_outside_strings_and_comments() {
        let src = r#"if a != nil and b!=2 then print("x != y", 'a != b') end -- c != d
--[[ e != f ]] local s = [==[ g != h ]] ]==] if s != "" then end"#;
        let want = r#"if a ~= nil and b~=2 then print("x != y", 'a != b') end -- c != d
--[[ e != f ]] local s = [==[ g != h ]] ]==] if s ~= "" then end"#;
        assert_eq!(translate(src), want);
    }

    #[test]
    fn escapes_and_unclosed_strings_do_not_confuse_it() {
        assert_eq!(
            translate(r#"x = "a\"!=" y = 1 != 2"#),
            r#"x = "a\"!=" y = 1 ~= 2"#
        );
        assert_eq!(translate("x = 'open\ny = 1 != 2"), "x = 'open\ny = 1 ~= 2");
        assert_eq!(
            translate("s = [[never closed != "),
            "s = [[never closed != "
        );
        assert!(matches!(translate("a ~= b"), std::borrow::Cow::Borrowed(_)));
    }
}
