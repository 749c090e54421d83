//! Walks the whole option table and the module registry: every option has exactly one kind
//! (`schema::kinds`), an "implemented" option is named by code outside the schema, and the
//! values a "default only" or "one value only" option honours load; every module has a kind
//! and a reason, a refused one is an error on its line, an inert one has its options checked. An option accepted and then ignored is
//! the failure this guards against: `config check` would say OK for something not in force.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bindery_config::schema::kinds::{IMPLEMENTED, NOT_IMPLEMENTED};
use bindery_config::schema::modules::{MODULES, ModuleKind, module_by_name};
use bindery_config::schema::{Kind, OPTIONS, ScopeKind, kind_of, option_by_name, scope_by_keyword};

#[test]
fn every_option_has_exactly_one_kind() {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for name in IMPLEMENTED
        .iter()
        .copied()
        .chain(NOT_IMPLEMENTED.iter().map(|(n, _)| *n))
    {
        let id = option_by_name(name).unwrap_or_else(|| panic!("{name} is not in the schema"));
        assert_eq!(id.def().name, name, "spell {name} as the schema does");
        *seen.entry(name).or_default() += 1;
    }
    let missing: Vec<_> = OPTIONS
        .iter()
        .map(|o| o.name)
        .filter(|n| !seen.contains_key(n))
        .collect();
    assert!(missing.is_empty(), "options with no kind: {missing:?}");
    let twice: Vec<_> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| *k)
        .collect();
    assert!(twice.is_empty(), "options with two kinds: {twice:?}");
}

/// Every `.rs` file under `dir`, with the part from `#[cfg(test)]` on cut away.
fn sources(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let code = match text.find("#[cfg(test)]") {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            out.push((p, code));
        }
    }
}

/// String literals of the code, lower case.
fn literals(code: &str) -> Vec<String> {
    code.split('"')
        .skip(1)
        .step_by(2)
        .map(|s| s.to_ascii_lowercase())
        .collect()
}

/// An implemented option must be named (its name as a string literal, any case) by some
/// code outside the schema: `option_id("X")`, `opt("x")`, `global(snap, "x")`... A literal
/// is a weak proof for a name as common as `Enable`, but an option nobody names is surely
/// read by nobody.
#[test]
fn every_implemented_option_is_read_outside_the_schema() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in std::fs::read_dir(&crates).expect("crates/").flatten() {
        sources(&krate.path().join("src"), &mut files);
    }
    let mut named = std::collections::HashSet::new();
    for (path, code) in &files {
        if path.to_string_lossy().contains("config/src/schema") {
            continue;
        }
        named.extend(literals(code));
    }
    let listener_only = NOT_IMPLEMENTED
        .iter()
        .filter(|(_, k)| matches!(k, Kind::ListenerOnly(..) | Kind::Values(..)))
        .map(|(n, _)| n);
    let unread: Vec<_> = IMPLEMENTED
        .iter()
        .chain(listener_only)
        .filter(|n| !named.contains(&n.to_ascii_lowercase()))
        .collect();
    assert!(
        unread.is_empty(),
        "marked implemented, but no code outside the schema names them: {unread:?}"
    );
}

/// The stanza an option can be tried in, for the load test.
fn wrap(kind_ok: impl Fn(ScopeKind) -> bool, line: &str) -> Option<String> {
    let places: [(ScopeKind, &str, &str); 4] = [
        (ScopeKind::Global, "", ""),
        (ScopeKind::Security, "Security {\n", "}\n"),
        (ScopeKind::EsmtpListener, "ESMTP_Listener {\n", "}\n"),
        (ScopeKind::ControlListener, "Control_Listener {\n", "}\n"),
    ];
    places
        .iter()
        .find(|(k, _, _)| kind_ok(*k))
        .map(|(_, open, close)| format!("{open}{line}\n{close}"))
}

#[test]
fn the_value_a_restricted_option_honours_loads() {
    for o in OPTIONS {
        let id = option_by_name(o.name).expect("in the schema");
        let (honoured, other) = match kind_of(id) {
            Kind::DefaultOnly(_) => (
                o.default.expect("a default-only option has a default"),
                None,
            ),
            Kind::Fixed(v, _) => (v, None),
            Kind::Refused(_) => ("", Some(())),
            _ => continue,
        };
        let scopes = o.scopes;
        if other.is_some() {
            continue;
        }
        let value = if honoured.contains(' ') || honoured.contains('[') {
            format!("\"{honoured}\"")
        } else {
            honoured.to_string()
        };
        let Some(text) = wrap(|k| scopes.contains(k), &format!("{} = {value}", o.name)) else {
            continue;
        };
        if let Err(e) = bindery_config::snapshot_from_str("t.conf", &text) {
            panic!("{} = {value} should load:\n{e}", o.name);
        }
    }
}

