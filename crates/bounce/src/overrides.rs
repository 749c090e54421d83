//! Momentum's override files (`bounce_classifier_override`, `modules/bounce-classifier-override.md`
//! in SparkPost/support-docs):
//!
//! - SMTP: `domain,bounce_code,rule`, an empty domain for a rule of every domain;
//! - MDN (out-of-band mail): `bounce_code,rule`.
//!
//! A rule is a plain string that matches anywhere in the text, or, where it holds a `|`, a
//! wildcard in which each `|` stands for any run of characters. Momentum does not say
//! whether case matters; bindery ignores it, as its shipped rules do, because the same
//! provider writes "User unknown" and "user unknown".
//!
//! Blank lines and lines starting with `#` are skipped (Momentum's page shows none, and
//! operators comment their files). A field may be quoted with `"`, so a rule can hold a
//! comma at its ends; a comma inside the rule needs no quotes, since the rule is the rest
//! of the line.

use crate::class::Classes;
use crate::error::{RuleError, at};
use crate::rules::{Origin, Rule};

/// An SMTP override: the domain it is limited to, if any, and its rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpOverride {
    pub domain: Option<String>,
    pub rule: Rule,
}

/// The regular expression of a Momentum rule.
pub fn pattern(rule: &str) -> String {
    rule.split('|')
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(".*")
}

fn unquote(s: &str) -> &str {
    let t = s.trim();
    t.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(t)
}

fn code(
    file: &str,
    text: &str,
    line: usize,
    col0: usize,
    field: &str,
    classes: &Classes,
) -> Result<u16, RuleError> {
    let f = unquote(field);
    match f.parse::<u16>() {
        Ok(c) if classes.is_known(c) => Ok(c),
        _ => Err(at(
            file,
            text,
            line,
            col0,
            format!(
                "`{f}` is not a bounce class: use a code from the class table or one registered in custom_classes"
            ),
            crate::class::lookup(f).map(|c| c.code.to_string()),
        )),
    }
}

fn rule(file: &str, line: usize, class: u16, r: &str) -> Rule {
    Rule {
        class,
        pattern: pattern(r),
        origin: Origin {
            file: file.to_string(),
            line,
            source: Some(format!("override `{r}`")),
        },
    }
}

/// The lines that hold a rule: 1-based numbers, CR dropped, blank and `#` lines skipped.
fn data_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(n, raw)| (n + 1, raw.trim_end_matches('\r')))
        .filter(|(_, t)| !t.trim().is_empty() && !t.trim_start().starts_with('#'))
}

/// A line of an override file, for its errors.
struct Place<'a> {
    file: &'a str,
    text: &'a str,
    line: usize,
}

impl Place<'_> {
    /// The rule of a line from its class field and its rule field, each with its column:
    /// an unknown class and an empty rule (which would match everything) are errors.
    fn rule(
        &self,
        classes: &Classes,
        (class_col, class): (usize, &str),
        (rule_col, r): (usize, &str),
    ) -> Result<Rule, RuleError> {
        let class = code(self.file, self.text, self.line, class_col, class, classes)?;
        let r = unquote(r);
        if r.is_empty() {
            return Err(at(
                self.file,
                self.text,
                self.line,
                rule_col,
                "the rule is empty: it would match everything".into(),
                None,
            ));
        }
        Ok(rule(self.file, self.line, class, r))
    }
}

/// Parses an SMTP override file.
pub fn parse_smtp(
    file: &str,
    text: &str,
    classes: &Classes,
) -> Result<Vec<SmtpOverride>, RuleError> {
    let mut out = Vec::new();
    for (line, t) in data_lines(text) {
        let mut parts = t.splitn(3, ',');
        let (Some(domain), Some(c), Some(r)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(at(
                file,
                text,
                line,
                t.len(),
                "an SMTP override is `domain,bounce_code,rule` (the domain may be empty)".into(),
                None,
            ));
        };
        let at_line = Place { file, text, line };
        let rule = at_line.rule(
            classes,
            (domain.len() + 1, c),
            (domain.len() + c.len() + 2, r),
        )?;
        let domain = unquote(domain).to_ascii_lowercase();
        out.push(SmtpOverride {
            domain: (!domain.is_empty()).then_some(domain),
            rule,
        });
    }
    Ok(out)
}

/// Parses an MDN override file.
pub fn parse_mdn(file: &str, text: &str, classes: &Classes) -> Result<Vec<Rule>, RuleError> {
    let mut out = Vec::new();
    for (line, t) in data_lines(text) {
        let Some((c, r)) = t.split_once(',') else {
            return Err(at(
                file,
                text,
                line,
                t.len(),
                "an MDN override is `bounce_code,rule`".into(),
                None,
            ));
        };
        out.push(Place { file, text, line }.rule(classes, (0, c), (c.len() + 1, r))?);
    }
    Ok(out)
}

