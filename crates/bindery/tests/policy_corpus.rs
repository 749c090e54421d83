//! Momentum's own Lua scripts, unchanged, through `bindery policy test`: each case under
//! `tests/policy-corpus/cases/` and its golden `expect` (see that folder's README).
//! `BINDERY_BLESS=1` rewrites the golden files.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "../../delivery/tests/support/dnsmasq.rs"]
#[allow(dead_code)]
mod dnsmasq;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/policy-corpus/cases")
}

/// A log line without its timestamp (`2026-12-07T08:00:00.000000Z  INFO ...`).
fn untimed(line: &str) -> &str {
    match line.split_once("Z ") {
        Some((stamp, rest)) if stamp.len() > 18 && stamp.as_bytes()[4] == b'-' => rest.trim_start(),
        _ => line,
    }
}

fn run_case(dir: &Path) -> String {
    let args = std::fs::read_to_string(dir.join("args")).expect("args");
    let out = Command::new(env!("CARGO_BIN_EXE_bindery"))
        .current_dir(dir)
        .args(["policy", "test", "-c", "bindery.conf"])
        .args(args.split_whitespace())
        .arg("message.eml")
        .env("RUST_LOG", "info")
        .output()
        .expect("bindery runs");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    let here = dir.display().to_string();
    for line in err.lines() {
        text.push_str("stderr: ");
        text.push_str(&untimed(line).replace(&here, "."));
        text.push('\n');
    }
    text.push_str(&format!("exit: {}\n", out.status.code().unwrap_or(-1)));
    text
}

