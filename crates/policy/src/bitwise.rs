//! Momentum's bitwise operators, which its Lua adds to 5.1 (SparkPost/support-docs
//! `4/lua/ref-msg-get-envelope-2.md`, "Bitwise Operators"): `a & b`, `a | b`, `a ^^ b`,
//! `a << n`, `a >> n`, `~a` and integer division `a \ b`. Real scripts write
//! `msys.core.O_CREAT | msys.core.O_APPEND`.
//!
//! Lua 5.1 has none of them, so each expression that uses one is rewritten before the chunk
//! loads: `a | b` becomes `__bindery_bor(a, b)`, and so on, with Lua 5.3's precedence (from
//! loosest: `|`, `^^`, `&`, shifts, then `..`, `+ -`, `* / % \`, unary, `^`). The rewrite
//! parses just the expression around each operator: it finds where the expression starts
//! (after `=`, `,`, an open bracket, `return`, `if`...), parses it with a small Pratt parser
//! and writes it back, every operand as it was written (comments and line breaks kept, so
//! line numbers do not move). Where the parse fails the text is left alone, and Lua's own
//! parser reports the error at the operator.

use std::borrow::Cow;

use crate::lex::{KEYWORDS, Tok, Token, lex};

/// A binary operator's precedence (Lua 5.3's, with Momentum's `^^` for XOR and `\` for
/// integer division), whether it is right-associative, and the function a bitwise one
/// becomes.
fn binary(text: &str) -> Option<(u8, bool, Option<&'static str>)> {
    Some(match text {
        "or" => (1, false, None),
        "and" => (2, false, None),
        "<" | ">" | "<=" | ">=" | "~=" | "==" | "!=" => (3, false, None),
        "|" => (4, false, Some("__bindery_bor")),
        "^^" => (5, false, Some("__bindery_bxor")),
        "&" => (6, false, Some("__bindery_band")),
        "<<" => (7, false, Some("__bindery_shl")),
        ">>" => (7, false, Some("__bindery_shr")),
        ".." => (8, true, None),
        "+" | "-" => (9, false, None),
        "*" | "/" | "%" => (10, false, None),
        "\\" => (10, false, Some("__bindery_idiv")),
        "^" => (12, true, None),
        _ => return None,
    })
}

const UNARY: u8 = 11;

/// A parsed expression: where it lies in the text, and how to write it.
enum Node {
    /// Written as it was, `start..end` of the source.
    Verbatim(usize, usize),
    /// A Lua operator: left, then the source between the operands as it was, then right.
    Binary(Box<Node>, Box<Node>),
    /// A bitwise operator: `func(left, right)`.
    Call(&'static str, Box<Node>, Box<Node>),
    /// `~a`: `__bindery_bnot(a)`, written from `start`.
    Not(usize, Box<Node>),
    /// A unary Lua operator at `start`, then its operand.
    Unary(usize, Box<Node>),
    /// `( inner )`, from `start` to `end`.
    Paren(usize, Box<Node>, usize),
}

impl Node {
    fn start(&self) -> usize {
        match self {
            Node::Verbatim(s, _) | Node::Not(s, _) | Node::Unary(s, _) | Node::Paren(s, _, _) => *s,
            Node::Binary(l, _) | Node::Call(_, l, _) => l.start(),
        }
    }

    fn end(&self) -> usize {
        match self {
            Node::Verbatim(_, e) | Node::Paren(_, _, e) => *e,
            Node::Binary(_, r) | Node::Call(_, _, r) | Node::Not(_, r) | Node::Unary(_, r) => {
                r.end()
            }
        }
    }

