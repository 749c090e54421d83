//! Completion for the interactive console, without I/O: command words first, then binding,
//! group (`group:NAME`) and domain names where a command takes them.

use serde::Deserialize;

use crate::commands::COMMANDS;

/// What the daemon knows by name (the `names` command's JSON).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Names {
    pub bindings: Vec<String>,
    pub groups: Vec<String>,
    pub domains: Vec<String>,
}

/// Candidates for the word under the cursor: (where the word starts, candidates).
pub fn candidates(before_cursor: &str, names: &Names) -> (usize, Vec<String>) {
    let start = before_cursor
        .rfind(char::is_whitespace)
        .map_or(0, |i| i + 1);
    let partial = &before_cursor[start..];
    let done: Vec<&str> = before_cursor[..start].split_whitespace().collect();
    let mut out: Vec<String> = Vec::new();
    // The next word of any command whose first words are those typed.
    for (cmd, _, _) in COMMANDS {
        let words: Vec<&str> = cmd.split(' ').collect();
        if words.len() > done.len()
            && words[..done.len()] == done[..]
            && words[done.len()].starts_with(partial)
        {
            out.push(words[done.len()].to_string());
        }
    }
    if out.is_empty() {
        let first = done.first().copied().unwrap_or("");
        let names_here: Vec<String> = match (first, done.get(1).copied()) {
            ("binding", Some("summary")) => names
                .bindings
                .iter()
                .cloned()
                .chain(names.groups.iter().map(|g| format!("group:{g}")))
                .collect(),
            ("binding", _) | ("rebind", _) | ("mailq", _) => {
                let mut v: Vec<String> = names.bindings.clone();
                if done.len() >= 3 || first == "rebind" {
                    v.extend(names.domains.iter().cloned());
                    v.push("all".into());
                }
                v
            }
            ("showqueue", _) | ("domain", _) => names
                .domains
                .iter()
                .cloned()
                .chain(["binding".to_string(), "all".to_string()])
                .chain(names.bindings.iter().cloned())
                .collect(),
            ("config", _) => ["binding", "binding_group", "domain", "host"]
                .iter()
                .map(ToString::to_string)
                .chain(names.bindings.iter().cloned())
                .chain(names.groups.iter().cloned())
                .collect(),
            _ => Vec::new(),
        };
        out = names_here
            .into_iter()
            .filter(|n| n.starts_with(partial))
            .collect();
    }
    out.sort();
    out.dedup();
    (start, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            bindings: vec!["default".into(), "mkt1".into(), "mkt2".into()],
            groups: vec!["marketing".into()],
            domains: vec!["gmail.com".into(), "yahoo.com".into()],
        }
    }

    #[test]
    fn commands_then_names() {
        let n = names();
        assert_eq!(candidates("bin", &n), (0, vec!["binding".to_string()]));
        assert_eq!(
            candidates("binding ", &n).1,
            vec!["active", "delayed", "fail", "flush", "summary"]
        );
        assert_eq!(
            candidates("binding summary mk", &n),
            (16, vec!["mkt1".into(), "mkt2".into()])
        );
        assert_eq!(
            candidates("binding summary gr", &n).1,
            vec!["group:marketing"]
        );
        assert_eq!(
            candidates("binding flush domain mkt1 y", &n).1,
            vec!["yahoo.com"]
        );
        assert_eq!(candidates("domain g", &n).1, vec!["gmail.com"]);
        assert_eq!(candidates("config s", &n).1, vec!["set", "show"]);
        assert!(candidates("frob ", &n).1.is_empty());
    }
}