/// Rows of a datasource query as the lines of an override file: each row must have the
/// `columns` a line has (`what` names them), and no field may hold a line break. A row's
/// errors name it as a line of `origin`.
fn rows_text(
    origin: &str,
    rows: &[Vec<String>],
    columns: usize,
    what: &str,
) -> Result<String, RuleError> {
    let mut text = String::new();
    for (n, row) in rows.iter().enumerate() {
        let line = row.join(",");
        let bad = if row.len() != columns {
            Some(format!(
                "the query must return {what} (got {} columns)",
                row.len()
            ))
        } else if row.iter().any(|f| f.contains(['\n', '\r'])) {
            Some("a field holds a line break".to_string())
        } else {
            None
        };
        if let Some(message) = bad {
            return Err(RuleError {
                file: origin.to_string(),
                line: n + 1,
                col: 1,
                message,
                text: line,
                hint: None,
            });
        }
        text.push_str(&line);
        text.push('\n');
    }
    Ok(text)
}

/// Rows of a datasource query, `domain, bounce_code, rule`, as overrides; `origin` names
/// the query. A row that is not three fields, or whose code is not a class, is an error.
pub fn smtp_rows(
    origin: &str,
    rows: &[Vec<String>],
    classes: &Classes,
) -> Result<Vec<SmtpOverride>, RuleError> {
    parse_smtp(
        origin,
        &rows_text(origin, rows, 3, "domain, bounce_code, rule")?,
        classes,
    )
}

/// Rows of a datasource query, `bounce_code, rule`, as MDN overrides.
pub fn mdn_rows(
    origin: &str,
    rows: &[Vec<String>],
    classes: &Classes,
) -> Result<Vec<Rule>, RuleError> {
    parse_mdn(
        origin,
        &rows_text(origin, rows, 2, "bounce_code, rule")?,
        classes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_lines_as_momentum_documents_them() {
        let mut classes = Classes::default();
        classes.register(99, "profanity").unwrap();
        let o = parse_smtp(
            "user_smtp_classification.ovr",
            "# ours\n,10,this domain is no longer used\nyahoo.com,51,\"[TSS04]\"\nExample.com,99,bad|word\n\n",
            &classes,
        )
        .unwrap();
        assert_eq!(o.len(), 3);
        assert_eq!(o[0].domain, None);
        assert_eq!(o[0].rule.class, 10);
        assert_eq!(o[0].rule.pattern, "this domain is no longer used");
        assert_eq!(o[1].domain.as_deref(), Some("yahoo.com"));
        assert_eq!(o[1].rule.pattern, r"\[TSS04\]");
        assert_eq!(o[2].domain.as_deref(), Some("example.com"));
        assert_eq!(o[2].rule.pattern, "bad.*word");
        assert_eq!(o[2].rule.origin.line, 4);
    }

    #[test]
    fn a_rule_may_hold_commas() {
        let o = parse_smtp("f", ",22,over quota, try later\n", &Classes::default()).unwrap();
        assert_eq!(o[0].rule.pattern, "over quota, try later");
    }

    #[test]
    fn bad_lines_are_errors_with_their_place() {
        let c = Classes::default();
        let e = parse_smtp("f", ",10,x\nno commas\n", &c).unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse_smtp("f", "a.com,77,x\n", &c).unwrap_err();
        assert_eq!((e.line, e.col), (1, 7));
        let e = parse_smtp("f", "a.com,10,\n", &c).unwrap_err();
        assert!(e.message.contains("empty"), "{e}");
        let e = parse_mdn("f", "60 auto reply\n", &c).unwrap_err();
        assert!(e.message.contains("bounce_code,rule"), "{e}");
        let e = parse_mdn("f", "mailbox full,x\n", &c).unwrap_err();
        assert!(e.to_string().contains("did you mean `22`"), "{e}");
    }

    #[test]
    fn rows_are_read_like_lines() {
        let c = Classes::default();
        let row = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = smtp_rows("datasource my_sqlite", &[row(&["", "10", "gone away"])], &c).unwrap();
        assert_eq!(o[0].rule.class, 10);
        let m = mdn_rows("ds", &[row(&["60", "out of office"])], &c).unwrap();
        assert_eq!(m[0].class, 60);
        let e = smtp_rows("ds", &[row(&["", "10", "a"]), row(&["10", "b"])], &c).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("got 2 columns"), "{e}");
        let e = mdn_rows("ds", &[row(&["60", "two\nlines"])], &c).unwrap_err();
        assert!(e.message.contains("line break"), "{e}");
    }
}
