//! The `bindery` binary driven as an operator would: conformance cases through the shared
//! runner, exit codes, and the include search path override.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bindery() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bindery"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the shared `run-config.sh` over a folder of cases (skipped when `../shared` is not
/// beside the checkout; CI always has it).
fn conformance(cases: &Path) {
    let script = repo().join("../shared/conformance/run-config.sh");
    if !script.exists() {
        eprintln!("skipped: {} is not beside this checkout", script.display());
        return;
    }
    // From the repository root, as .ci/run runs them: a case names its files relative to it.
    let out = Command::new("bash")
        .arg(&script)
        .arg(cases)
        .current_dir(repo())
        .env("BINDERY", env!("CARGO_BIN_EXE_bindery"))
        .output()
        .expect("run-config.sh runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "conformance failures in {}:\n{text}",
        cases.display()
    );
    assert!(text.contains(" passed, 0 failed"), "{text}");
}

#[test]
fn our_conformance_cases() {
    conformance(&repo().join("tests/conformance"));
}

#[test]
fn shared_conformance_cases() {
    let shared = repo().join("../shared/conformance/config");
    if shared.exists() {
        conformance(&shared);
    } else {
        eprintln!("skipped: {} is not beside this checkout", shared.display());
    }
}

#[test]
fn check_exit_codes_and_locations() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.conf");
    std::fs::write(&good, "binding \"b\" { bind_address = 127.0.0.2 }\n").unwrap();
    let out = bindery()
        .args(["config", "check", "-c"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let bad = dir.path().join("bad.conf");
    std::fs::write(
        &bad,
        "binding \"b\" {\n  bind_adress = 127.0.0.2\n}\ndomain \"d\" { bind_address = 1.2.3.4 }\n",
    )
    .unwrap();
    let out = bindery()
        .args(["config", "check", "-c"])
        .arg(&bad)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains("bad.conf:2:3: error: unknown option `bind_adress`"),
        "{text}"
    );
    assert!(text.contains("did you mean `Bind_Address`?"), "{text}");
    assert!(
        text.contains("bad.conf:4:14: error: `Bind_Address` is not valid in domain scope"),
        "{text}"
    );
}

/// Issue 16, finding 12: `config check` refuses what `run` refuses (one validation), with
/// FILE:LINE:COL first, and `run` binds nothing before it passes: no "listening" line, the
/// ESMTP port not taken.
#[test]
fn check_and_run_refuse_the_same_and_run_binds_nothing_first() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spool = dir.path().join("spool");
    let cases = [
        (
            "tcp-console.conf",
            "Control_Listener {\n  Listen \"127.0.0.1:0\" { }\n}\n",
            ":5:3: error: Control_Listener Listen \"127.0.0.1:0\": a TCP console must require a login",
        ),
        (
            "tls.conf",
            "ESMTP_Listener {\n  TLS_Certificate = \"/nonexistent/cert.pem\"\n  TLS_Key = \"/nonexistent/key.pem\"\n}\n",
            ":5:3: error: cannot load the TLS certificate and key",
        ),
    ];
    for (name, text, place) in cases {
        let path = dir.path().join(name);
        let want = &format!("{}{place}", path.display());
        let head = format!(
            "Spoolbase = \"{}\"\nESMTP_Listener {{ Listen \"127.0.0.1:{port}\" {{ }} }}\n",
            spool.display()
        );
        std::fs::write(&path, head + "\n" + text).unwrap();
        let check = bindery()
            .args(["config", "check", "-c"])
            .arg(&path)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&check.stdout);
        assert_eq!(check.status.code(), Some(1), "{name}: {out}");
        assert!(out.starts_with(want), "{name}: {out}");
        let run = bindery().args(["run", "-c"]).arg(&path).output().unwrap();
        let err = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
        assert!(
            err.lines().any(|l| l.starts_with(want)),
            "{name}: the location comes first: {err}"
        );
        assert!(
            !err.contains("listening"),
            "{name}: nothing was bound: {err}"
        );
    }
}

