//! Rule files: the shipped set (`rules/shipped.rules`, compiled in) and any file in the
//! same format. Each rule is `CLASS REGEX`; `#` starts a comment line and `## source:`
//! names where the rules below it come from (kept, so that `--explain` can say it).
//!
//! Why our own small format and not TOML like KumoMTA's: one rule per line keeps a line
//! number per rule for errors and explanations, and needs no escaping of backslashes.

use crate::class::Classes;
use crate::error::{RuleError, at};

/// One rule: a class and the expression that gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub class: u16,
    pub pattern: String,
    /// Where it was written: file and line.
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: usize,
    /// The `## source:` in force, if any.
    pub source: Option<String>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// The rule set bindery ships: `crates/bounce/rules/shipped.rules`.
pub const SHIPPED: &str = include_str!("../rules/shipped.rules");
pub const SHIPPED_NAME: &str = "shipped.rules";

/// Parses a rule file. Every error names its line and column; a pattern that does not
/// compile is an error too, so that no rule is silently dropped.
pub fn parse(file: &str, text: &str, classes: &Classes) -> Result<Vec<Rule>, RuleError> {
    let mut out = Vec::new();
    let mut source: Option<String> = None;
    // Consecutive `## source:` lines add up; the first after a rule starts afresh.
    let mut after_rule = true;
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let t = raw.trim();
        if let Some(s) = t.strip_prefix("## source:") {
            match (&mut source, after_rule) {
                (Some(acc), false) => {
                    acc.push_str("; ");
                    acc.push_str(s.trim());
                }
                _ => source = Some(s.trim().to_string()),
            }
            after_rule = false;
            continue;
        }
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        let (code, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
        let class = code.parse::<u16>().ok().filter(|c| classes.is_known(*c));
        let Some(class) = class else {
            return Err(at(
                file,
                text,
                line,
                indent,
                format!(
                    "`{code}` is not a bounce class (a code from the class table or custom_classes)"
                ),
                crate::class::lookup(code).map(|c| c.code.to_string()),
            ));
        };
        let pattern = rest.trim();
        if pattern.is_empty() {
            return Err(at(
                file,
                text,
                line,
                indent + code.len(),
                "a rule needs a pattern after its class".into(),
                None,
            ));
        }
        if let Err(e) = compile_one(pattern) {
            let col = raw.find(pattern).unwrap_or(indent);
            return Err(at(file, text, line, col, format!("bad pattern: {e}"), None));
        }
        after_rule = true;
        out.push(Rule {
            class,
            pattern: pattern.to_string(),
            origin: Origin {
                file: file.to_string(),
                line,
                source: source.clone(),
            },
        });
    }
    Ok(out)
}

/// The shipped rules, parsed. They are tested to parse; this cannot fail at run time.
pub fn shipped() -> Vec<Rule> {
    parse(SHIPPED_NAME, SHIPPED, &Classes::default()).unwrap_or_default()
}

/// How every pattern is compiled: bytes, ASCII case folding, no Unicode classes. Replies
/// are ASCII by RFC 5321, and this keeps the set's automaton small and fast. The lazy DFA
/// gets 8 MiB of cache instead of the default 2: with two hundred patterns the default cache
/// thrashes and the search falls back to the PikeVM, about 100 µs a reply instead of under 1
/// (`bench/bounce-bench`); 8 MiB is a ceiling per thread, not what is used.
pub(crate) fn builder<I, S>(patterns: I) -> regex::bytes::RegexSetBuilder
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut b = regex::bytes::RegexSetBuilder::new(patterns);
    b.case_insensitive(true)
        .unicode(false)
        .size_limit(64 << 20)
        .dfa_size_limit(8 << 20);
    b
}

fn compile_one(pattern: &str) -> Result<(), String> {
    builder([pattern]).build().map(|_| ()).map_err(|e| match e {
        regex::Error::Syntax(s) => s
            .lines()
            .last()
            .unwrap_or("syntax error")
            .trim()
            .to_string(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_rules_parse_and_each_has_a_source() {
        let rules = parse(SHIPPED_NAME, SHIPPED, &Classes::default()).expect("shipped rules parse");
        assert!(rules.len() > 150, "{} rules", rules.len());
        for r in &rules {
            assert!(
                r.origin.source.is_some(),
                "rule at line {} has no ## source",
                r.origin.line
            );
        }
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = parse("x.rules", "# c\n10 ^a\n77 b\n", &Classes::default()).unwrap_err();
        assert_eq!((e.line, e.col), (3, 1));
        let e = parse("x.rules", "22 (unclosed\n", &Classes::default()).unwrap_err();
        assert_eq!((e.line, e.col), (1, 4));
        assert!(e.to_string().contains("bad pattern"), "{e}");
        let e = parse("x.rules", "BC_SOFT_TIMEOUT x\n", &Classes::default()).unwrap_err();
        assert!(e.to_string().contains("did you mean `24`"), "{e}");
        let e = parse("x.rules", "10\n", &Classes::default()).unwrap_err();
        assert!(e.to_string().contains("needs a pattern"), "{e}");
    }
}
