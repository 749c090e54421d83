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
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i += 2;
                match long_bracket(b, i) {
                    Some(level) => i = skip_long(b, i, level),
                    None => {
                        while i < b.len() && b[i] != b'\n' {
                            i += 1;
                        }
                    }
                }
            }
            b'[' => match long_bracket(b, i) {
                Some(level) => i = skip_long(b, i, level),
                None => i += 1,
            },
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != q && b[i] != b'\n' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'!' if b.get(i + 1) == Some(&b'=') => {
                out[i] = b'~';
                i += 2;
            }
            _ => i += 1,
        }
    }
    // Only an ASCII byte was replaced by another: still UTF-8.
    Cow::Owned(String::from_utf8(out).unwrap_or_else(|_| src.to_string()))
}

/// The level of a long bracket `[`, `=`*, `[` opening at `i`, if one does.
fn long_bracket(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'[') {
        return None;
    }
    let mut j = i + 1;
    while b.get(j) == Some(&b'=') {
        j += 1;
    }
    (b.get(j) == Some(&b'[')).then_some(j - i - 1)
}

/// Past the long string or comment opening at `i` with `level` equals signs (to the end of
/// the text when it is not closed: the Lua parser reports that).
fn skip_long(b: &[u8], i: usize, level: usize) -> usize {
    let mut j = i + level + 2;
    while j < b.len() {
        if b[j] == b']'
            && b.get(j + 1 + level) == Some(&b']')
            && b[j + 1..j + 1 + level].iter().all(|&c| c == b'=')
        {
            return j + level + 2;
        }
        j += 1;
    }
    b.len()
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