    fn write(&self, src: &str, out: &mut String) {
        match self {
            Node::Verbatim(s, e) => out.push_str(&src[*s..*e]),
            Node::Binary(l, r) => {
                l.write(src, out);
                out.push_str(&src[l.end()..r.start()]);
                r.write(src, out);
            }
            Node::Call(f, l, r) => {
                out.push_str(f);
                out.push('(');
                l.write(src, out);
                out.push_str(", ");
                // The operator goes; the line breaks around it stay, so that every later
                // line keeps its number.
                let between = &src[l.end()..r.start()];
                out.extend(std::iter::repeat_n('\n', between.matches('\n').count()));
                r.write(src, out);
                out.push(')');
            }
            Node::Not(_, a) => {
                out.push_str("__bindery_bnot(");
                a.write(src, out);
                out.push(')');
            }
            Node::Unary(s, a) => {
                out.push_str(&src[*s..a.start()]);
                a.write(src, out);
            }
            Node::Paren(s, inner, e) => {
                out.push_str(&src[*s..inner.start()]);
                inner.write(src, out);
                out.push_str(&src[inner.end()..*e]);
            }
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    toks: &'a [Token],
    i: usize,
}

impl Parser<'_> {
    fn text(&self, i: usize) -> Option<&str> {
        self.toks.get(i).map(|t| &self.src[t.start..t.end])
    }

    fn peek(&self) -> Option<&str> {
        self.text(self.i)
    }

    /// Past the nested construct opening at `self.i`: tokens that `opens` counts up,
    /// tokens that `closes` counts down, to the one that closes the first. Its end offset.
    fn skip_nested(
        &mut self,
        opens: fn(Tok, &str) -> bool,
        closes: fn(Tok, &str) -> bool,
    ) -> Option<usize> {
        let mut depth = 0usize;
        while let Some(t) = self.toks.get(self.i) {
            let text = &self.src[t.start..t.end];
            if opens(t.kind, text) {
                depth += 1;
            } else if closes(t.kind, text) {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    self.i += 1;
                    return Some(t.end);
                }
            }
            self.i += 1;
        }
        None
    }

    /// Past the bracket group opening at `self.i`; its end offset.
    fn skip_group(&mut self) -> Option<usize> {
        self.skip_nested(
            |_, t| matches!(t, "(" | "[" | "{"),
            |_, t| matches!(t, ")" | "]" | "}"),
        )
    }

    /// Past a `function ... end` body; its end offset. Blocks close with `end` or
    /// `until`: `while` and `for` open theirs with `do`, and `if` with itself (`then`
    /// opens nothing).
    fn skip_function(&mut self) -> Option<usize> {
        self.skip_nested(
            |k, t| k == Tok::Name && matches!(t, "function" | "do" | "if" | "repeat"),
            |k, t| k == Tok::Name && matches!(t, "end" | "until"),
        )
    }

    fn primary(&mut self) -> Option<Node> {
        let t = *self.toks.get(self.i)?;
        let text = &self.src[t.start..t.end];
        let mut node = match (t.kind, text) {
            (Tok::Punct, "(") => {
                self.i += 1;
                let inner = self.expr(0)?;
                if self.peek() != Some(")") {
                    return None;
                }
                let end = self.toks[self.i].end;
                self.i += 1;
                Node::Paren(t.start, Box::new(inner), end)
            }
            (Tok::Punct, "{") => Node::Verbatim(t.start, self.skip_group()?),
            (Tok::Punct, "...") => {
                self.i += 1;
                Node::Verbatim(t.start, t.end)
            }
            (Tok::Name, "function") => Node::Verbatim(t.start, self.skip_function()?),
            (Tok::Name, k) if KEYWORDS.contains(&k) && !matches!(k, "nil" | "true" | "false") => {
                return None;
            }
            (Tok::Name | Tok::Number | Tok::Str, _) => {
                self.i += 1;
                Node::Verbatim(t.start, t.end)
            }
            _ => return None,
        };
        // Suffixes: `.name`, `[...]`, `:name(...)`, call arguments.
        loop {
            let start = node.start();
            match self.peek() {
                Some(".") | Some(":") => {
                    self.i += 1;
                    let n = self.toks.get(self.i)?;
                    if n.kind != Tok::Name {
                        return None;
                    }
                    self.i += 1;
                    node = Node::Verbatim(start, n.end);
                }
                Some("[") | Some("(") | Some("{") => {
                    let end = self.skip_group()?;
                    node = Node::Verbatim(start, end);
                }
                Some(_) if self.toks[self.i].kind == Tok::Str => {
                    let end = self.toks[self.i].end;
                    self.i += 1;
                    node = Node::Verbatim(start, end);
                }
                _ => return Some(node),
            }
        }
    }

