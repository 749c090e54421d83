//! A Lua 5.1 lexer for the dialect rewrites (`dialect.rs`, `bitwise.rs`): the significant
//! tokens of a chunk with their byte ranges, comments and white space skipped, so that a
//! rewrite never touches what sits in a string or a comment. Momentum's two-character
//! operators (`!=`, `^^`) are tokens of their own.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tok {
    Name,
    Number,
    Str,
    Punct,
}

#[derive(Clone, Copy, Debug)]
pub struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

pub const KEYWORDS: &[&str] = &[
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "if", "in", "local",
    "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
];

/// The significant tokens of `src` (comments and white space skipped).
pub fn lex(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            i += 2;
            match long_level(b, i) {
                Some(l) => i = skip_long(b, i, l),
                None => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
            }
            continue;
        }
        if c == b'['
            && let Some(l) = long_level(b, i)
        {
            i = skip_long(b, i, l);
            out.push(Token {
                kind: Tok::Str,
                start,
                end: i,
            });
            continue;
        }
        if c == b'"' || c == b'\'' {
            i += 1;
            while i < b.len() && b[i] != c && b[i] != b'\n' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
            out.push(Token {
                kind: Tok::Str,
                start,
                end: i,
            });
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Token {
                kind: Tok::Name,
                start,
                end: i,
            });
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || b[i] == b'.'
                    || ((b[i] == b'+' || b[i] == b'-')
                        && matches!(b[i - 1], b'e' | b'E')
                        && !src[start..i].starts_with("0x")))
            {
                i += 1;
            }
            out.push(Token {
                kind: Tok::Number,
                start,
                end: i,
            });
            continue;
        }
        let three = ["..."];
        let two = ["..", "==", "~=", "<=", ">=", "<<", ">>", "^^", "!="];
        let len = if three.iter().any(|p| src[i..].starts_with(p)) {
            3
        } else if two.iter().any(|p| src[i..].starts_with(p)) {
            2
        } else {
            src[i..].chars().next().map_or(1, char::len_utf8)
        };
        i += len;
        out.push(Token {
            kind: Tok::Punct,
            start,
            end: i,
        });
    }
    out
}

fn long_level(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'[') {
        return None;
    }
    let mut j = i + 1;
    while b.get(j) == Some(&b'=') {
        j += 1;
    }
    (b.get(j) == Some(&b'[')).then_some(j - i - 1)
}

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
