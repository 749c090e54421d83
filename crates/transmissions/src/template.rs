//! SparkPost's template language, the part a transmission's inline content uses: `{{ var }}`
//! (HTML-escaped in the HTML part), `{{{ var }}}` (never escaped), nested keys
//! (`{{ address.city }}`, `{{ items[0].name }}`), `{{ if cond }} ... {{ elseif cond }} ...
//! {{ else }} ... {{ end }}` with `==`, `!=`, `<`, `<=`, `>`, `>=`, `and`, `or`, `not`,
//! parentheses, literals and `empty(x)`, and `{{ each array }} ... {{ end }}` with `loop_var`
//! (the element) and `loop_vars.NAME` (the element of an outer loop over NAME).
//!
//! Where SparkPost's reference is silent, the engine follows the Lua it is built on (its
//! keyword list is Lua's): only a missing value, `null` and `false` are false; a missing value
//! renders as nothing; a number renders as JSON writes it; an object or array as its JSON.
//! Macros (`render_dynamic_content`, custom ones) are not built: a template that calls one is
//! a syntax error (422, code 3000), never text passed through.
//!
//! A template is parsed once per transmission ([`Template::parse`]) and rendered once per
//! recipient ([`Template::render`]); nothing here does I/O.

use serde_json::Value;

/// A syntax error, with the line it is on (1-based) inside the part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    /// An expression to print; `true`: HTML-escape it (where the part asks).
    Out(Expr, bool),
    If(Vec<(Expr, Vec<Node>)>, Vec<Node>),
    Each(Path, Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Path(Path),
    Str(String),
    Num(f64),
    Bool(bool),
    Nil,
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(Box<Expr>, Op, Box<Expr>),
    Empty(Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// `a.b[0].c`: a name, then fields and indexes.
#[derive(Debug, Clone, PartialEq)]
struct Path(Vec<Step>);

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A parsed template part.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
    /// It has no tag at all: rendering is a copy.
    plain: bool,
}

/// Where values come from, most specific first (recipient substitution data, recipient
/// metadata, transmission substitution data, transmission metadata, the recipient's address).
pub struct Scope<'a> {
    pub layers: Vec<&'a serde_json::Map<String, Value>>,
}

impl<'a> Scope<'a> {
    fn lookup(&self, name: &str) -> Option<&'a Value> {
        self.layers.iter().find_map(|m| m.get(name))
    }
}

impl Template {
    /// Parses `text`; `escape_html` makes `{{ }}` HTML-escape (the HTML part).
    pub fn parse(text: &str, escape_html: bool) -> Result<Template, SyntaxError> {
        let mut p = Parser {
            src: text,
            pos: 0,
            escape_html,
        };
        let (nodes, end) = p.block(0)?;
        if let Some((tag, line)) = end {
            return Err(SyntaxError {
                line,
                message: format!("`{{{{ {tag} }}}}` without an open if or each"),
            });
        }
        let plain = nodes.iter().all(|n| matches!(n, Node::Text(_)));
        Ok(Template { nodes, plain })
    }

    /// The part for one recipient.
    pub fn render(&self, scope: &Scope<'_>) -> String {
        if self.plain {
            return self
                .nodes
                .iter()
                .map(|n| match n {
                    Node::Text(t) => t.as_str(),
                    _ => "",
                })
                .collect();
        }
        let mut out = String::new();
        let mut loops = Vec::new();
        render(&self.nodes, scope, &mut loops, &mut out);
        out
    }
}

/// The loops being rendered: (array name, current element).
type Loops<'v> = Vec<(String, &'v Value)>;

fn render<'v>(nodes: &'v [Node], scope: &Scope<'v>, loops: &mut Loops<'v>, out: &mut String) {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Out(e, escape) => {
                let v = eval(e, scope, loops);
                let text = to_text(&v);
                if *escape {
                    html_escape(&text, out);
                } else {
                    out.push_str(&text);
                }
            }
            Node::If(arms, otherwise) => {
                let body = arms
                    .iter()
                    .find(|(c, _)| truthy(&eval(c, scope, loops)))
                    .map(|(_, b)| b)
                    .unwrap_or(otherwise);
                render(body, scope, loops, out);
            }
            Node::Each(path, body) => {
                let Some(Value::Array(items)) = resolve(path, scope, loops) else {
                    continue;
                };
                let name = match path.0.last() {
                    Some(Step::Key(k)) => k.clone(),
                    _ => String::new(),
                };
                for item in items {
                    loops.push((name.clone(), item));
                    render(body, scope, loops, out);
                    loops.pop();
                }
            }
        }
    }
}

