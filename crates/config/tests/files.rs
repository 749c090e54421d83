//! The loader against a real file system (issue 16, findings 13 and 14): what is not a
//! regular file is refused instead of read (a FIFO would block the check for ever), and a
//! file that is not UTF-8 is pointed at with FILE:LINE:COL and a caret at its first bad byte,
//! whether it is the main file or an include.

use std::path::Path;

use bindery_config::diag::render_all;
use bindery_config::{FsSource, LoadOptions};

fn check(main: &Path) -> String {
    let (tree, diags) = bindery_config::load(&FsSource, main, &LoadOptions::default()).unwrap();
    render_all(&diags, &tree.sources)
}

#[test]
fn an_include_of_a_fifo_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.conf");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path and a mode.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let main = dir.path().join("main.conf");
    std::fs::write(&main, "Hostname = \"x\"\ninclude \"fifo.conf\"\n").unwrap();
    let out = check(&main);
    assert!(
        out.contains("main.conf:2:9: error: cannot read")
            && out.contains("not a regular file (a FIFO, socket or device)"),
        "{out}"
    );
    let Err(e) = bindery_config::load(&FsSource, &fifo, &LoadOptions::default()) else {
        panic!("a FIFO as the main file is refused");
    };
    assert!(e.to_string().contains("not a regular file"), "{e}");
}

#[test]
fn a_file_that_is_not_utf8_is_shown_at_its_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.conf");
    std::fs::write(
        &main,
        b"Hostname = \"x\"\n# caf\xe9\ninclude \"latin.conf\"\n",
    )
    .unwrap();
    let out = check(&main);
    assert!(out.contains("main.conf:2:6: error: not UTF-8"), "{out}");
    assert!(out.contains("iconv"), "{out}");
    std::fs::write(&main, "include \"latin.conf\"\n").unwrap();
    std::fs::write(
        dir.path().join("latin.conf"),
        b"Hostname = \"ok\"\n\n  X = \"\xff\"\n",
    )
    .unwrap();
    let out = check(&main);
    assert!(out.contains("latin.conf:3:8: error: not UTF-8"), "{out}");
    assert!(out.contains("main.conf:1:9: note: included here"), "{out}");
}
