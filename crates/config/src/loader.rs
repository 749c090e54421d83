//! Reads the main configuration file and everything it includes.
//!
//! All file access goes through [`Source`], so tests load whole trees of files from memory
//! ([`MemSource`]) and the parser itself never touches the disk.
//!
//! Includes are textual: the included file's items take the place of the `include` line,
//! inside whatever stanza it appears in. A relative path is looked up beside the including
//! file first, then along the search path (`conf/global:conf/{NODENAME}:conf/default` by
//! default, relative to the main file's folder). A folder includes its files in lexical
//! order, skipping hidden files and subfolders.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;
use crate::parser::parse;
use crate::span::{FileId, SourceMap, Span};
use crate::syntax::Item;

/// Where configuration files come from.
pub trait Source {
    fn read(&self, path: &Path) -> io::Result<String>;
    /// `Some(true)` for a folder, `Some(false)` for a file, `None` if nothing is there.
    fn kind(&self, path: &Path) -> Option<bool>;
    /// Entries of a folder (files and folders), in any order.
    fn list(&self, path: &Path) -> io::Result<Vec<PathBuf>>;
}

/// The real file system.
pub struct FsSource;

/// A file that is not UTF-8: its text with the bad bytes replaced, and where the first one
/// is, so the loader can point at it with FILE:LINE:COL and a caret. Carried inside the
/// `io::Error` a [`Source`] returns.
#[derive(Debug)]
pub struct NotUtf8 {
    pub lossy: String,
    pub offset: usize,
}

impl std::fmt::Display for NotUtf8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not UTF-8 (first bad byte at offset {})", self.offset)
    }
}

impl std::error::Error for NotUtf8 {}

impl Source for FsSource {
    fn read(&self, path: &Path) -> io::Result<String> {
        // A FIFO or a device would block the read (or never end): only regular files.
        let meta = std::fs::metadata(path)?;
        if !meta.file_type().is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file (a FIFO, socket or device)",
            ));
        }
        let bytes = std::fs::read(path)?;
        String::from_utf8(bytes).map_err(|e| {
            let offset = e.utf8_error().valid_up_to();
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            io::Error::new(io::ErrorKind::InvalidData, NotUtf8 { lossy, offset })
        })
    }

    fn kind(&self, path: &Path) -> Option<bool> {
        std::fs::metadata(path).ok().map(|m| m.is_dir())
    }

    fn list(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect()
    }
}

/// Files held in memory, for tests and for the embedded default configuration.
#[derive(Default, Clone)]
pub struct MemSource {
    files: BTreeMap<PathBuf, String>,
}

impl MemSource {
    pub fn new() -> MemSource {
        MemSource::default()
    }

    pub fn with(mut self, path: impl Into<PathBuf>, text: impl Into<String>) -> MemSource {
        self.files.insert(path.into(), text.into());
        self
    }
}

impl Source for MemSource {
    fn read(&self, path: &Path) -> io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }

    fn kind(&self, path: &Path) -> Option<bool> {
        if self.files.contains_key(path) {
            Some(false)
        } else if self.files.keys().any(|k| k.starts_with(path)) {
            Some(true)
        } else {
            None
        }
    }

    fn list(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out: Vec<PathBuf> = self
            .files
            .keys()
            .filter_map(|k| k.strip_prefix(path).ok())
            .filter_map(|rest| rest.components().next())
            .map(|c| path.join(c))
            .collect();
        out.dedup();
        Ok(out)
    }
}

/// How to find files.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// The node name for `{NODENAME}` in the search path (`--node`, else the host name).
    pub node: String,
    /// Colon-separated search path; `None` means the default. Relative entries are taken
    /// from the main file's folder.
    pub search_path: Option<String>,
}

pub const DEFAULT_SEARCH_PATH: &str = "conf/global:conf/{NODENAME}:conf/default";

/// The main file and its includes, spliced into one item list.
pub struct Loaded {
    pub sources: SourceMap,
    /// The search path's folders, in order: where includes and policy modules are looked up.
    pub search: Vec<PathBuf>,
    pub items: Vec<Item>,
    pub diags: Vec<Diagnostic>,
}

/// The text of a file that is not UTF-8, and the diagnostic at its first bad byte.
fn not_utf8(e: &io::Error) -> Option<&NotUtf8> {
    e.get_ref().and_then(|r| r.downcast_ref::<NotUtf8>())
}

fn bad_bytes(sources: &mut SourceMap, path: &Path, bad: &NotUtf8) -> Diagnostic {
    let id = sources.add(path.to_path_buf(), bad.lossy.clone());
    Diagnostic::error(
        Span::new(id, bad.offset, bad.offset + 1),
        "not UTF-8: this byte is not valid UTF-8",
    )
    .with_help("configuration files are UTF-8; convert it, e.g. `iconv -f latin1 -t utf-8`")
}