/// A value as the template sees it: borrowed from the data, or made by an expression.
#[derive(Debug, Clone, PartialEq)]
enum Val<'v> {
    Ref(&'v Value),
    Own(Value),
    Missing,
}

impl Val<'_> {
    fn json(&self) -> Option<&Value> {
        match self {
            Val::Ref(v) => Some(v),
            Val::Own(v) => Some(v),
            Val::Missing => None,
        }
    }
}

fn truthy(v: &Val<'_>) -> bool {
    !matches!(
        v.json(),
        None | Some(Value::Null) | Some(Value::Bool(false))
    )
}

fn to_text(v: &Val<'_>) -> String {
    match v.json() {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn html_escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn resolve<'v>(path: &Path, scope: &Scope<'v>, loops: &Loops<'v>) -> Option<&'v Value> {
    let mut steps = path.0.iter();
    let first = match steps.next()? {
        Step::Key(k) => k,
        Step::Index(_) => return None,
    };
    let mut cur: &Value = if first == "loop_var" {
        loops.last().map(|(_, v)| *v)?
    } else if first == "loop_vars" {
        let Some(Step::Key(name)) = steps.next() else {
            return None;
        };
        loops
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)?
    } else {
        scope.lookup(first)?
    };
    for s in steps {
        cur = match (s, cur) {
            (Step::Key(k), Value::Object(m)) => m.get(k)?,
            (Step::Index(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn eval<'v>(e: &Expr, scope: &Scope<'v>, loops: &Loops<'v>) -> Val<'v> {
    match e {
        Expr::Path(p) => resolve(p, scope, loops).map_or(Val::Missing, Val::Ref),
        Expr::Str(s) => Val::Own(Value::String(s.clone())),
        Expr::Num(n) => {
            Val::Own(serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number))
        }
        Expr::Bool(b) => Val::Own(Value::Bool(*b)),
        Expr::Nil => Val::Own(Value::Null),
        Expr::Not(x) => Val::Own(Value::Bool(!truthy(&eval(x, scope, loops)))),
        Expr::And(a, b) => {
            let l = eval(a, scope, loops);
            if truthy(&l) { eval(b, scope, loops) } else { l }
        }
        Expr::Or(a, b) => {
            let l = eval(a, scope, loops);
            if truthy(&l) { l } else { eval(b, scope, loops) }
        }
        Expr::Empty(x) => {
            let empty = match eval(x, scope, loops).json() {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Object(o)) => o.is_empty(),
                Some(_) => false,
            };
            Val::Own(Value::Bool(empty))
        }
        Expr::Cmp(a, op, b) => {
            let (l, r) = (eval(a, scope, loops), eval(b, scope, loops));
            Val::Own(Value::Bool(compare(l.json(), *op, r.json())))
        }
    }
}

fn compare(l: Option<&Value>, op: Op, r: Option<&Value>) -> bool {
    use std::cmp::Ordering;
    let norm = |v: Option<&Value>| match v {
        None => Value::Null,
        Some(v) => v.clone(),
    };
    let (l, r) = (norm(l), norm(r));
    let ord = match (&l, &r) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    };
    match op {
        Op::Eq => l == r || ord == Some(Ordering::Equal),
        Op::Ne => !(l == r || ord == Some(Ordering::Equal)),
        Op::Lt => ord == Some(Ordering::Less),
        Op::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
        Op::Gt => ord == Some(Ordering::Greater),
        Op::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
    }
}

struct Parser<'s> {
    src: &'s str,
    pos: usize,
    escape_html: bool,
}

/// How a block ended: the closing tag's word and its line, or `None` at the end of input.
type BlockEnd = Option<(String, usize)>;

impl Parser<'_> {
    fn line_at(&self, pos: usize) -> usize {
        self.src[..pos.min(self.src.len())].matches('\n').count() + 1
    }

    fn err(&self, pos: usize, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            line: self.line_at(pos),
            message: message.into(),
        }
    }

    /// The next tag: (start, inner text, raw `{{{`), after the text before it went to `out`.
    fn next_tag(
        &mut self,
        out: &mut Vec<Node>,
    ) -> Result<Option<(usize, String, bool)>, SyntaxError> {
        let rest = &self.src[self.pos..];
        let Some(at) = rest.find("{{") else {
            if !rest.is_empty() {
                out.push(Node::Text(rest.to_string()));
            }
            self.pos = self.src.len();
            return Ok(None);
        };
        if at > 0 {
            out.push(Node::Text(rest[..at].to_string()));
        }
        let start = self.pos + at;
        let raw = self.src[start..].starts_with("{{{");
        let open = if raw { 3 } else { 2 };
        let close = if raw { "}}}" } else { "}}" };
        let inner_from = start + open;
        let Some(len) = self.src[inner_from..].find(close) else {
            return Err(self.err(
                start,
                format!("`{}` is never closed", &self.src[start..inner_from]),
            ));
        };
        let inner = self.src[inner_from..inner_from + len].trim().to_string();
        self.pos = inner_from + len + close.len();
        Ok(Some((start, inner, raw)))
    }

    /// Nodes up to a closing tag (`end`, `else`, `elseif ...`) or the end of input.
    fn block(&mut self, depth: usize) -> Result<(Vec<Node>, BlockEnd), SyntaxError> {
        if depth > 32 {
            return Err(self.err(self.pos, "if and each nested more than 32 deep"));
        }
        let mut out = Vec::new();
        while let Some((start, inner, raw)) = self.next_tag(&mut out)? {
            let word = inner.split_whitespace().next().unwrap_or("");
            let rest = inner[word.len()..].trim();
            match word {
                "end" | "else" | "elseif" => {
                    return Ok((out, Some((inner.clone(), self.line_at(start)))));
                }
                "if" => {
                    let mut arms = vec![(self.expr(rest, start)?, Vec::new())];
                    let mut otherwise = Vec::new();
                    loop {
                        let (body, end) = self.block(depth + 1)?;
                        let Some((tag, _)) = end else {
                            return Err(self.err(start, "`{{ if }}` without `{{ end }}`"));
                        };
                        let word = tag.split_whitespace().next().unwrap_or("");
                        match word {
                            "end" => {
                                set_last(&mut arms, body);
                                break;
                            }
                            "else" => {
                                set_last(&mut arms, body);
                                let (body, end) = self.block(depth + 1)?;
                                match end.as_ref().map(|(t, l)| (t.as_str(), *l)) {
                                    Some(("end", _)) => {
                                        otherwise = body;
                                        break;
                                    }
                                    Some((t, l)) => {
                                        return Err(SyntaxError {
                                            line: l,
                                            message: format!(
                                                "`{{{{ {t} }}}}` after `{{{{ else }}}}`"
                                            ),
                                        });
                                    }
                                    None => {
                                        return Err(
                                            self.err(start, "`{{ if }}` without `{{ end }}`")
                                        );
                                    }
                                }
                            }
                            _ => {
                                // elseif COND
                                set_last(&mut arms, body);
                                let cond = tag[word.len()..].trim().to_string();
                                arms.push((self.expr(&cond, start)?, Vec::new()));
                            }
                        }
                    }
                    out.push(Node::If(arms, otherwise));
                }
                "each" => {
                    let path = parse_path(rest).ok_or_else(|| {
                        self.err(
                            start,
                            format!("`{{{{ each {rest} }}}}` needs an array's name"),
                        )
                    })?;
                    let (body, end) = self.block(depth + 1)?;
                    match end {
                        Some((t, _)) if t == "end" => out.push(Node::Each(path, body)),
                        Some((t, l)) => {
                            return Err(SyntaxError {
                                line: l,
                                message: format!("`{{{{ {t} }}}}` inside `{{{{ each }}}}`"),
                            });
                        }
                        None => return Err(self.err(start, "`{{ each }}` without `{{ end }}`")),
                    }
                }
                _ => {
                    let e = self.expr(&inner, start)?;
                    out.push(Node::Out(e, self.escape_html && !raw));
                }
            }
        }
        Ok((out, None))
    }

    fn expr(&self, text: &str, at: usize) -> Result<Expr, SyntaxError> {
        let tokens = tokenize(text).map_err(|m| self.err(at, m))?;
        if tokens.is_empty() {
            return Err(self.err(at, "an empty `{{ }}`"));
        }
        let mut p = ExprParser { t: &tokens, i: 0 };
        let e = p
            .or()
            .map_err(|m| self.err(at, format!("{m} in `{{{{ {text} }}}}`")))?;
        if p.i != tokens.len() {
            return Err(self.err(
                at,
                format!("unexpected `{}` in `{{{{ {text} }}}}`", tokens[p.i].show()),
            ));
        }
        Ok(e)
    }
}