#[test]
fn momentum_scripts_do_what_they_say() {
    let bless = std::env::var_os("BINDERY_BLESS").is_some();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("the corpus folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty());
    let mut failed = Vec::new();
    for dir in &dirs {
        let got = run_case(dir);
        let path = dir.join("expect");
        if bless {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if got != want {
            failed.push(format!(
                "{}:\n--- expected\n{want}--- got\n{got}",
                dir.display()
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases differ (BINDERY_BLESS=1 to re-bless):\n{}",
        failed.len(),
        dirs.len(),
        failed.join("\n")
    );
}

/// One row of `sweep.tsv`.
struct Row {
    file: String,
    /// `module`: loaded as it is; `fragment`: statements, run inside a callout.
    kind: String,
    /// `runs`, `refused` (a subsystem bindery refuses, named) or `not-lua`.
    expect: String,
    callout: String,
    args: String,
    message: String,
    conf: Option<String>,
    /// Corpus scripts (or our helpers) loaded before it: what sets up its input.
    before: Vec<String>,
}

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/policy-corpus")
}

fn sweep_rows() -> Vec<Row> {
    let text = std::fs::read_to_string(corpus_root().join("sweep.tsv")).expect("sweep.tsv");
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        assert!(
            f.len() >= 8,
            "sweep.tsv:{}: 9 columns wanted: {line}",
            n + 1
        );
        let or = |s: &str, d: &str| {
            if s == "-" {
                d.to_string()
            } else {
                s.to_string()
            }
        };
        rows.push(Row {
            file: f[0].to_string(),
            kind: f[1].to_string(),
            expect: f[2].to_string(),
            callout: or(f[3], "validate_data_spool"),
            args: or(
                f[4],
                "--mail-from sender@example.com --rcpt rcpt@example.com",
            ),
            message: or(f[5], "plain.eml"),
            conf: (f[6] != "-").then(|| f[6].to_string()),
            before: if f[7] == "-" {
                Vec::new()
            } else {
                f[7].split(',').map(str::to_string).collect()
            },
        });
    }
    rows
}

/// The bindings and groups scripts of the corpus name.
const SWEEP_CONF: &str = r#"binding "b2" { }
binding_group "pool" {
  binding "p1" { }
}
"#;

/// A fragment of a reference page as a module: its statements in `callout`, with the
/// names the pages use for the callout's arguments.
fn wrap(fragment: &str, callout: &str, file: &str) -> String {
    let args = match callout {
        "validate_connect" => "ac, vctx",
        "validate_rcptto" => "msg, str, ac, vctx",
        _ => "msg, ac, vctx",
    };
    format!(
        "-- bindery's corpus harness: the statements of {file}, unchanged, in {callout}.\n\
         local mod = {{}}\n\
         function mod:{callout}({args})\n\
         local accept = ac\n\
         do\n{fragment}\nend\n\
         return msys.core.VALIDATE_CONT\n\
         end\n\
         msys.registerModule(\"fragment\", mod)\n"
    )
}

/// `args` split at spaces, a double-quoted part kept whole.
fn words(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in args.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

fn run_row(row: &Row, resolv: &str) -> String {
    let root = corpus_root().canonicalize().expect("the corpus");
    let dir = tempfile::tempdir().expect("a temporary folder");
    // Scripts are named by short relative paths (`corpus/...` through a link): Lua cuts a
    // long chunk name to its last 60 characters, which would make the output depend on
    // where the checkout is.
    std::os::unix::fs::symlink(&root, dir.path().join("corpus")).expect("a link");
    let file = root.join(&row.file);
    let source = match row.kind.as_str() {
        "module" => format!("corpus/{}", row.file),
        "fragment" => {
            let text = std::fs::read_to_string(&file).expect("the fragment");
            let p = dir.path().join("fragment.lua");
            std::fs::write(&p, wrap(&text, &row.callout, &row.file)).expect("write");
            "fragment.lua".to_string()
        }
        other => panic!("{}: kind {other:?} is module or fragment", row.file),
    };
    let mut conf = format!("Resolv_Conf = \"{resolv}\"\n{SWEEP_CONF}");
    for c in row.conf.iter().flat_map(|c| c.split(',')) {
        let text = std::fs::read_to_string(root.join("conf").join(c)).expect("the conf file");
        if let Some(stem) = c.strip_suffix(".sql") {
            // A database for the row's datasource, made from its SQL.
            let db = rusqlite::Connection::open(dir.path().join(format!("{stem}.sqlite")))
                .expect("a SQLite file");
            db.execute_batch(&text).expect("the SQL runs");
            continue;
        }
        conf.push_str(
            &text
                .replace("@CORPUS@", &root.display().to_string())
                .replace("@DIR@", &dir.path().display().to_string()),
        );
    }
    conf.push_str("scriptlet \"scriptlet\" {\n");
    for (i, b) in row.before.iter().enumerate() {
        conf.push_str(&format!(
            "  script \"before{i}\" {{ source = \"corpus/{b}\" }}\n"
        ));
    }
    conf.push_str(&format!("  script \"s\" {{ source = \"{source}\" }}\n}}\n"));
    std::fs::write(dir.path().join("bindery.conf"), conf).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_bindery"))
        .current_dir(dir.path())
        .args(["policy", "test", "-c", "bindery.conf"])
        .args(words(&row.args))
        // 2026-01-01T10:00:00Z: scripts that read the clock print the same every run.
        .args(["--time", "1767261600"])
        .env("TZ", "UTC")
        .arg(root.join("messages").join(&row.message))
        .env("RUST_LOG", "info")
        .output()
        .expect("bindery runs");
    let here = dir.path().display().to_string();
    let corpus = root.display().to_string();
    let clean = |s: &str| s.replace(&here, "@DIR@").replace(&corpus, "@CORPUS@");
    let mut text = clean(&String::from_utf8_lossy(&out.stdout));
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        text.push_str("stderr: ");
        text.push_str(&clean(untimed(line)));
        text.push('\n');
    }
    text.push_str(&format!("exit: {}\n", out.status.code().unwrap_or(-1)));
    text
}

/// What a row's outcome must show besides its golden file: a script that runs warns of
/// nothing and raises nothing; a refused one names what bindery does not implement; a
/// block that is not Lua does not compile.
fn kind_check(row: &Row, got: &str) -> Result<(), String> {
    let fail = |why: &str| Err(format!("{}: {why}:\n{got}", row.file));
    match row.expect.as_str() {
        "runs" => {
            if !got.contains("\nresult: ") {
                return fail("it did not load, or did not reach the end of DATA");
            }
            if got.contains(": warning:") {
                return fail("a warning");
            }
            if got.contains("script errors:") || got.contains(" ERROR ") {
                return fail("the script raised");
            }
            if got.contains("not implemented by bindery") {
                return fail("a refusal where the script should run");
            }
            Ok(())
        }
        // A callout whose subsystem comes with a later issue: it loads and runs, and says so.
        "later" if got.contains(": warning:") && got.contains("(issue 2") => {
            if got.contains("script errors:") {
                return fail("the script raised");
            }
            Ok(())
        }
        "later" => fail("no warning naming a later issue"),
        // The script's own fault as published (a placeholder path, a function it never
        // defines): the error names it, the session gets the documented reply.
        "raises" if got.contains("error") => Ok(()),
        "raises" => fail("it did not raise"),
        "refused" if got.contains("not implemented by bindery") => Ok(()),
        "refused" => fail("no subsystem named as not implemented"),
        "not-lua" if got.contains("error:") && !got.ends_with("exit: 0\n") => Ok(()),
        "not-lua" => fail("it compiled"),
        other => fail(&format!(
            "expect {other:?} is runs, later, raises, refused or not-lua"
        )),
    }
}

/// Every script of the sample policy repository and every code block of Momentum's Lua
/// reference pages (`sweep.tsv` says what each is), through `bindery policy test`, against
/// its golden file under `sweep/`. `BINDERY_BLESS=1` rewrites the golden files.
#[test]
fn every_corpus_file_loads_runs_or_is_refused_by_name() {
    let bless = std::env::var_os("BINDERY_BLESS").is_some();
    let rows = sweep_rows();
    let root = corpus_root();
    // No file of the corpus is left out of the sweep.
    let mut listed: Vec<&str> = rows.iter().map(|r| r.file.as_str()).collect();
    listed.sort();
    for dir in ["momentum_sample_policy", "support-docs"] {
        let mut stack = vec![root.join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("a corpus folder").flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "lua") {
                    let rel = p.strip_prefix(&root).unwrap().display().to_string();
                    assert!(
                        listed.binary_search(&rel.as_str()).is_ok(),
                        "{rel} is not in sweep.tsv"
                    );
                }
            }
        }
    }
    // msys.dnsLookup asks a dnsmasq on loopback, never the network: the reference page's
    // example looks up messagesystems.com.
    let dns = dnsmasq::Dnsmasq::start("address=/messagesystems.com/127.0.0.10\n")
        .expect("dnsmasq is installed (.ci/run installs dnsmasq-base)");
    let conf_dir = tempfile::tempdir().expect("a temporary folder");
    let resolv = conf_dir.path().join("resolv.conf");
    std::fs::write(&resolv, format!("nameserver 127.0.0.1:{}\n", dns.port)).expect("write");
    let resolv = resolv.display().to_string();
    let mut failed = Vec::new();
    for row in &rows {
        let got = run_row(row, &resolv);
        let golden = root.join("sweep").join(format!("{}.out", row.file));
        if let Err(e) = kind_check(row, &got) {
            failed.push(e);
        }
        if bless {
            std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
            std::fs::write(&golden, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            failed.push(format!("{}:\n--- expected\n{want}--- got\n{got}", row.file));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} rows fail (BINDERY_BLESS=1 re-blesses golden files):\n{}",
        failed.len(),
        rows.len(),
        failed.join("\n")
    );
}