fn refusal(text: &str) -> String {
    match bindery_config::snapshot_from_str("t.conf", text) {
        Ok(_) => panic!("{text:?} loaded"),
        Err(e) => e,
    }
}

#[test]
fn a_refused_option_is_an_error_and_an_inert_one_loads() {
    let refused = refusal("Generate_Bounces_For_Multi_Recipient_Policy_Rejections = true\n");
    assert!(
        refused.contains(
            "`Generate_Bounces_For_Multi_Recipient_Policy_Rejections` is not implemented by bindery"
        ),
        "{refused}"
    );
    assert!(refused.contains("t.conf:1:1"), "{refused}");
    // A value honoured in one scope only: `inline` acts at RCPT, before there is a binding.
    let other = refusal("binding \"b\" {\n  Blackhole = true\n}\n");
    assert!(
        other.contains(
            "`Blackhole = true` is not implemented by bindery (only `false` or `internal` is)"
        ),
        "{other}"
    );
    assert!(other.contains("t.conf:2:3"), "{other}");
    bindery_config::snapshot_from_str(
        "t.conf",
        "Blackhole = false\nForce_Fsync = true\ndomain \"d\" { Blackhole = inline }\n",
    )
    .expect("default, inert and domain-scope inline values load");
}

// ---- The module registry (`schema::modules`): a refused module is an error on its line that
// says what Momentum does with it, an inert one loads with a warning and still has its
// options checked, and a stanza that is no module keeps the "did you mean". ----

#[test]
fn names_are_unique_and_no_module_hides_a_scope() {
    let mut names: Vec<String> = MODULES
        .iter()
        .map(|m| m.name.to_ascii_lowercase())
        .collect();
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "a module is listed twice");
    for m in MODULES {
        let is_scope = scope_by_keyword(m.name).is_some();
        // Only implemented modules are scopes (scriptlet, the loggers); the tree looks scopes up first.
        assert_eq!(is_scope, m.kind == ModuleKind::Implemented, "{}", m.name);
        if let ModuleKind::Inert(why) | ModuleKind::Refused(why) = m.kind {
            assert!(!why.is_empty(), "{} has no reason", m.name);
        }
    }
    assert!(
        module_by_name("EC_logger").is_some(),
        "names are matched ignoring case"
    );
}

#[test]
fn a_refused_module_is_an_error_on_its_line() {
    let e = refusal("\n\nseedlist \"seeds\" {\n}\n");
    assert!(
        e.contains("t.conf:3:1: error: module `seedlist` is not implemented by bindery"),
        "{e}"
    );
    assert!(
        e.contains("seed list"),
        "the help says what Momentum does: {e}"
    );
    let e = refusal("clamav { }\n");
    assert!(
        e.contains("module `clamav` is not implemented by bindery"),
        "{e}"
    );
    assert!(
        e.contains("scan before injection"),
        "the help says what to do instead: {e}"
    );
}

#[test]
fn an_inert_module_loads_and_its_options_are_checked() {
    bindery_config::snapshot_from_str(
        "t.conf",
        "dnsbuf {\n  sndbuf_size = 262144\n  rcvbuf_size = 262144\n  interval = 60\n}\n",
    )
    .expect("an inert module loads");
    let e = refusal("dnsbuf {\n  sndbuf_sise = 262144\n}\n");
    assert!(
        e.contains("t.conf:2:3: error: unknown option `sndbuf_sise` in module `dnsbuf`"),
        "{e}"
    );
    assert!(e.contains("did you mean `sndbuf_size`?"), "{e}");
    let e = refusal("dnsbuf {\n  interval = soon\n}\n");
    assert!(
        e.contains("invalid value for `interval` in module `dnsbuf`"),
        "{e}"
    );
    let e = refusal("dnsbuf \"x\" { }\n");
    assert!(e.contains("module `dnsbuf` takes no name"), "{e}");
    let e = refusal("binding \"b\" { dnsbuf { } }\n");
    assert!(
        e.contains("module `dnsbuf` is only valid at the top level"),
        "{e}"
    );
}

#[test]
fn a_stanza_that_is_no_module_keeps_did_you_mean() {
    let e = refusal("bindng \"b\" { }\n");
    assert!(e.contains("unknown stanza `bindng`"), "{e}");
    assert!(e.contains("did you mean `Binding`?"), "{e}");
}
