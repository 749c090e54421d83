//! The module registry (`schema::modules`): a refused module is an error on its line that
//! says what Momentum does with it, an inert one loads with a warning and still has its
//! options checked, and a stanza that is no module keeps the "did you mean".

use bindery_config::schema::modules::{MODULES, ModuleKind, module_by_name};
use bindery_config::schema::scope_by_keyword;

fn errors(text: &str) -> String {
    match bindery_config::snapshot_from_str("t.conf", text) {
        Ok(_) => panic!("{text:?} loaded"),
        Err(e) => e,
    }
}

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
        // Only implemented modules are scopes (scriptlet); the tree looks scopes up first.
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
    let e =
        errors("\n\nec_logger \"ec_logger\" {\n  mainlog = \"/var/log/ecelerity/mainlog.ec\"\n}\n");
    assert!(
        e.contains("t.conf:3:1: error: module `ec_logger` is not implemented by bindery"),
        "{e}"
    );
    assert!(
        e.contains("mainlog"),
        "the help says what Momentum does: {e}"
    );
    let e = errors("clamav { }\n");
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
    let e = errors("dnsbuf {\n  sndbuf_sise = 262144\n}\n");
    assert!(
        e.contains("t.conf:2:3: error: unknown option `sndbuf_sise` in module `dnsbuf`"),
        "{e}"
    );
    assert!(e.contains("did you mean `sndbuf_size`?"), "{e}");
    let e = errors("dnsbuf {\n  interval = soon\n}\n");
    assert!(
        e.contains("invalid value for `interval` in module `dnsbuf`"),
        "{e}"
    );
    let e = errors("dnsbuf \"x\" { }\n");
    assert!(e.contains("module `dnsbuf` takes no name"), "{e}");
    let e = errors("binding \"b\" { dnsbuf { } }\n");
    assert!(
        e.contains("module `dnsbuf` is only valid at the top level"),
        "{e}"
    );
}

#[test]
fn a_stanza_that_is_no_module_keeps_did_you_mean() {
    let e = errors("bindng \"b\" { }\n");
    assert!(e.contains("unknown stanza `bindng`"), "{e}");
    assert!(e.contains("did you mean `Binding`?"), "{e}");
}