/// The body just read belongs to the last `if`/`elseif` arm.
fn set_last(arms: &mut [(Expr, Vec<Node>)], body: Vec<Node>) {
    if let Some(last) = arms.last_mut() {
        last.1 = body;
    }
}

fn parse_path(s: &str) -> Option<Path> {
    let mut steps = Vec::new();
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    let name_end = |r: &str| {
        r.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(r.len())
    };
    let n = name_end(rest);
    if n == 0 || rest.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    steps.push(Step::Key(rest[..n].to_string()));
    rest = &rest[n..];
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let n = name_end(r);
            if n == 0 {
                return None;
            }
            steps.push(Step::Key(r[..n].to_string()));
            rest = &r[n..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']')?;
            steps.push(Step::Index(r[..close].trim().parse().ok()?));
            rest = &r[close + 1..];
        } else {
            return None;
        }
    }
    Some(Path(steps))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Path(String),
    Str(String),
    Num(f64),
    Op(&'static str),
    LParen,
    RParen,
}

impl Tok {
    fn show(&self) -> String {
        match self {
            Tok::Path(p) => p.clone(),
            Tok::Str(s) => format!("{s:?}"),
            Tok::Num(n) => n.to_string(),
            Tok::Op(o) => (*o).to_string(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
        }
    }
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            b'"' | b'\'' => {
                let mut j = i + 1;
                let mut text = String::new();
                loop {
                    let Some(&d) = b.get(j) else {
                        return Err("an unclosed string".into());
                    };
                    if d == c {
                        break;
                    }
                    if d == b'\\' && j + 1 < b.len() {
                        j += 1;
                    }
                    // Byte-wise copy of UTF-8 is safe: quotes and backslashes are ASCII.
                    let ch_len = utf8_len(b[j]);
                    text.push_str(&s[j..j + ch_len]);
                    j += ch_len;
                }
                out.push(Tok::Str(text));
                i = j + 1;
            }
            b'=' | b'!' | b'<' | b'>' => {
                let two = s.get(i..i + 2).unwrap_or("");
                let (op, n) = match two {
                    "==" => ("==", 2),
                    "!=" | "~=" => ("!=", 2),
                    "<=" => ("<=", 2),
                    ">=" => (">=", 2),
                    _ if c == b'<' => ("<", 1),
                    _ if c == b'>' => (">", 1),
                    _ => return Err(format!("`{}` is not an operator", c as char)),
                };
                out.push(Tok::Op(op));
                i += n;
            }
            b'0'..=b'9' | b'-' => {
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
                    j += 1;
                }
                let n: f64 = s[i..j]
                    .parse()
                    .map_err(|_| format!("`{}` is not a number", &s[i..j]))?;
                out.push(Tok::Num(n));
                i = j;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i + 1;
                while j < b.len()
                    && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'_' | b'.' | b'[' | b']'))
                {
                    j += 1;
                }
                let word = &s[i..j];
                out.push(match word {
                    "and" => Tok::Op("and"),
                    "or" => Tok::Op("or"),
                    "not" => Tok::Op("not"),
                    _ => Tok::Path(word.to_string()),
                });
                i = j;
            }
            _ => {
                return Err(format!(
                    "`{}` is not part of the template language",
                    &s[i..]
                ));
            }
        }
    }
    Ok(out)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

