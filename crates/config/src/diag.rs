//! Diagnostics: what went wrong, where, and what was probably meant.
//!
//! Rendered the way compilers print errors, because `run-config.sh` and operators' editors
//! both understand it:
//!
//! ```text
//! conf/ecelerity.conf:12:3: error: unknown option `max_outbund_connections`
//!    12 |   max_outbund_connections = 20
//!       |   ^^^^^^^^^^^^^^^^^^^^^^^
//!       = help: did you mean `Max_Outbound_Connections`?
//! ```
//!
//! We render ourselves rather than through codespan-reporting or annotate-snippets: the
//! format is fixed by the tools that grep it (one `FILE:LINE:COL: error:` line first), and
//! the renderer is a screenful of code.

use std::borrow::Cow;
use std::fmt::Write;

use crate::span::{SourceMap, Span};

/// Diagnostics reported at most: past them a file with a million mistakes costs no more to
/// check than one with a hundred (the rest are counted, not built), and the operator fixes
/// the first ones first anyway.
pub const MAX_SHOWN: usize = 100;
/// A name longer than this is shown cut, and gets no "did you mean" (no option or stanza
/// name is half as long).
pub const NAME_MAX: usize = 64;
/// A source line longer than this is shown as a window around the caret.
const LINE_MAX: usize = 120;

/// A name as a message quotes it: cut to [`NAME_MAX`] characters, saying how long it was.
pub fn shown(name: &str) -> Cow<'_, str> {
    if name.chars().count() <= NAME_MAX {
        return Cow::Borrowed(name);
    }
    let cut: String = name.chars().take(NAME_MAX).collect();
    Cow::Owned(format!("{cut}... ({} bytes)", name.len()))
}

/// Keeps the first [`MAX_SHOWN`] diagnostics and, when there were more, ends with one at the
/// first left out, saying how many errors were left out. `more` errors were counted by a
/// builder that stopped building them; the first of those is at `more_at`.
pub fn cap(mut diags: Vec<Diagnostic>, more: usize, more_at: Option<Span>) -> Vec<Diagnostic> {
    let mut hidden = more;
    let mut first = more_at;
    if diags.len() > MAX_SHOWN {
        hidden += diags[MAX_SHOWN..].iter().filter(|d| d.is_error()).count();
        first = Some(diags[MAX_SHOWN].span);
        diags.truncate(MAX_SHOWN);
    }
    if let (true, Some(at)) = (hidden > 0, first) {
        let mut d = Diagnostic::error(
            at,
            format!("{hidden} more errors from here on are not shown (the first {MAX_SHOWN} are)"),
        );
        d.more = hidden;
        diags.push(d);
    }
    diags
}

/// How many errors `diags` stand for, counting those a [`cap`] summary stands for.
pub fn error_count(diags: &[Diagnostic]) -> usize {
    diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| if d.more > 0 { d.more } else { 1 })
        .sum()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub span: Span,
    pub message: String,
    /// A second place worth showing, such as where an unclosed stanza was opened.
    pub note: Option<(Span, String)>,
    pub help: Option<String>,
    /// For the summary [`cap`] adds: how many errors it stands for.
    pub more: usize,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            span,
            message: message.into(),
            note: None,
            help: None,
            more: 0,
        }
    }

    pub fn warning(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(span, message)
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn with_note(mut self, span: Span, note: impl Into<String>) -> Diagnostic {
        self.note = Some((span, note.into()));
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic with its source line and a caret under the span.
    pub fn render(&self, sources: &SourceMap) -> String {
        let mut out = String::new();
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(
            out,
            "{}: {}: {}",
            sources.location(self.span),
            kind,
            self.message
        );
        snippet(&mut out, sources, self.span);
        if let Some((span, note)) = &self.note {
            let _ = writeln!(out, "{}: note: {}", sources.location(*span), note);
            snippet(&mut out, sources, *span);
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "      = help: {help}");
        }
        out
    }
}

fn snippet(out: &mut String, sources: &SourceMap, span: Span) {
    let file = sources.get(span.file);
    let (line, col) = file.line_col(span.start);
    let text = file.line_text(line);
    let (end_line, end_col) = file.line_col(span.end);
    let width = if end_line == line && end_col > col {
        end_col - col
    } else {
        1
    };
    let chars = text.chars().count();
    // A long line shows a window of it around the caret.
    let (skip, take) = if chars > LINE_MAX {
        let skip = (col - 1).saturating_sub(LINE_MAX / 3);
        (skip, LINE_MAX)
    } else {
        (0, chars)
    };
    let window: String = text.chars().skip(skip).take(take).collect();
    let (pre, post) = (
        if skip > 0 { "..." } else { "" },
        if skip + take < chars { "..." } else { "" },
    );
    let _ = writeln!(out, "{line:>6} | {pre}{}{post}", window.replace('\t', " "));
    let col_in = col - 1 - skip;
    let _ = writeln!(
        out,
        "       | {}{}{}",
        pre.replace('.', " "),
        " ".repeat(col_in),
        "^".repeat(width.min(take.saturating_sub(col_in).max(1)))
    );
}

/// Renders all diagnostics, errors and warnings in the order they were found.
pub fn render_all(diags: &[Diagnostic], sources: &SourceMap) -> String {
    diags.iter().map(|d| d.render(sources)).collect()
}

/// The known name closest to `word`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    if word.len() > NAME_MAX {
        return None;
    }
    let word = word.to_ascii_lowercase();
    let mut best: Option<(&str, f64)> = None;
    for cand in candidates {
        let score = strsim::jaro_winkler(&word, &cand.to_ascii_lowercase());
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((cand, score));
        }
    }
    best.filter(|&(_, s)| s >= 0.85).map(|(c, _)| c)
}
