//! A console line into words: blanks separate, `"..."` and `'...'` keep blanks inside one
//! word, `\` escapes the next character. Momentum's console reads words the same way.

/// Splits `line`. An unclosed quote ends at the end of the line (the console is forgiving
/// where nothing is lost).
pub fn split(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// Quotes a word when it must be, so that [`split`] gives it back.
pub fn quote(word: &str) -> String {
    if !word.is_empty()
        && !word
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'))
    {
        return word.to_string();
    }
    let mut s = String::from("\"");
    for c in word.chars() {
        if matches!(c, '"' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(
            split(r#"config set  ehlo_hostname "a b"  x\ y 'c"d' """#),
            vec!["config", "set", "ehlo_hostname", "a b", "x y", "c\"d", ""]
        );
        assert_eq!(split("  "), Vec::<String>::new());
        assert_eq!(split("\"open"), vec!["open"]);
        for w in ["plain", "two words", "q\"uote", ""] {
            assert_eq!(split(&quote(w)), vec![w.to_string()]);
        }
    }
}