struct ExprParser<'t> {
    t: &'t [Tok],
    i: usize,
}

impl ExprParser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i)
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(o)) if *o == op) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut l = self.and()?;
        while self.eat_op("or") {
            l = Expr::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut l = self.not()?;
        while self.eat_op("and") {
            l = Expr::And(Box::new(l), Box::new(self.not()?));
        }
        Ok(l)
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.eat_op("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Expr, String> {
        let l = self.atom()?;
        let op = match self.peek() {
            Some(Tok::Op("==")) => Op::Eq,
            Some(Tok::Op("!=")) => Op::Ne,
            Some(Tok::Op("<")) => Op::Lt,
            Some(Tok::Op("<=")) => Op::Le,
            Some(Tok::Op(">")) => Op::Gt,
            Some(Tok::Op(">=")) => Op::Ge,
            _ => return Ok(l),
        };
        self.i += 1;
        Ok(Expr::Cmp(Box::new(l), op, Box::new(self.atom()?)))
    }

    fn atom(&mut self) -> Result<Expr, String> {
        let Some(t) = self.t.get(self.i).cloned() else {
            return Err("an expression ends too soon".into());
        };
        self.i += 1;
        match t {
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Num(n) => Ok(Expr::Num(n)),
            Tok::LParen => {
                let e = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err("a `(` without its `)`".into());
                }
                self.i += 1;
                Ok(e)
            }
            Tok::Path(p) if p == "true" => Ok(Expr::Bool(true)),
            Tok::Path(p) if p == "false" => Ok(Expr::Bool(false)),
            Tok::Path(p) if p == "nil" || p == "null" => Ok(Expr::Nil),
            Tok::Path(p) if p == "empty" && self.peek() == Some(&Tok::LParen) => {
                self.i += 1;
                let e = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err("`empty(` without its `)`".into());
                }
                self.i += 1;
                Ok(Expr::Empty(Box::new(e)))
            }
            Tok::Path(p) if self.peek() == Some(&Tok::LParen) => Err(format!(
                "`{p}(...)` is a macro; bindery's template language has none but empty()"
            )),
            Tok::Path(p) => parse_path(&p)
                .map(Expr::Path)
                .ok_or_else(|| format!("`{p}` is not a variable name")),
            other => Err(format!("unexpected `{}`", other.show())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> serde_json::Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("an object"),
        }
    }

    fn render(text: &str, html: bool, data: Value) -> String {
        let t = Template::parse(text, html).unwrap_or_else(|e| panic!("{text}: {e}"));
        let m = map(data);
        t.render(&Scope { layers: vec![&m] })
    }

    #[test]
    fn variables_escaping_and_nesting() {
        let d = json!({"name": "<Ann & Bo>", "n": 3, "f": 2.5, "ok": true,
                       "addr": {"city": "Paris"}, "items": [{"sku": "A1"}, {"sku": "B2"}]});
        assert_eq!(render("Hi {{name}}!", false, d.clone()), "Hi <Ann & Bo>!");
        assert_eq!(
            render("<p>{{ name }}</p>", true, d.clone()),
            "<p>&lt;Ann &amp; Bo&gt;</p>"
        );
        assert_eq!(
            render("<p>{{{ name }}}</p>", true, d.clone()),
            "<p><Ann & Bo></p>"
        );
        assert_eq!(
            render("{{n}} {{f}} {{ok}} {{missing}}.", false, d.clone()),
            "3 2.5 true ."
        );
        assert_eq!(
            render(
                "{{addr.city}} {{items[1].sku}} {{items[9].sku}}",
                false,
                d.clone()
            ),
            "Paris B2 "
        );
        assert_eq!(render("no tags", false, d), "no tags");
    }

    #[test]
    fn conditionals() {
        let t = "{{if n > 2 and not quiet}}big{{elseif n == 2}}two{{else}}small{{end}}";
        assert_eq!(render(t, false, json!({"n": 3})), "big");
        assert_eq!(render(t, false, json!({"n": 3, "quiet": true})), "small");
        assert_eq!(render(t, false, json!({"n": 2})), "two");
        assert_eq!(render(t, false, json!({})), "small");
        let e = "{{ if empty(cart) }}empty{{ else }}{{ cart[0] }}{{ end }}";
        assert_eq!(render(e, false, json!({"cart": []})), "empty");
        assert_eq!(render(e, false, json!({"cart": ["x"]})), "x");
        assert_eq!(
            render(
                "{{if tier == 'gold' or (vip)}}y{{end}}",
                false,
                json!({"tier": "gold"})
            ),
            "y"
        );
        // Lua's truth: an empty string is true, null and false are not.
        assert_eq!(
            render("{{if s}}t{{else}}f{{end}}", false, json!({"s": ""})),
            "t"
        );
        assert_eq!(
            render("{{if s}}t{{else}}f{{end}}", false, json!({"s": null})),
            "f"
        );
    }

    #[test]
    fn loops() {
        let t = "{{each items}}[{{loop_var.sku}}{{each loop_var.tags}}:{{loop_var}}/{{loop_vars.items.sku}}{{end}}]{{end}}";
        let d = json!({"items": [{"sku": "A", "tags": ["x", "y"]}, {"sku": "B", "tags": []}]});
        assert_eq!(render(t, false, d), "[A:x/A:y/A][B]");
        assert_eq!(render("{{each nothing}}x{{end}}", false, json!({})), "");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        for (t, want) in [
            ("a\n{{if x}}b", "line 2: `{{ if }}` without `{{ end }}`"),
            ("{{end}}", "line 1: `{{ end }}` without an open if or each"),
            ("x {{name", "line 1: `{{` is never closed"),
            ("{{ render_dynamic_content(dynamic_html.x) }}", "is a macro"),
            ("{{ a + b }}", "is not part of the template language"),
            ("{{ }}", "an empty"),
            ("{{each 3}}{{end}}", "needs an array's name"),
            (
                "{{if a}}x{{else}}y{{elseif b}}z{{end}}",
                "after `{{ else }}`",
            ),
        ] {
            let e = Template::parse(t, false).expect_err(t).to_string();
            assert!(e.contains(want), "{t}: {e}");
        }
    }
}
