//! Tokens of the configuration language.
//!
//! Bare words run until whitespace or one of `" ' = { } [ ] ( ) , #`; so `127.0.0.0/8`,
//! `::1` and `smtp-01` are words. `#` starts a comment wherever it appears outside quotes,
//! and `/*` starts a block comment (which does not nest) at the start of a token.
//! Quoted strings use `"` or `'`; inside them `\"`, `\'` and `\\` are escapes and every
//! other backslash is kept as written, so regexes such as `"/^a\.b$/"` need no doubling.

use crate::diag::Diagnostic;
use crate::span::{FileId, Span};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    Word(String),
    Quoted(String),
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Eq,
    Comma,
}

impl Tok {
    /// How the token is named in "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Quoted(s) => format!("\"{s}\""),
            Tok::LBrace => "`{`".into(),
            Tok::RBrace => "`}`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::Eq => "`=`".into(),
            Tok::Comma => "`,`".into(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
    /// The token is the first on its line; error recovery resumes at such tokens.
    pub line_start: bool,
}

pub fn is_word_byte(b: u8) -> bool {
    !(b.is_ascii_whitespace()
        || matches!(
            b,
            b'"' | b'\'' | b'=' | b'{' | b'}' | b'[' | b']' | b'(' | b')' | b',' | b'#'
        ))
}

/// Splits `text` into tokens. Never fails: bad input becomes diagnostics.
pub fn lex(file: FileId, text: &str, diags: &mut Vec<Diagnostic>) -> Vec<Token> {
    let bytes = text.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    let mut line_start = true;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\n' {
            line_start = true;
            i += 1;
            continue;
        }
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if b == b'#' {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if b == b'/' && bytes.get(i + 1) == Some(&b'*') {
            let start = i;
            i += 2;
            loop {
                if i + 1 >= bytes.len() {
                    diags.push(
                        Diagnostic::error(
                            Span::new(file, start, start + 2),
                            "unterminated block comment",
                        )
                        .with_help("close it with `*/`"),
                    );
                    i = bytes.len();
                    break;
                }
                if bytes[i] == b'*' && bytes[i + 1] == b'/' {
                    i += 2;
                    break;
                }
                if bytes[i] == b'\n' {
                    line_start = true;
                }
                i += 1;
            }
            continue;
        }
        let start = i;
        let tok = match b {
            b'{' => Tok::LBrace,
            b'}' => Tok::RBrace,
            b'(' => Tok::LParen,
            b')' => Tok::RParen,
            b'[' => Tok::LBracket,
            b']' => Tok::RBracket,
            b'=' => Tok::Eq,
            b',' => Tok::Comma,
            b'"' | b'\'' => {
                let quote = b;
                let mut s = String::new();
                i += 1;
                let mut closed = false;
                let mut seg = i;
                while i < bytes.len() {
                    let c = bytes[i];
                    if c == quote {
                        closed = true;
                        break;
                    }
                    if c == b'\\' && matches!(bytes.get(i + 1), Some(b'"' | b'\'' | b'\\')) {
                        s.push_str(&text[seg..i]);
                        s.push(bytes[i + 1] as char);
                        i += 2;
                        seg = i;
                        continue;
                    }
                    i += 1;
                }
                if closed {
                    s.push_str(&text[seg..i]);
                    i += 1;
                } else {
                    // Recover at the end of the line, so one missing quote costs one error
                    // and the rest of the file is still read.
                    let eol = text[start..].find('\n').map_or(text.len(), |n| start + n);
                    s = text[start + 1..eol].to_string();
                    i = eol;
                    diags.push(
                        Diagnostic::error(
                            Span::new(file, start, start + 1),
                            "unterminated quoted string",
                        )
                        .with_help("close the string with a matching quote"),
                    );
                }
                toks.push(Token {
                    tok: Tok::Quoted(s),
                    span: Span::new(file, start, i),
                    line_start,
                });
                line_start = false;
                continue;
            }
            _ => {
                while i < bytes.len() && is_word_byte(bytes[i]) {
                    i += 1;
                }
                // Multi-byte UTF-8 sequences never contain ASCII bytes, so `i` stays on a
                // character boundary.
                toks.push(Token {
                    tok: Tok::Word(text[start..i].to_string()),
                    span: Span::new(file, start, i),
                    line_start,
                });
                line_start = false;
                continue;
            }
        };
        i += 1;
        toks.push(Token {
            tok,
            span: Span::new(file, start, i),
            line_start,
        });
        line_start = false;
    }
    toks
}
