//! What the `@`-separated logs share: the escaping of a field and the split of an address.

/// A field of an `@`-separated line. Momentum's log pages say `@`, `\` and control characters
/// in a field are escaped with a `\` before them; a line break would end the record, so CR and
/// LF become a space instead. A parser that splits on unescaped `@` gets the fields back.
pub fn escape(field: &str, out: &mut String) {
    for c in field.chars() {
        match c {
            '\r' | '\n' => out.push(' '),
            '@' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

/// Free text that ends a record (a reason, an event): as it is, except that CR and LF,
/// which would end the record early, become spaces.
pub fn flat(text: &str, out: &mut String) {
    out.extend(
        text.chars()
            .map(|c| if c == '\r' || c == '\n' { ' ' } else { c }),
    );
}

/// Joins `fields` with `@`, each escaped, and ends the line.
pub fn line(fields: &[&str]) -> String {
    let mut out = String::with_capacity(fields.iter().map(|f| f.len() + 1).sum::<usize>() + 1);
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push('@');
        }
        escape(f, &mut out);
    }
    out.push('\n');
    out
}

/// `local@domain` as the logs show it: the local part and the domain, split at the last `@`.
/// The null sender is two empty fields.
pub fn split_address(addr: &str) -> (&str, &str) {
    match addr.rsplit_once('@') {
        Some((l, d)) => (l, d),
        None => (addr, ""),
    }
}

/// Seconds between `from_ms` and `to_ms` as the logs write them: three decimals.
pub fn elapsed(from_ms: u64, to_ms: u64) -> String {
    let ms = to_ms.saturating_sub(from_ms);
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_escaped_and_split_back() {
        let l = line(&["1", "550 <a@b> no\\way\r\nmore"]);
        assert_eq!(l, "1@550 <a\\@b> no\\\\way  more\n");
        assert_eq!(split_address("a@b@example.com"), ("a@b", "example.com"));
        assert_eq!(split_address(""), ("", ""));
        assert_eq!(elapsed(1_000, 19_530), "18.530");
    }
}