    fn expr(&mut self, min: u8) -> Option<Node> {
        let t = *self.toks.get(self.i)?;
        let text = &self.src[t.start..t.end];
        let mut left = match text {
            "~" => {
                self.i += 1;
                Node::Not(t.start, Box::new(self.expr(UNARY)?))
            }
            "not" | "-" | "#" => {
                self.i += 1;
                Node::Unary(t.start, Box::new(self.expr(UNARY)?))
            }
            _ => self.primary()?,
        };
        while let Some(op) = self.peek() {
            if self.toks[self.i].kind == Tok::Str {
                break;
            }
            let Some((prec, right, func)) = binary(op) else {
                break;
            };
            if prec <= min && !(right && prec == min) {
                break;
            }
            self.i += 1;
            let rhs = self.expr(if right { prec - 1 } else { prec })?;
            left = match func {
                Some(f) => Node::Call(f, Box::new(left), Box::new(rhs)),
                None => Node::Binary(Box::new(left), Box::new(rhs)),
            };
        }
        Some(left)
    }
}

/// Whether token `i` is one of Momentum's bitwise operators (`~` only as a prefix: `~=` is
/// lexed whole).
fn is_bitwise(src: &str, toks: &[Token], i: usize) -> bool {
    let t = toks[i];
    t.kind == Tok::Punct
        && matches!(
            &src[t.start..t.end],
            "|" | "&" | "^^" | "<<" | ">>" | "\\" | "~"
        )
}

/// Where the expression holding token `i` starts: just after the nearest token, at the
/// same bracket depth, that an expression cannot contain.
fn expression_start(src: &str, toks: &[Token], i: usize) -> usize {
    let mut depth = 0i32;
    let mut j = i;
    while j > 0 {
        let t = toks[j - 1];
        let text = &src[t.start..t.end];
        match text {
            ")" | "]" | "}" => depth += 1,
            "(" | "[" | "{" => {
                if depth == 0 {
                    return j;
                }
                depth -= 1;
            }
            "=" | "," | ";" if depth == 0 => return j,
            k if depth == 0
                && t.kind == Tok::Name
                && KEYWORDS.contains(&k)
                && !matches!(
                    k,
                    "nil" | "true" | "false" | "not" | "and" | "or" | "function"
                ) =>
            {
                return j;
            }
            _ => {}
        }
        j -= 1;
    }
    0
}

/// `src` with Momentum's bitwise operators written as calls (see the module's text).
pub fn translate(src: &str) -> Cow<'_, str> {
    if !src.contains(['|', '&', '<', '>', '\\', '~', '^']) {
        return Cow::Borrowed(src);
    }
    let mut text = src.to_string();
    // Operators the parse could not place are left for Lua to report.
    let mut skip = 0usize;
    for _ in 0..10_000 {
        let toks = lex(&text);
        let Some(i) = (0..toks.len())
            .filter(|&i| is_bitwise(&text, &toks, i))
            .nth(skip)
        else {
            break;
        };
        let start = expression_start(&text, &toks, i);
        let mut p = Parser {
            src: &text,
            toks: &toks,
            i: start,
        };
        let parsed = p.expr(0).filter(|n| n.end() >= toks[i].end);
        let Some(node) = parsed else {
            skip += 1;
            continue;
        };
        let mut out = String::new();
        node.write(&text, &mut out);
        let (s, e) = (node.start(), node.end());
        if out == text[s..e] {
            skip += 1;
            continue;
        }
        text.replace_range(s..e, &out);
    }
    if text == src {
        Cow::Borrowed(src)
    } else {
        Cow::Owned(text)
    }
}

