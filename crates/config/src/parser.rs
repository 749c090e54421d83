//! Recursive-descent parser with error recovery.
//!
//! **Invariant:** the parser never panics and never stops at the first error: it returns a
//! best-effort tree together with every diagnostic it found. After an error it skips to the
//! next token that starts a line (or a closing brace) and carries on.

use crate::diag::Diagnostic;
use crate::lexer::{Tok, Token, lex};
use crate::span::{FileId, Span};
use crate::syntax::{Item, RawValue, Spanned};

/// Parses one file's text.
pub fn parse(file: FileId, text: &str) -> (Vec<Item>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let toks = lex(file, text, &mut diags);
    let mut p = Parser {
        toks,
        pos: 0,
        diags,
        eof: Span::new(file, text.len(), text.len()),
    };
    let items = p.items(None);
    (items, p.diags)
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    diags: Vec<Diagnostic>,
    eof: Span,
}

/// Nesting depth beyond which the parser refuses to descend, so that hostile input such as
/// ten thousand `(` cannot overflow the stack.
const MAX_DEPTH: usize = 64;

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n).map(|t| &t.tok)
    }

    fn bump(&mut self) -> Option<Token> {
        let t = self.toks.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn here(&self) -> Span {
        self.peek().map(|t| t.span).unwrap_or(self.eof)
    }

    /// Skips to the next token that starts a line, or to a `}`, so that one bad line costs
    /// one diagnostic.
    fn recover(&mut self) {
        if self.peek().is_some() {
            self.pos += 1;
        }
        while let Some(t) = self.peek() {
            if t.line_start || t.tok == Tok::RBrace {
                break;
            }
            self.pos += 1;
        }
    }

    /// Items until `}` (inside a stanza) or end of input (top level).
    /// `open` is the stanza's keyword and brace when inside one.
    fn items(&mut self, open: Option<(&str, Span, usize)>) -> Vec<Item> {
        let mut items = Vec::new();
        loop {
            let Some(tok) = self.peek() else {
                if let Some((what, span, _)) = open {
                    self.diags.push(
                        Diagnostic::error(
                            span,
                            format!("unclosed stanza `{what}`: no `}}` closes it"),
                        )
                        .with_note(self.eof, "the file ends here"),
                    );
                }
                return items;
            };
            match &tok.tok {
                Tok::RBrace => {
                    if open.is_some() {
                        self.pos += 1;
                        return items;
                    }
                    self.diags.push(
                        Diagnostic::error(tok.span, "unmatched `}`")
                            .with_help("remove it, or open a stanza before it"),
                    );
                    self.pos += 1;
                }
                Tok::Word(_) => {
                    let depth = open.map_or(0, |o| o.2);
                    if let Some(item) = self.item(depth) {
                        items.push(item);
                    }
                }
                other => {
                    let msg = format!("expected an option or a stanza, found {}", other.describe());
                    self.diags.push(Diagnostic::error(tok.span, msg));
                    self.recover();
                }
            }
        }
    }

    fn item(&mut self, depth: usize) -> Option<Item> {
        let key_tok = self.bump()?;
        let Tok::Word(key) = key_tok.tok else {
            return None;
        };
        let key = Spanned {
            node: key,
            span: key_tok.span,
        };
        match self.peek_at(0) {
            // Momentum's inbound-SSL page opens a stanza as `ESMTP_Listener = {`: a brace is
            // never a value, so the `=` is read as the stanza it can only be.
            Some(Tok::Eq) if self.peek_at(1) == Some(&Tok::LBrace) => {
                self.pos += 1;
                let brace = self.bump()?.span;
                self.stanza(key, None, brace, depth)
            }
            Some(Tok::Eq) => {
                self.pos += 1;
                let value = self.value(0)?;
                Some(Item::Option { key, value })
            }
            Some(Tok::LBrace) => {
                let brace = self.bump()?.span;
                self.stanza(key, None, brace, depth)
            }
            // Momentum's documentation writes dictionaries without `=`
            // (`AuthDigestMD5Parameters [ uri = "smtp/mx.example.com" ]`, `map [ ... ]`).
            Some(Tok::LBracket) => {
                let value = self.value(0)?;
                Some(Item::Option { key, value })
            }
            Some(Tok::Word(_) | Tok::Quoted(_)) => {
                let next_is_brace = self.peek_at(1) == Some(&Tok::LBrace);
                let lower = key.node.to_ascii_lowercase();
                if !next_is_brace && (lower == "include" || lower == "readonly_include") {
                    let t = self.bump()?;
                    let (Tok::Word(path) | Tok::Quoted(path)) = t.tok else {
                        return None;
                    };
                    return Some(Item::Include {
                        readonly: lower == "readonly_include",
                        path: Spanned {
                            node: path,
                            span: t.span,
                        },
                    });
                }
                if next_is_brace {
                    let t = self.bump()?;
                    let (Tok::Word(name) | Tok::Quoted(name)) = t.tok else {
                        return None;
                    };
                    let brace = self.bump()?.span;
                    return self.stanza(
                        key,
                        Some(Spanned {
                            node: name,
                            span: t.span,
                        }),
                        brace,
                        depth,
                    );
                }
                let found = self.peek().map(|t| t.tok.describe()).unwrap_or_default();
                self.diags.push(
                    Diagnostic::error(
                        self.here(),
                        format!("expected `=` after `{}`, found {found}", key.node),
                    )
                    .with_help(format!(
                        "write `{} = value`, or `{} \"name\" {{ ... }}` for a stanza",
                        key.node, key.node
                    )),
                );
                self.recover();
                None
            }
            other => {
                let found = other
                    .map(|t| t.describe())
                    .unwrap_or_else(|| "end of file".into());
                self.diags.push(Diagnostic::error(
                    self.here(),
                    format!("expected `=` or `{{` after `{}`, found {found}", key.node),
                ));
                if self.peek().is_some_and(|t| !t.line_start) {
                    self.recover();
                }
                None
            }
        }
    }

    fn stanza(
        &mut self,
        keyword: Spanned<String>,
        name: Option<Spanned<String>>,
        open: Span,
        depth: usize,
    ) -> Option<Item> {
        if depth >= MAX_DEPTH {
            self.diags
                .push(Diagnostic::error(open, "stanzas nested too deeply"));
            self.skip_balanced();
            return None;
        }
        let what = match &name {
            Some(n) => format!("{} \"{}\"", keyword.node, n.node),
            None => keyword.node.clone(),
        };
        let items = self.items(Some((&what, keyword.span, depth + 1)));
        Some(Item::Stanza {
            keyword,
            name,
            items,
            open,
        })
    }

    /// Skips a brace-balanced region after an opening brace that was already consumed.
    fn skip_balanced(&mut self) {
        let mut level = 1usize;
        while let Some(t) = self.bump() {
            match t.tok {
                Tok::LBrace => level += 1,
                Tok::RBrace => {
                    level -= 1;
                    if level == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    fn value(&mut self, depth: usize) -> Option<Spanned<RawValue>> {
        let Some(t) = self.peek().cloned() else {
            self.diags.push(Diagnostic::error(
                self.eof,
                "expected a value, found end of file",
            ));
            return None;
        };
        if depth >= MAX_DEPTH {
            self.diags
                .push(Diagnostic::error(t.span, "values nested too deeply"));
            self.recover();
            return None;
        }
        match t.tok {
            Tok::Word(s) | Tok::Quoted(s) => {
                self.pos += 1;
                Some(Spanned {
                    node: RawValue::Scalar(s),
                    span: t.span,
                })
            }
            Tok::LParen => {
                self.pos += 1;
                let mut elems = Vec::new();
                loop {
                    match self.peek().map(|t| &t.tok) {
                        Some(Tok::RParen) => {
                            let end = self.bump()?.span;
                            let span = Span {
                                end: end.end,
                                ..t.span
                            };
                            return Some(Spanned {
                                node: RawValue::List(elems),
                                span,
                            });
                        }
                        Some(Tok::Comma) => self.pos += 1,
                        Some(Tok::Word(_) | Tok::Quoted(_) | Tok::LParen | Tok::LBracket) => {
                            elems.push(self.value(depth + 1)?.node);
                        }
                        _ => {
                            self.diags.push(
                                Diagnostic::error(t.span, "unclosed list: expected `)`")
                                    .with_help("lists are written `( a b \"c d\" )`"),
                            );
                            return None;
                        }
                    }
                }
            }
            Tok::LBracket => {
                self.pos += 1;
                let mut entries = Vec::new();
                loop {
                    match self.peek().map(|t| t.tok.clone()) {
                        Some(Tok::RBracket) => {
                            let end = self.bump()?.span;
                            let span = Span {
                                end: end.end,
                                ..t.span
                            };
                            return Some(Spanned {
                                node: RawValue::Dict(entries),
                                span,
                            });
                        }
                        Some(Tok::Comma) => self.pos += 1,
                        Some(Tok::Word(k) | Tok::Quoted(k)) => {
                            let kspan = self.here();
                            self.pos += 1;
                            if self.peek_at(0) != Some(&Tok::Eq) {
                                self.diags.push(
                                    Diagnostic::error(
                                        kspan,
                                        format!("expected `=` after dictionary key `{k}`"),
                                    )
                                    .with_help("dictionaries are written `[ key = value ]`"),
                                );
                                self.recover();
                                return None;
                            }
                            self.pos += 1;
                            let v = self.value(depth + 1)?;
                            entries.push((k, v.node));
                        }
                        _ => {
                            self.diags.push(
                                Diagnostic::error(t.span, "unclosed dictionary: expected `]`")
                                    .with_help("dictionaries are written `[ key = value ]`"),
                            );
                            return None;
                        }
                    }
                }
            }
            other => {
                self.diags.push(Diagnostic::error(
                    t.span,
                    format!("expected a value, found {}", other.describe()),
                ));
                self.recover();
                None
            }
        }
    }
}
