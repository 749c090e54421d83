//! A message as a MIME tree a script can walk and edit (`msg:mime`, the `msgpart` methods):
//! each part is its raw header block and either a body or, for a `multipart/*` part, its
//! children between boundary lines.
//!
//! Parsing keeps every byte: the preamble before the first boundary, each child as it was,
//! the epilogue after the closing one. A message nobody edits serializes to exactly what was
//! parsed, so reading a tree never changes a message. Only structure comes from here;
//! decoding a leaf's text is mail-parser's (`msgpart.rs`).
//!
//! Parts are shared nodes (`Rc<RefCell<Node>>`) with a weak link to their parent: a script
//! holds parts, makes new ones (`msg:makePart`) and links them anywhere in the tree.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

pub type PartRef = Rc<RefCell<Node>>;

#[derive(Debug)]
pub enum Body {
    Leaf(Vec<u8>),
    Multi {
        boundary: String,
        /// Everything before the first boundary line (with the line end before it).
        preamble: Vec<u8>,
        children: Vec<PartRef>,
        /// Everything after `--boundary--` (the rest of that line and beyond).
        epilogue: Vec<u8>,
    },
}

#[derive(Debug)]
pub struct Node {
    /// The header fields, each line with its CRLF; no blank line.
    pub head: Vec<u8>,
    /// Whether a blank line separates header and body (a part may have no header at all,
    /// and then starts with its blank line, or not even that).
    pub separator: bool,
    pub body: Body,
    pub parent: Weak<RefCell<Node>>,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The value of parameter `name` in a Content-Type value.
pub fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Every value of header `name` in a raw header block, unfolded.
pub fn headers(head: &[u8], name: &str) -> Vec<String> {
    let mut block = head.to_vec();
    block.extend_from_slice(b"\r\n");
    crate::headers::header_values(&block, name)
}

/// The first value of header `name` in a raw header block, unfolded.
pub fn header(head: &[u8], name: &str) -> Option<String> {
    headers(head, name).into_iter().next()
}

/// Edits a node's header block with the functions of `headers.rs`, which work on a header
/// section ended by its blank line.
pub fn edit_head(node: &mut Node, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut head = std::mem::take(&mut node.head);
    head.extend_from_slice(b"\r\n");
    edit(&mut head);
    head.truncate(head.len() - 2);
    node.head = head;
}

/// Splits raw part bytes at the blank line.
fn split_head(raw: &[u8]) -> (Vec<u8>, bool, Vec<u8>) {
    if raw.starts_with(b"\r\n") {
        return (Vec::new(), true, raw[2..].to_vec());
    }
    match find(raw, b"\r\n\r\n", 0) {
        Some(i) => (raw[..i + 2].to_vec(), true, raw[i + 4..].to_vec()),
        None => (raw.to_vec(), false, Vec::new()),
    }
}

/// The boundary of a multipart part, if its header says it is one.
fn boundary_of(head: &[u8]) -> Option<String> {
    let ct = header(head, "Content-Type")?;
    let mime = ct.split(';').next()?.trim().to_ascii_lowercase();
    if !mime.starts_with("multipart/") {
        return None;
    }
    param(&ct, "boundary").filter(|b| !b.is_empty())
}

/// Parses `raw` (a message or a part).
pub fn parse(raw: &[u8]) -> PartRef {
    parse_depth(raw, 0)
}

fn parse_depth(raw: &[u8], depth: usize) -> PartRef {
    let (head, separator, body) = split_head(raw);
    let node = Rc::new(RefCell::new(Node {
        head,
        separator,
        body: Body::Leaf(Vec::new()),
        parent: Weak::new(),
    }));
    let boundary = boundary_of(&node.borrow().head).filter(|_| depth < 32);
    let parsed = boundary.and_then(|b| split_multipart(&body, &b).map(|m| (b, m)));
    let built = match parsed {
        Some((boundary, (preamble, parts, epilogue))) => {
            let children = parts
                .iter()
                .map(|p| {
                    let c = parse_depth(p, depth + 1);
                    c.borrow_mut().parent = Rc::downgrade(&node);
                    c
                })
                .collect();
            Body::Multi {
                boundary,
                preamble,
                children,
                epilogue,
            }
        }
        None => Body::Leaf(body),
    };
    node.borrow_mut().body = built;
    node
}

type Split = (Vec<u8>, Vec<Vec<u8>>, Vec<u8>);

/// A multipart body's preamble, parts and epilogue; `None` without a closing boundary (the
/// part then stays a leaf, as written).
fn split_multipart(body: &[u8], boundary: &str) -> Option<Split> {
    let delim = format!("--{boundary}");
    let d = delim.as_bytes();
    // Delimiter lines start a line: at 0 or after CRLF.
    let line_at = |from: usize| -> Option<usize> {
        let mut at = from;
        loop {
            let i = find(body, d, at)?;
            if i == 0 || body[..i].ends_with(b"\r\n") {
                return Some(i);
            }
            at = i + 1;
        }
    };
    let first = line_at(0)?;
    let preamble = body[..first].to_vec();
    let mut parts = Vec::new();
    let mut at = first;
    loop {
        let after = at + d.len();
        if body[after..].starts_with(b"--") {
            return Some((preamble, parts, body[after + 2..].to_vec()));
        }
        let start = find(body, b"\r\n", after)? + 2;
        let next = line_at(start)?;
        // The CRLF before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
        let end = if next >= start + 2 { next - 2 } else { start };
        parts.push(body[start..end].to_vec());
        at = next;
    }
}

/// The bytes of a part.
pub fn serialize(part: &PartRef) -> Vec<u8> {
    let mut out = Vec::new();
    write(part, &mut out);
    out
}

fn write(part: &PartRef, out: &mut Vec<u8>) {
    let n = part.borrow();
    out.extend_from_slice(&n.head);
    if n.separator {
        out.extend_from_slice(b"\r\n");
    }
    match &n.body {
        Body::Leaf(b) => out.extend_from_slice(b),
        Body::Multi {
            boundary,
            preamble,
            children,
            epilogue,
        } => {
            out.extend_from_slice(preamble);
            for (i, c) in children.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
                write(c, out);
            }
            if !children.is_empty() {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(format!("--{boundary}--").as_bytes());
            out.extend_from_slice(epilogue);
        }
    }
}

/// The top of the tree `part` is in.
pub fn root(part: &PartRef) -> PartRef {
    let mut p = Rc::clone(part);
    loop {
        let up = p.borrow().parent.upgrade();
        match up {
            Some(u) => p = u,
            None => return p,
        }
    }
}

/// The part after `part` in depth-first order (Momentum's `thread`).
pub fn thread(part: &PartRef) -> Option<PartRef> {
    if let Body::Multi { children, .. } = &part.borrow().body
        && let Some(first) = children.first()
    {
        return Some(Rc::clone(first));
    }
    let mut p = Rc::clone(part);
    loop {
        let parent = p.borrow().parent.upgrade()?;
        let next = match &parent.borrow().body {
            Body::Multi { children, .. } => children
                .iter()
                .position(|c| Rc::ptr_eq(c, &p))
                .and_then(|i| children.get(i + 1).cloned()),
            Body::Leaf(_) => None,
        };
        if let Some(n) = next {
            return Some(n);
        }
        p = parent;
    }
}

/// Takes `part` out of its parent.
pub fn unlink(part: &PartRef) {
    let parent = part.borrow().parent.upgrade();
    if let Some(parent) = parent
        && let Body::Multi { children, .. } = &mut parent.borrow_mut().body
    {
        children.retain(|c| !Rc::ptr_eq(c, part));
    }
    part.borrow_mut().parent = Weak::new();
}

/// Where a part goes when linked.
#[derive(Clone, Copy)]
pub enum Place {
    FirstChild,
    LastChild,
    Before,
    After,
}

/// Links `child` at `place` relative to `to`; false where that cannot be (a leaf has no
/// children, the top part no siblings, a part cannot go inside itself).
pub fn link(to: &PartRef, child: &PartRef, place: Place) -> bool {
    if Rc::ptr_eq(&root(to), child) || Rc::ptr_eq(to, child) {
        return false;
    }
    let (parent, index) = match place {
        Place::FirstChild | Place::LastChild => (Rc::clone(to), None),
        Place::Before | Place::After => {
            let Some(p) = to.borrow().parent.upgrade() else {
                return false;
            };
            (p, Some(place))
        }
    };
    if !matches!(parent.borrow().body, Body::Multi { .. }) {
        return false;
    }
    unlink(child);
    let mut pb = parent.borrow_mut();
    let Body::Multi { children, .. } = &mut pb.body else {
        return false;
    };
    let at = match index {
        None if matches!(place, Place::FirstChild) => 0,
        None => children.len(),
        Some(p) => {
            let i = children
                .iter()
                .position(|c| Rc::ptr_eq(c, to))
                .unwrap_or(children.len());
            if matches!(p, Place::After) { i + 1 } else { i }
        }
    };
    children.insert(at, Rc::clone(child));
    drop(pb);
    child.borrow_mut().parent = Rc::downgrade(&parent);
    true
}

/// A new unlinked leaf part.
pub fn leaf(content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> PartRef {
    let mut head = format!("Content-Type: {content_type}\r\n");
    if let Some(e) = encoding {
        head.push_str(&format!("Content-Transfer-Encoding: {e}\r\n"));
    }
    Rc::new(RefCell::new(Node {
        head: head.into_bytes(),
        separator: true,
        body: Body::Leaf(body),
        parent: Weak::new(),
    }))
}

/// A new unlinked container part.
pub fn container(content_type: &str, boundary: &str, terminator: bool) -> PartRef {
    let head = format!("Content-Type: {content_type}; boundary=\"{boundary}\"\r\n");
    Rc::new(RefCell::new(Node {
        head: head.into_bytes(),
        separator: true,
        body: Body::Multi {
            boundary: boundary.to_string(),
            preamble: Vec::new(),
            children: Vec::new(),
            epilogue: if terminator {
                b"\r\n.\r\n".to_vec()
            } else {
                b"\r\n".to_vec()
            },
        },
        parent: Weak::new(),
    }))
}

/// A boundary no part of `part`'s tree uses, and that none contains.
pub fn new_boundary(part: Option<&PartRef>) -> String {
    let mut used = Vec::new();
    if let Some(p) = part {
        let mut at = Some(root(p));
        while let Some(n) = at {
            if let Body::Multi { boundary, .. } = &n.borrow().body {
                used.push(boundary.clone());
            }
            at = thread(&n);
        }
    }
    loop {
        let b = format!("=_bindery_{:016x}", fastrand::u64(..));
        if !used
            .iter()
            .any(|u| u.contains(&b) || b.contains(u.as_str()))
        {
            return b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &str = "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\npreamble\r\n--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\nplain\r\n--inner\r\nContent-Type: text/html\r\n\r\n<b>html</b>\r\n--inner--\r\n\r\n--outer\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--outer--\r\nepilogue\r\n";

    fn types(root: &PartRef) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = Some(Rc::clone(root));
        while let Some(p) = at {
            out.push(
                header(&p.borrow().head, "Content-Type")
                    .unwrap_or_default()
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            );
            at = thread(&p);
        }
        out
    }

    #[test]
    fn parse_serializes_back_byte_for_byte_and_threads_depth_first() {
        for raw in [
            MULTI,
            "Subject: plain\r\n\r\nJust text.\r\n",
            "Subject: no body\r\n",
            "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\nno head\r\n--x--",
            "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nunterminated",
        ] {
            let t = parse(raw.as_bytes());
            assert_eq!(String::from_utf8(serialize(&t)).unwrap(), raw);
        }
        let t = parse(MULTI.as_bytes());
        assert_eq!(
            types(&t),
            vec![
                "multipart/mixed",
                "multipart/alternative",
                "text/plain",
                "text/html",
                "application/pdf"
            ]
        );
    }

    #[test]
    fn parts_link_unlink_and_serialize() {
        let t = parse(MULTI.as_bytes());
        let alt = thread(&t).unwrap();
        let plain = thread(&alt).unwrap();
        let extra = leaf("text/plain; charset=utf-8", None, b"Disclaimer".to_vec());
        assert!(link(&t, &extra, Place::LastChild));
        assert!(
            !link(&plain, &extra, Place::LastChild),
            "a leaf has no children"
        );
        unlink(&plain);
        let out = String::from_utf8(serialize(&t)).unwrap();
        assert!(!out.contains("\r\nplain\r\n"), "{out}");
        assert!(out.ends_with("--outer\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDisclaimer\r\n--outer--\r\nepilogue\r\n"), "{out}");
        let again = parse(out.as_bytes());
        assert_eq!(
            types(&again),
            vec![
                "multipart/mixed",
                "multipart/alternative",
                "text/html",
                "application/pdf",
                "text/plain"
            ]
        );
        let b = new_boundary(Some(&t));
        assert!(!b.contains("outer") && !b.contains("inner"));
    }
}