/// Reads `main` and all its includes. A main file that cannot be read at all is an error;
/// anything else, a main file that is not UTF-8 included, is a diagnostic.
pub fn load(source: &dyn Source, main: &Path, opts: &LoadOptions) -> Result<Loaded, io::Error> {
    let text = match source.read(main) {
        Err(e) if not_utf8(&e).is_none() => return Err(e),
        r => r,
    };
    let base = main.parent().map(Path::to_path_buf).unwrap_or_default();
    let search = opts
        .search_path
        .as_deref()
        .unwrap_or(DEFAULT_SEARCH_PATH)
        .split(':')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let p = PathBuf::from(s.replace("{NODENAME}", &opts.node));
            if p.is_absolute() { p } else { base.join(p) }
        })
        .collect();
    let mut l = Loader {
        source,
        search,
        sources: SourceMap::new(),
        diags: Vec::new(),
        stack: Vec::new(),
    };
    let items = match text {
        Ok(text) => {
            let id = l.sources.add(main.to_path_buf(), text);
            l.file(id)
        }
        Err(e) => {
            if let Some(bad) = not_utf8(&e) {
                let d = bad_bytes(&mut l.sources, main, bad);
                l.diags.push(d);
            }
            Vec::new()
        }
    };
    Ok(Loaded {
        search: l.search.clone(),
        sources: l.sources,
        items,
        diags: l.diags,
    })
}

struct Loader<'a> {
    source: &'a dyn Source,
    search: Vec<PathBuf>,
    sources: SourceMap,
    diags: Vec<Diagnostic>,
    /// Files being included right now, to refuse include cycles.
    stack: Vec<PathBuf>,
}

/// Include nesting beyond which we stop, as a guard against runaway self-similar trees.
const MAX_INCLUDE_DEPTH: usize = 32;

impl Loader<'_> {
    fn file(&mut self, id: FileId) -> Vec<Item> {
        let file = self.sources.get(id);
        let path = file.path.clone();
        let (items, diags) = parse(id, &file.text);
        self.diags.extend(diags);
        self.stack.push(path.clone());
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let items = self.expand(items, &dir);
        self.stack.pop();
        items
    }

    fn expand(&mut self, items: Vec<Item>, dir: &Path) -> Vec<Item> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Item::Include { readonly, path } => {
                    out.extend(self.include(readonly, &path.node, path.span, dir))
                }
                Item::Stanza {
                    keyword,
                    name,
                    items,
                    open,
                } => {
                    let items = self.expand(items, dir);
                    out.push(Item::Stanza {
                        keyword,
                        name,
                        items,
                        open,
                    });
                }
                other => out.push(other),
            }
        }
        out
    }

    fn resolve(&self, path: &str, dir: &Path) -> Option<PathBuf> {
        let p = Path::new(path);
        if p.is_absolute() {
            return self.source.kind(p).map(|_| p.to_path_buf());
        }
        std::iter::once(dir.to_path_buf())
            .chain(self.search.iter().cloned())
            .map(|d| d.join(p))
            .find(|c| self.source.kind(c).is_some())
    }

    fn include(&mut self, readonly: bool, path: &str, span: Span, dir: &Path) -> Vec<Item> {
        let Some(found) = self.resolve(path, dir) else {
            let looked: Vec<String> = std::iter::once(dir.to_path_buf())
                .chain(self.search.iter().cloned())
                .map(|d| d.display().to_string())
                .collect();
            self.diags.push(
                Diagnostic::error(span, format!("cannot find included file `{path}`"))
                    .with_help(format!("looked in: {}", looked.join(", "))),
            );
            return Vec::new();
        };
        if self.source.kind(&found) == Some(true) {
            let mut files = match self.source.list(&found) {
                Ok(files) => files,
                Err(e) => {
                    self.diags.push(Diagnostic::error(
                        span,
                        format!("cannot list `{}`: {e}", found.display()),
                    ));
                    return Vec::new();
                }
            };
            files.retain(|f| {
                let hidden = f
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_none_or(|n| n.starts_with('.'));
                !hidden && self.source.kind(f) == Some(false)
            });
            files.sort();
            return files
                .iter()
                .flat_map(|f| self.include_file(readonly, f, span))
                .collect();
        }
        self.include_file(readonly, &found, span)
    }

    fn include_file(&mut self, readonly: bool, path: &Path, span: Span) -> Vec<Item> {
        if self.stack.iter().any(|p| p == path) {
            self.diags.push(Diagnostic::error(
                span,
                format!("include cycle: `{}` includes itself", path.display()),
            ));
            return Vec::new();
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            self.diags
                .push(Diagnostic::error(span, "includes nested too deeply"));
            return Vec::new();
        }
        // A file included more than once is read-only (Momentum's rule), and its items are
        // spliced in again at the new place.
        let id = match self.sources.find(path) {
            Some(id) => {
                self.sources.get_mut(id).readonly = true;
                id
            }
            None => match self.source.read(path) {
                Ok(text) => self.sources.add(path.to_path_buf(), text),
                Err(e) => {
                    if let Some(bad) = not_utf8(&e) {
                        let d = bad_bytes(&mut self.sources, path, bad);
                        self.diags.push(d.with_note(span, "included here"));
                        return Vec::new();
                    }
                    self.diags.push(Diagnostic::error(
                        span,
                        format!("cannot read `{}`: {e}", path.display()),
                    ));
                    return Vec::new();
                }
            },
        };
        if readonly {
            self.sources.get_mut(id).readonly = true;
        }
        self.file(id)
    }
}
