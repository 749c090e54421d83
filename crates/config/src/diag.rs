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

use std::fmt::Write;

use crate::span::{SourceMap, Span};

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
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            span,
            message: message.into(),
            note: None,
            help: None,
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
    let _ = writeln!(out, "{line:>6} | {}", text.replace('\t', " "));
    let _ = writeln!(
        out,
        "       | {}{}",
        " ".repeat(col - 1),
        "^".repeat(width.min(text.chars().count().saturating_sub(col - 1).max(1)))
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