/// The runtime side: `__bindery_bor` and the rest, on operands converted to 64-bit
/// integers (as Momentum says: "convert their numeric operands to an integer, apply the
/// operator and then generate a standard Lua number").
pub fn install(lua: &mlua::Lua) -> mlua::Result<()> {
    let g = lua.globals();
    let int = |n: f64| n.trunc() as i64;
    g.set(
        "__bindery_bor",
        lua.create_function(move |_, (a, b): (f64, f64)| Ok((int(a) | int(b)) as f64))?,
    )?;
    g.set(
        "__bindery_band",
        lua.create_function(move |_, (a, b): (f64, f64)| Ok((int(a) & int(b)) as f64))?,
    )?;
    g.set(
        "__bindery_bxor",
        lua.create_function(move |_, (a, b): (f64, f64)| Ok((int(a) ^ int(b)) as f64))?,
    )?;
    g.set(
        "__bindery_shl",
        lua.create_function(move |_, (a, b): (f64, f64)| {
            Ok(int(a).checked_shl(int(b).clamp(0, 63) as u32).unwrap_or(0) as f64)
        })?,
    )?;
    g.set(
        "__bindery_shr",
        lua.create_function(move |_, (a, b): (f64, f64)| {
            Ok(((int(a) as u64) >> int(b).clamp(0, 63) as u32) as f64)
        })?,
    )?;
    g.set(
        "__bindery_bnot",
        lua.create_function(move |_, a: f64| Ok(!int(a) as f64))?,
    )?;
    g.set(
        "__bindery_idiv",
        lua.create_function(move |_, (a, b): (f64, f64)| Ok((a / b).floor()))?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[track_caller]
    fn same(src: &str, want: &str) {
        assert_eq!(translate(src), want, "from {src:?}");
    }

    #[test]
    fn operators_become_calls_with_lua_53_precedence() {
        same(
            "local f = msys.core.O_CREAT | msys.core.O_APPEND | msys.core.O_WRONLY;",
            "local f = __bindery_bor(__bindery_bor(msys.core.O_CREAT, msys.core.O_APPEND), msys.core.O_WRONLY);",
        );
        same(
            "x = open(\"p\", a.B|a.C, 0660)",
            "x = open(\"p\", __bindery_bor(a.B, a.C), 0660)",
        );
        same(
            "return a | b & c",
            "return __bindery_bor(a, __bindery_band(b, c))",
        );
        same(
            "if a & 1 == 1 then end",
            "if __bindery_band(a, 1) == 1 then end",
        );
        same("y = 1 << n + 1", "y = __bindery_shl(1, n + 1)");
        same(
            "z = ~mask & 255",
            "z = __bindery_band(__bindery_bnot(mask), 255)",
        );
        same("q = 7 \\ 2", "q = __bindery_idiv(7, 2)");
        same("w = a ^^ b", "w = __bindery_bxor(a, b)");
        same("v = (a | b) .. \"x\"", "v = (__bindery_bor(a, b)) .. \"x\"");
        same(
            "t = f(a | g(b | c))",
            "t = f(__bindery_bor(a, g(__bindery_bor(b, c))))",
        );
    }

    #[test]
    fn strings_comments_and_plain_lua_are_left_alone() {
        for src in [
            "s = \"a | b\" -- c | d",
            "if a ~= b and c <= d then x = a ^ 2 end",
            "s = [[ a & b ]]",
            "t = { a = 1, b = 2 }",
        ] {
            assert!(matches!(translate(src), Cow::Borrowed(_)), "{src}");
        }
    }

    #[test]
    fn line_breaks_and_comments_inside_are_kept() {
        same(
            "x = a |\n  -- note\n  b\ny = 1",
            "x = __bindery_bor(a, \n\nb)\ny = 1",
        );
        same(
            "local f = function() if x then return a | b end end",
            "local f = function() if x then return __bindery_bor(a, b) end end",
        );
    }

    #[test]
    fn what_cannot_be_parsed_is_left_for_lua_to_report() {
        same("x = a | | b", "x = a | | b");
        same("x = | b", "x = | b");
    }

    use std::borrow::Cow;
}
