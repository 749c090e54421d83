//! Errors of rule and override files: file:line:col, the line, a caret and a suggestion.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RuleError {
    pub file: String,
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    pub message: String,
    /// The offending line, for the caret.
    pub text: String,
    pub hint: Option<String>,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )?;
        writeln!(f, "  {}", self.text)?;
        write!(f, "  {}^", " ".repeat(self.col.saturating_sub(1)))?;
        if let Some(h) = &self.hint {
            write!(f, "\n  did you mean `{h}`?")?;
        }
        Ok(())
    }
}

/// An error at `line` (1-based) and byte offset `col0` (0-based) of `text`.
pub(crate) fn at(
    file: &str,
    text: &str,
    line: usize,
    col0: usize,
    message: String,
    hint: Option<String>,
) -> RuleError {
    let l = text.lines().nth(line.saturating_sub(1)).unwrap_or("");
    RuleError {
        file: file.to_string(),
        line,
        col: l
            .get(..col0.min(l.len()))
            .map_or(1, |p| p.chars().count() + 1),
        message,
        text: l.to_string(),
        hint,
    }
}
