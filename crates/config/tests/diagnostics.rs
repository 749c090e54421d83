//! Golden tests of diagnostics: each `diagnostics/NAME.conf` is checked and its rendered
//! diagnostics compared with `diagnostics/NAME.expected`. Run with `BINDERY_BLESS=1` to
//! rewrite the expectations after a deliberate change, then review the diff.

use std::path::Path;

use bindery_config::diag::render_all;
use bindery_config::{LoadOptions, MemSource};

#[test]
fn golden_diagnostics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diagnostics");
    let bless = std::env::var_os("BINDERY_BLESS").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    let mut failed = Vec::new();
    for case in cases {
        let name = case.file_name().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&case).unwrap();
        // Load from memory under the bare file name so the output does not depend on where
        // the checkout lives.
        let source = MemSource::new().with(&name, text);
        let (tree, diags) =
            bindery_config::load(&source, Path::new(&name), &LoadOptions::default()).unwrap();
        assert!(
            diags.iter().any(|d| d.is_error()),
            "{name}: expected at least one error"
        );
        let got = render_all(&diags, &tree.sources);
        let expected_path = case.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != want {
            failed.push(format!("--- {name}: got\n{got}\n--- expected\n{want}"));
        }
    }
    assert!(
        failed.is_empty(),
        "diagnostics differ (BINDERY_BLESS=1 to re-bless):\n{}",
        failed.join("\n")
    );
}
