//! Load errors: a `source` that names no file (a config diagnostic), or a script that does
//! not compile or initialise (located in the script itself).

use std::fmt::Write as _;
use std::path::PathBuf;

use bindery_config::diag::Diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Problems in the configuration's `scriptlet` stanzas.
    #[error("the configuration's scripts are not usable ({} errors)", .0.len())]
    Config(Vec<Diagnostic>),
    /// A script failed to compile, to run its top level, or to initialise.
    #[error("{}", .0.render())]
    Script(ScriptError),
}

/// A problem inside one script, with the location Lua reported.
#[derive(Debug, Clone)]
pub struct ScriptError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub col: Option<usize>,
    pub message: String,
    /// The text of `line`, for the caret.
    pub line_text: Option<String>,
}

impl ScriptError {
    /// Reads the `path:LINE:` prefix Lua puts on messages from a chunk named `@path`, and
    /// finds the column from the `near 'token'` that syntax errors carry.
    pub fn from_lua(path: &std::path::Path, text: &str, message: &str) -> ScriptError {
        // An error inside a file the script required names that file: located there.
        let first = message.lines().next().unwrap_or_default();
        if !first.contains(&format!("{}:", path.display()))
            && let Some(other) = other_file(first)
            && let Ok(other_text) = std::fs::read_to_string(&other)
        {
            return ScriptError::from_lua(&other, &other_text, message);
        }
        let shown = path.display().to_string();
        let mut line = None;
        let mut rest = message.to_string();
        if let Some(at) = message.find(&format!("{shown}:")) {
            let after = &message[at + shown.len() + 1..];
            let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
            if let Ok(n) = digits.parse::<usize>() {
                line = Some(n);
                rest = after[digits.len()..]
                    .trim_start_matches(':')
                    .trim()
                    .to_string();
            }
        }
        // Keep only the first line of a message that carries a traceback; `require`'s list
        // of the places it looked (`\n\tno file '...'`) is kept, on the same line.
        let mut lines = rest.lines();
        let mut rest = lines.next().unwrap_or_default().to_string();
        for l in lines.take_while(|l| l.starts_with("\tno ")) {
            if !rest.ends_with(':') {
                rest.push(';');
            }
            rest.push(' ');
            rest.push_str(l.trim());
        }
        let line_text = line.and_then(|n| text.lines().nth(n.saturating_sub(1)).map(String::from));
        let col = match (&line_text, near_token(&rest)) {
            (Some(l), Some(tok)) => l.find(tok).map(|i| l[..i].chars().count() + 1),
            (Some(l), None) => Some(l.len() - l.trim_start().len() + 1),
            _ => None,
        };
        ScriptError {
            path: path.to_path_buf(),
            line,
            col,
            message: rest,
            line_text,
        }
    }

    /// `FILE:LINE:COL: error: MESSAGE` with the source line and a caret, like config errors.
    pub fn render(&self) -> String {
        self.render_as("error")
    }

    /// As [`ScriptError::render`], with another level (`warning`).
    pub fn render_as(&self, level: &str) -> String {
        let mut out = String::new();
        let _ = write!(out, "{}", self.path.display());
        if let Some(l) = self.line {
            let _ = write!(out, ":{l}");
            if let Some(c) = self.col {
                let _ = write!(out, ":{c}");
            }
        }
        let _ = writeln!(out, ": {level}: {}", self.message);
        if let (Some(l), Some(text)) = (self.line, &self.line_text) {
            let col = self.col.unwrap_or(1);
            let _ = writeln!(out, "{l:>6} | {}", text.replace('\t', " "));
            let _ = writeln!(out, "       | {}^", " ".repeat(col - 1));
        }
        out
    }
}

/// What a Lua error says, in one line where Lua gave one, located at a script line where
/// it can be. An error raised by a Rust function (a callback error) has no place of its
/// own: it gets the first script line of its traceback, where the script called it, instead
/// of mlua's text, whose first line is the traceback's ("in main chunk").
pub fn error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { traceback, cause } => {
            let inner = error_text(cause);
            if has_place(&inner) {
                return inner;
            }
            match traceback
                .lines()
                .map(str::trim)
                .find(|l| !l.starts_with('[') && has_place(l))
            {
                Some(l) => {
                    let place = l.splitn(3, ':').take(2).collect::<Vec<_>>().join(":");
                    format!("{place}: {inner}")
                }
                None => inner,
            }
        }
        mlua::Error::RuntimeError(s) => s.clone(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Whether `text` starts with a `FILE.lua:LINE:` place.
fn has_place(text: &str) -> bool {
    let first = text.lines().next().unwrap_or_default();
    first.find(".lua:").is_some_and(|at| {
        let after = &first[at + 5..];
        after.starts_with(|c: char| c.is_ascii_digit()) && !first[..at].contains(' ')
    })
}

/// The `PATH` of the first `PATH.lua:LINE:` in `line`, if that file exists.
fn other_file(line: &str) -> Option<PathBuf> {
    let at = line.find(".lua:")?;
    let after = &line[at + 5..];
    if !after.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let start = line[..at]
        .rfind(|c: char| c.is_whitespace() || c == '\'' || c == '"')
        .map_or(0, |i| i + 1);
    let p = PathBuf::from(&line[start..at + 4]);
    p.is_file().then_some(p)
}

/// The token in `... near 'tok'`, unless it is `<eof>`.
fn near_token(message: &str) -> Option<&str> {
    let at = message.rfind("near '")?;
    let tok = &message[at + 6..];
    let tok = &tok[..tok.rfind('\'')?];
    (tok != "<eof>" && !tok.is_empty()).then_some(tok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_error_gets_line_and_column() {
        let text = "local x = 1\nif x == 1 msg:binding('a') end\n";
        let e = ScriptError::from_lua(
            std::path::Path::new("p/a.lua"),
            text,
            "syntax error: p/a.lua:2: 'then' expected near 'msg'",
        );
        assert_eq!(e.line, Some(2));
        assert_eq!(e.col, Some(11));
        assert_eq!(e.message, "'then' expected near 'msg'");
        let r = e.render();
        assert!(
            r.starts_with("p/a.lua:2:11: error: 'then' expected near 'msg'\n"),
            "{r}"
        );
        assert!(r.ends_with("|           ^\n"), "{r}");
    }

    #[test]
    fn message_without_location_is_kept_whole() {
        let e = ScriptError::from_lua(std::path::Path::new("a.lua"), "", "init() returned false");
        assert_eq!(e.line, None);
        assert_eq!(e.render(), "a.lua: error: init() returned false\n");
    }
}