#[test]
fn eval_get_and_unset_messages() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("e.conf");
    std::fs::write(
        &conf,
        "binding \"b\" { ehlo_hostname = \"relay.example\" }\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = bindery()
            .args(["config"])
            .args(&args[..1])
            .arg("-c")
            .arg(&conf)
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        run(&["eval", "binding", "b", "ehlo_hostname"]),
        "EHLO_Hostname = \"relay.example\"\n"
    );
    assert_eq!(
        run(&["eval", "ehlo_hostname"]),
        "EHLO_Hostname = \"__hostname__\"\n"
    );
    assert_eq!(
        run(&["get", "binding", "b", "EHLO_HOSTNAME"]),
        "\tEHLO_Hostname = \"relay.example\"\n"
    );
    assert_eq!(
        run(&["get", "max_outbound_connections"]),
        "Option 'Max_Outbound_Connections' is not set in scope ''.\n"
    );
    assert_eq!(
        run(&["get", "binding", "b", "max_outbound_connections"]),
        "Option 'Max_Outbound_Connections' is not set in scope 'Binding:b:'.\n"
    );
    let explain = run(&[
        "explain",
        "binding",
        "b",
        "domain",
        "example.com",
        "ehlo_hostname",
    ]);
    assert!(explain.contains("=>  3. binding"), "{explain}");
    assert!(explain.contains("e.conf:1:15"), "{explain}");
    // An unknown binding is an error, not a silent default.
    let out = bindery()
        .args(["config", "eval", "-c"])
        .arg(&conf)
        .args(["binding", "nope", "tls"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no binding `nope`"));
}

#[test]
fn search_path_env_overrides_node_folders() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("conf/mta1")).unwrap();
    std::fs::create_dir_all(root.join("elsewhere")).unwrap();
    std::fs::write(root.join("ecelerity.conf"), "include \"node-local.conf\"\n").unwrap();
    std::fs::write(
        root.join("conf/mta1/node-local.conf"),
        "bind_address = 127.0.0.2\n",
    )
    .unwrap();
    std::fs::write(
        root.join("elsewhere/node-local.conf"),
        "bind_address = 127.0.0.3\n",
    )
    .unwrap();
    let eval = |env: Option<&str>, node: &str| {
        let mut cmd = bindery();
        cmd.args(["config", "eval", "--node", node, "-c"])
            .arg(root.join("ecelerity.conf"))
            .arg("bind_address");
        cmd.env_remove("BINDERY_CONF_SEARCH_PATH");
        if let Some(v) = env {
            cmd.env("BINDERY_CONF_SEARCH_PATH", v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    assert_eq!(
        eval(None, "mta1"),
        (Some(0), "Bind_Address = \"127.0.0.2\"\n".into())
    );
    let (code, text) = eval(None, "mta2");
    assert_eq!(code, Some(1));
    assert!(
        text.contains("cannot find included file `node-local.conf`"),
        "{text}"
    );
    let elsewhere = root.join("elsewhere").display().to_string();
    assert_eq!(
        eval(Some(&elsewhere), "mta2"),
        (Some(0), "Bind_Address = \"127.0.0.3\"\n".into())
    );
}

#[test]
fn show_output_checks_clean() {
    let conf = repo().join("tests/conformance/host-scope/ecelerity.conf");
    let out = bindery()
        .args(["config", "show", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let shown = dir.path().join("shown.conf");
    std::fs::write(&shown, &out.stdout).unwrap();
    let again = bindery()
        .args(["config", "show", "-c"])
        .arg(&shown)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&again.stdout)
    );
}

#[test]
fn embedded_default_config_is_clean_and_says_what_the_readme_says() {
    let out = bindery().args(["config", "check"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bindery()
        .args(["config", "get", "spoolbase"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Spoolbase = \"./bindery-spool\""
    );
    let out = bindery()
        .args([
            "config",
            "eval",
            "esmtp_listener",
            "listen",
            "127.0.0.1:2525",
            "relay_hosts",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("127.0.0.0/8"), "{text}");
}

/// `policy test` on the shipped example: each message lands on the binding the seed's
/// pattern says, and the output names every phase.
#[test]
fn policy_test_runs_the_example() {
    let conf = repo().join("examples/policy/bindery.conf");
    let msgs = repo().join("examples/policy/messages");
    let run = |from: &str, rcpt: &str, msg: &str| {
        let out = bindery()
            .args(["policy", "test", "-c"])
            .arg(&conf)
            .args(["--mail-from", from, "--rcpt", rcpt])
            .arg(msgs.join(msg))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run("news@list.example.com", "a@example.net", "newsletter.eml");
    assert!(text.contains("binding_group: marketing\n"), "{text}");
    assert!(
        text.contains("binding: mkt1 (assigned)") || text.contains("binding: mkt2 (assigned)"),
        "{text}"
    );
    assert!(
        text.contains("rcptto <a@example.net>: continue (no script has this callout)"),
        "{text}"
    );
    let text = run("orders@shop.example.com", "b@example.net", "receipt.eml");
    assert!(text.contains("binding: transactional (assigned)"), "{text}");
    let text = run(
        "orders@shop.example.com",
        "b@partner.example.net",
        "receipt.eml",
    );
    assert!(text.contains("binding: partner (assigned)"), "{text}");
    let text = run("app@example.com", "b@example.net", "named.eml");
    assert!(text.contains("binding: partner (assigned)"), "{text}");
    let text = run("plain@example.com", "b@example.net", "newsletter.eml");
    assert!(
        text.contains("binding_group: default\nbinding: general (assigned)\nresult: accepted"),
        "{text}"
    );
}

/// A script's syntax error fails `config check` with the script's file:line:col and a caret;
/// a refusal at RCPT shows in `policy test` with its code and a failing exit status.
#[test]
fn policy_errors_and_refusals_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("b.conf");
    std::fs::write(
        &conf,
        "scriptlet \"scriptlet\" { script \"p\" { source = \"p\" } }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("p.lua"),
        "local m = {}\nfunction m:validate_rcptto(msg, rcpt)\n  if rcpt == 'no@x.test' msg:code(550, 'no such user') end\nend\nmsys.registerModule('p', m)\n",
    )
    .unwrap();
    let out = bindery()
        .args(["config", "check", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let p = dir.path().join("p.lua");
    assert!(
        text.starts_with(&format!(
            "{}:3:26: error: 'then' expected near 'msg'\n",
            p.display()
        )),
        "{text}"
    );
    assert!(text.contains("     3 |   if rcpt == 'no@x.test' msg:code(550, 'no such user') end\n       |                          ^\n"), "{text}");

    std::fs::write(
        dir.path().join("p.lua"),
        "local m = {}\nfunction m:validate_rcptto(msg, rcpt)\n  if rcpt == 'no@x.test' then msg:code(550, 'no such user') end\nend\nmsys.registerModule('p', m)\n",
    )
    .unwrap();
    let eml = dir.path().join("m.eml");
    std::fs::write(&eml, "Subject: x\n\nbody\n").unwrap();
    let policy_test = |rcpts: &[&str]| {
        let mut cmd = bindery();
        cmd.args(["policy", "test", "-c"]).arg(&conf);
        for r in rcpts {
            cmd.args(["--rcpt", r]);
        }
        cmd.arg(&eml).output().unwrap()
    };
    let out = policy_test(&["no@x.test", "yes@x.test"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "rcptto <no@x.test>: 550 5.7.1 no such user\nrcptto <yes@x.test>: continue\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("binding: default (no assignment: default)"),
        "{text}"
    );
    assert!(out.status.success());
    let out = policy_test(&["no@x.test"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("result: refused, no recipient was accepted")
    );
}

/// `config check --migrate-report` on a Momentum-shaped file: one table of every option and
/// module with its outcome and place, golden in `tests/migrate-report/*.report`
/// (`BINDERY_BLESS=1` re-records).
#[test]
fn migrate_report_lists_every_option_and_module() {
    let dir = repo().join("tests/migrate-report");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/migrate-report")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    for conf in cases {
        let rel = conf.strip_prefix(repo()).expect("under the repo");
        let out = bindery()
            .current_dir(repo())
            .args(["config", "check", "--migrate-report", "-c"])
            .arg(rel)
            .output()
            .expect("bindery runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let golden = conf.with_extension("report");
        if std::env::var_os("BINDERY_BLESS").is_some() {
            std::fs::write(&golden, &text).expect("write golden");
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        assert_eq!(text, want, "{} (BINDERY_BLESS=1 re-records)", rel.display());
    }
}

/// The embedded default configuration puts the console socket in the spool folder, and the
/// listeners are bound before the spool opens (so a drop from root comes first). In a fresh
/// checkout that folder is not there yet: `run` makes it before binding, and starts. (Before
/// that, `bindery run` failed there with "cannot listen on ./bindery-spool/bindery.sock".)
/// The same layout as the default, with port 0 for the ESMTP listener.
#[test]
fn run_makes_the_spool_folder_the_console_socket_lives_in() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("bindery-spool");
    let conf = dir.path().join("bindery.conf");
    std::fs::write(
        &conf,
        format!(
            "Spoolbase = \"{s}\"\nESMTP_Listener {{ Listen \"127.0.0.1:0\" {{ }} }}\n\
             Control_Listener {{ Listen \"{s}/bindery.sock\" {{ }} }}\n",
            s = spool.display()
        ),
    )
    .unwrap();
    assert!(!spool.exists());
    let mut child = bindery()
        .args(["run", "-c"])
        .arg(&conf)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut started = false;
    for line in BufReader::new(stderr).lines().take(200) {
        let line = line.unwrap_or_default();
        seen.push(line.clone());
        if line.contains("listening (control)") {
            started = true;
            break;
        }
        if line.contains("cannot listen") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(started, "{}", seen.join("\n"));
    assert!(
        spool.join("bindery.sock").exists(),
        "the socket is in the folder made"
    );
    assert!(
        spool.join("queue").is_dir(),
        "the spool opened in the folder made"
    );
}

/// `config check` warns of a callout the scripts define that bindery never runs, on the
/// line that defines it, and still says the configuration is OK (issue 19).
#[test]
fn check_warns_of_callouts_bindery_does_not_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("log.lua"),
        "local mod = {}\nfunction mod:msg_gen_rcpt_to(msg, ac, vctx)\n  print(msg)\nend\nmsys.registerModule('log', mod)\n",
    )
    .unwrap();
    let conf = dir.path().join("bindery.conf");
    std::fs::write(
        &conf,
        "scriptlet \"scriptlet\" { script \"log\" { source = \"log\" } }\n",
    )
    .unwrap();
    let out = bindery()
        .args(["config", "check", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("log.lua:2:1: warning: module 'log' defines `msg_gen_rcpt_to`"),
        "{text}"
    );
    assert!(text.contains("configuration OK"), "{text}");
}

/// `bounce_classifier_override` reading its rules from a `Datasource` (the module page's
/// `:datasource:NAME:QUERY` form) over SQLite: a domain rule and a global one apply, in that
/// order; a query returning the wrong number of columns is refused, naming the row.
#[test]
fn bounce_overrides_from_a_datasource() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("bounces.sqlite");
    let conn = rusqlite::Connection::open(&db).expect("sqlite");
    conn.execute_batch(
        "CREATE TABLE overrides (domain TEXT, bounce_code INTEGER, rule TEXT);
         INSERT INTO overrides VALUES ('one.test', 51, 'odd|words');
         INSERT INTO overrides VALUES ('', 22, 'odd words');
         CREATE TABLE broken (bounce_code INTEGER, rule TEXT);
         INSERT INTO broken VALUES (10, 'x');",
    )
    .expect("rows");
    drop(conn);
    let conf = |name: &str, query: &str| {
        let path = dir.path().join(format!("{name}.conf"));
        std::fs::write(
            &path,
            format!(
                "Datasource \"ds\" {{ uri = ( \"sqlite:{}\" ) }}\n\
                 bounce_classifier_override {{\n  user_smtp_classification_override = \
                 \":datasource:ds:{query}\"\n}}\n",
                db.display()
            ),
        )
        .expect("conf");
        path
    };
    let good = conf("good", "SELECT domain, bounce_code, rule FROM overrides");
    let classify = |domain: &str| {
        let out = bindery()
            .args(["bounce", "classify", "--explain", "--domain", domain, "-c"])
            .arg(&good)
            .arg("550 some odd words")
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let one = classify("one.test");
    assert!(one.starts_with("51 Spam Block"), "{one}");
    assert!(one.contains("rule datasource ds:1: odd.*words"), "{one}");
    let other = classify("other.test");
    assert!(other.starts_with("22 Mailbox Full"), "{other}");
    assert!(other.contains("rule datasource ds:2"), "{other}");
    let out = bindery()
        .args(["config", "check", "-c"])
        .arg(conf("broken", "SELECT bounce_code, rule FROM broken"))
        .output()
        .expect("runs");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(
            "datasource ds:1:1: the query must return domain, bounce_code, rule (got 2 columns)"
        ),
        "{text}"
    );
}
