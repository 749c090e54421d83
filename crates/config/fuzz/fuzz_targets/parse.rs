//! Feeds arbitrary bytes through the whole front end: lexer, parser, tree builder, snapshot
//! compiler, `show`, and a re-parse of `show`'s output. None of it may panic, and a valid
//! configuration must print back to one of the same shape.
#![no_main]

use std::path::Path;

use bindery_config::snapshot::Snapshot;
use bindery_config::{LoadOptions, MemSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let source = MemSource::new().with("fuzz.conf", text);
    let Ok((tree, diags)) = bindery_config::load(&source, Path::new("fuzz.conf"), &LoadOptions::default()) else {
        return;
    };
    let _ = bindery_config::diag::render_all(&diags, &tree.sources);
    if diags.iter().any(|d| d.is_error()) {
        return;
    }
    let shown = bindery_config::show::show(&tree);
    let again = MemSource::new().with("shown.conf", shown.as_str());
    let (tree2, diags2) = bindery_config::load(&again, Path::new("shown.conf"), &LoadOptions::default()).unwrap();
    assert!(!diags2.iter().any(|d| d.is_error()), "show output does not parse:\n{shown}");
    assert_eq!(tree.shape(), tree2.shape(), "show output differs:\n{shown}");
    let snap = Snapshot::compile(tree, 1);
    let key = snap.domain_key("example.com");
    for b in snap.bindings() {
        for opt in 0..bindery_config::schema::OPTIONS.len() as u16 {
            let _ = snap.lookup(b, &key, bindery_config::schema::OptionId(opt));
        }
    }
});
