//! `msys.config("set"|"unset")`: in `init`, in callouts with and without a daemon host, and
//! refused changes.

use std::sync::{Arc, Mutex};

use bindery_config::Snapshot;
use bindery_config::change::{self, Action};
use bindery_config::query;
use bindery_policy::{Assigned, ConfigHost, Conn, HostChange, Message, Policy, Verdict};

const CONFIG: &str = r#"
binding_group "g" {
  binding "b1" { bind_address = "127.0.0.2" }
}
domain "d.example" { max_outbound_connections = 5 }
"#;

/// A configuration with one script, read from a temporary folder.
fn policy_with(script: &str, host: Option<Arc<dyn ConfigHost>>) -> (tempfile::TempDir, Policy) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.lua"), script).unwrap();
    std::fs::write(
        dir.path().join("bindery.conf"),
        format!("{CONFIG}\nscriptlet \"scriptlet\" {{ script \"t\" {{ source = \"t\" }} }}\n"),
    )
    .unwrap();
    let snap = files(&dir);
    let p = match host {
        Some(h) => Policy::load_hosted(
            snap,
            bindery_policy::Hosts {
                config: Some(h),
                ..Default::default()
            },
        ),
        None => Policy::load(snap),
    }
    .unwrap_or_else(|e| panic!("{e}"));
    (dir, p)
}

/// The configuration the folder's files give (what a start or a reload reads).
fn files(dir: &tempfile::TempDir) -> Arc<Snapshot> {
    let opts = bindery_config::LoadOptions {
        node: "n".into(),
        search_path: Some(String::new()),
    };
    let main = dir.path().join("bindery.conf");
    let (tree, diags) = bindery_config::load(&bindery_config::FsSource, &main, &opts).unwrap();
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
    Arc::new(Snapshot::compile(tree, 1))
}

fn eval(snap: &Snapshot, words: &str) -> Option<String> {
    let w: Vec<String> = words.split_whitespace().map(String::from).collect();
    let q = query::parse(&w).expect("query");
    query::evaluate(snap, &q)
        .expect("eval")
        .value
        .map(|v| v.plain())
}

fn message() -> Message {
    Message {
        sender: "a@s.test".into(),
        recipients: vec!["b@r.test".into()],
        body: b"Subject: x\r\n\r\nhi\r\n".to_vec(),
        ..Message::default()
    }
}

fn conn() -> Conn {
    Conn::new("192.0.2.1".parse().unwrap(), "esmtp", &[])
}

/// The results a script left in the message context, as `key=value` lines in order.
fn results(m: &Message) -> Vec<String> {
    let mut r: Vec<(usize, String)> = m
        .context
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("r")?.parse().ok()?, v.clone())))
        .collect();
    r.sort();
    r.into_iter().map(|(_, v)| v).collect()
}

#[test]
fn init_sets_the_default_binding_and_the_generation_has_it() {
    let (_d, p) = policy_with(
        r#"
local mod = {}
function mod:init()
  local v, t = msys.config("set", "binding", "default", "ehlo_hostname", "init.example")
  assert(v == "init.example", tostring(v))
  assert(t == 'EHLO_Hostname = "init.example"', t)
  -- A refused change in init returns nil and the reason; init goes on.
  local bad, why = msys.config("set", "binding", "default", "ehlo_hostnam", "x")
  assert(bad == nil and string.find(why, "did you mean", 1, true), why)
  return true
end
msys.registerModule("t", mod)
"#,
        None,
    );
    assert_eq!(
        eval(p.snapshot(), "binding default ehlo_hostname").as_deref(),
        Some("init.example")
    );
    assert_eq!(
        p.snapshot().generation,
        1,
        "init's change is this generation's"
    );
    // The next generation runs init again: the change stays, nothing accumulates.
    let next = Policy::continuing(Arc::clone(p.snapshot()), &p).unwrap();
    assert_eq!(
        eval(next.snapshot(), "binding default ehlo_hostname").as_deref(),
        Some("init.example")
    );
}

const CALLOUT: &str = r#"
local mod = {}
local function say(msg, i, a, b)
  msg:context_set(msys.core.ECMESS_CTX_MESS, "r" .. i, tostring(a) .. "|" .. tostring(b))
end
function mod:validate_set_binding(msg)
  local plan = msg:header("X-Plan")[1]
  if plan == "create" then
    say(msg, 1, msys.config("set", "binding", "new1", "bind_address", "127.0.0.7"))
    say(msg, 2, msg:binding("new1"))
    say(msg, 3, msys.config("eval", "binding", "new1", "bind_address"))
  elseif plan == "bad" then
    say(msg, 1, msys.config("set", "binding", "b1", "max_outbound_connections", "lots"))
    say(msg, 2, msys.config("set", "binding", "b1", "relay_hosts", "10.0.0.1"))
    say(msg, 3, msys.config("set", "binding", "b1", "max_outbound_conections", "3"))
    say(msg, 4, msys.config("unset", "domain", "nowhere.example", "max_outbound_connections"))
    say(msg, 5, msys.config("frob", "binding", "b1"))
  elseif plan == "unset" then
    say(msg, 1, msys.config("unset", "domain", "d.example", "max_outbound_connections"))
    say(msg, 2, msys.config("eval", "domain", "d.example", "max_outbound_connections"))
  end
  return msys.core.VALIDATE_CONT
end
msys.registerModule("t", mod)
"#;

fn run(p: &Policy, plan: &str) -> (Verdict, Vec<String>) {
    let mut m = message();
    m.body = format!("X-Plan: {plan}\r\n\r\nhi\r\n").into_bytes();
    let v = p.message(&mut conn(), &mut m);
    (v, results(&m))
}

#[test]
fn a_callout_creates_a_binding_and_assigns_it_at_once() {
    let (_d, p) = policy_with(CALLOUT, None);
    let (v, r) = run(&p, "create");
    assert_eq!(
        r,
        [
            "127.0.0.7|Bind_Address = \"127.0.0.7\"",
            "new1|nil",
            "127.0.0.7|Bind_Address = \"127.0.0.7\""
        ]
    );
    assert_eq!(
        v,
        Verdict::Accept {
            binding: Some(Assigned {
                group: "default".into(),
                binding: "new1".into()
            })
        }
    );
}

#[test]
fn refused_changes_return_nil_and_the_reason() {
    let (_d, p) = policy_with(CALLOUT, None);
    let (v, r) = run(&p, "bad");
    assert_eq!(v, Verdict::Accept { binding: None }, "{r:?}");
    assert!(
        r[0].starts_with("nil|<console>:2:28: error: invalid value"),
        "{r:?}"
    );
    assert!(r[1].contains("not valid in binding scope"), "{r:?}");
    assert!(
        r[2].contains("did you mean `Max_Outbound_Connections`"),
        "{r:?}"
    );
    assert_eq!(r[3], "nil|scope 'Domain:nowhere.example:' is not defined");
    // An unknown action is a script error: set_binding keeps going without a binding.
    assert_eq!(r.len(), 4);
    assert_eq!(p.errors(), 1);
}

#[test]
fn unset_returns_the_value_that_now_applies() {
    let (_d, p) = policy_with(CALLOUT, None);
    let (_, r) = run(&p, "unset");
    assert_eq!(
        r,
        [
            "32|\"Max_Outbound_Connections\" has been unset. Effective value is now:\n\tMax_Outbound_Connections = 32",
            "32|Max_Outbound_Connections = 32"
        ]
    );
}

/// A host that applies changes to its own configuration, as the daemon does, and counts them.
struct Host {
    snap: Mutex<Arc<Snapshot>>,
    calls: Mutex<Vec<String>>,
}

impl Host {
    fn new() -> Arc<Host> {
        let base = bindery_config::snapshot_from_str("h.conf", CONFIG).unwrap();
        Arc::new(Host {
            snap: Mutex::new(Arc::new(base)),
            calls: Mutex::default(),
        })
    }
}

impl ConfigHost for Host {
    fn change(&self, action: Action, words: &[String]) -> Result<HostChange, String> {
        let mut snap = self.snap.lock().unwrap();
        let c = change::apply(&snap, action, words)?;
        let next = Arc::new(Snapshot::compile(c.tree, snap.generation + 1));
        *snap = Arc::clone(&next);
        self.calls.lock().unwrap().push(words.join(" "));
        Ok(HostChange {
            message: c.message,
            value: c.value,
            snapshot: next,
        })
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        Some(self.snap.lock().unwrap().clone())
    }
}

#[test]
fn with_a_daemon_callouts_change_it_and_init_does_not() {
    let host = Host::new();
    let script = format!(
        "{}\n{}",
        r#"local m2 = {}
function m2:init()
  msys.config("set", "binding", "default", "ehlo_hostname", "init.example")
  return true
end
msys.registerModule("i", m2)"#,
        CALLOUT
    );
    let (_d, p) = policy_with(&script, Some(host.clone() as Arc<dyn ConfigHost>));
    assert!(
        host.calls.lock().unwrap().is_empty(),
        "init changes stay in the policy"
    );
    let (v, r) = run(&p, "create");
    assert_eq!(r[1], "new1|nil");
    assert!(matches!(v, Verdict::Accept { binding: Some(ref a) } if a.binding == "new1"));
    assert_eq!(
        *host.calls.lock().unwrap(),
        ["binding new1 bind_address 127.0.0.7"]
    );
    let snap = host.snap.lock().unwrap().clone();
    assert_eq!(snap.generation, 2);
    assert!(snap.binding_id("new1").is_some());
}

#[test]
fn a_state_older_than_the_binding_finds_it_in_the_configuration_in_force() {
    let host = Host::new();
    let script = r#"
local m = {}
function m:validate_set_binding(msg)
  msg:context_set(msys.core.ECMESS_CTX_MESS, "r1", tostring(msg:binding("late")))
end
msys.registerModule("late", m)
"#;
    let (_d, p) = policy_with(script, Some(host.clone() as Arc<dyn ConfigHost>));
    let (v, r) = run(&p, "none");
    assert_eq!(
        (v, r),
        (Verdict::Accept { binding: None }, vec!["nil".to_string()])
    );
    // Someone else (the console, another thread's script) creates the binding.
    host.change(
        Action::Set,
        &[
            "binding".into(),
            "late".into(),
            "bind_address".into(),
            "127.0.0.8".into(),
        ],
    )
    .unwrap();
    let (v, r) = run(&p, "none");
    assert_eq!(r, ["late"]);
    assert!(matches!(v, Verdict::Accept { binding: Some(ref a) } if a.binding == "late"));
}

#[test]
fn every_callout_and_unset_in_init_can_change_the_configuration() {
    let host = Host::new();
    let script = r#"
local m = {}
function m:init()
  local v, t = msys.config("unset", "domain", "d.example", "max_outbound_connections")
  assert(v == "32", tostring(v) .. " " .. t)
  return true
end
function m:validate_connect(accept, vctx)
  msys.config("set", "domain", "connect.example", "max_outbound_connections", "2")
end
function m:validate_ehlo(name, accept, vctx)
  msys.config("set", "domain", "ehlo.example", "max_outbound_connections", "3")
end
function m:validate_mailfrom(from, accept, vctx)
  msys.config("set", "domain", "mailfrom.example", "max_outbound_connections", "4")
end
function m:validate_rcptto(msg, rcpt, accept, vctx)
  msys.config("set", "domain", "rcptto.example", "max_outbound_connections", "5")
end
function m:validate_data(msg, accept, vctx)
  msys.config("set", "domain", "data.example", "max_outbound_connections", "6")
end
function m:validate_data_spool(msg, accept, vctx)
  msys.config("set", "domain", "spool.example", "max_outbound_connections", "7")
end
msys.registerModule("all", m)
"#;
    let (_d, p) = policy_with(script, Some(host.clone() as Arc<dyn ConfigHost>));
    assert_eq!(
        eval(p.snapshot(), "domain d.example max_outbound_connections").as_deref(),
        Some("32"),
        "init's unset is the generation's"
    );
    let mut c = conn();
    let mut m = message();
    assert_eq!(p.connect(&mut c), None);
    assert!(p.ehlo(&mut c, "client.example").is_none());
    assert!(p.mailfrom(&mut c, &mut m).is_none());
    assert!(p.rcptto(&mut c, &mut m, "b@r.test").is_none());
    assert!(matches!(p.message(&mut c, &mut m), Verdict::Accept { .. }));
    assert_eq!(p.errors(), 0);
    let calls = host.calls.lock().unwrap().clone();
    let domains: Vec<&str> = calls
        .iter()
        .map(|c| c.split(' ').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        domains,
        [
            "connect.example",
            "ehlo.example",
            "mailfrom.example",
            "rcptto.example",
            "data.example",
            "spool.example"
        ]
    );
    let snap = host.snap.lock().unwrap().clone();
    assert_eq!(
        eval(&snap, "domain spool.example max_outbound_connections").as_deref(),
        Some("7")
    );
}

#[test]
fn init_never_undoes_a_later_change_but_a_reload_makes_its_changes_again() {
    let (dir, p) = policy_with(
        r#"
local m = {}
function m:init()
  msys.config("set", "binding", "default", "ehlo_hostname", "init.example")
  local v, t = msys.config("unset", "domain", "d.example", "max_outbound_connections")
  assert(v == "32", tostring(v) .. " " .. t)
  return true
end
msys.registerModule("i", m)
"#,
        None,
    );
    // The operator changes what init set: the next generation keeps the operator's value.
    let w: Vec<String> = "binding default ehlo_hostname operator.example"
        .split(' ')
        .map(String::from)
        .collect();
    let c = change::apply(p.snapshot(), Action::Set, &w).unwrap();
    let changed = Arc::new(Snapshot::compile(c.tree, 2));
    let next = Policy::continuing(changed, &p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        eval(next.snapshot(), "binding default ehlo_hostname").as_deref(),
        Some("operator.example")
    );
    // Another thread's state replays init (the unset finds nothing to unset) and works.
    let n2 = next.clone();
    let ok = std::thread::spawn(move || {
        let mut m = message();
        matches!(n2.message(&mut conn(), &mut m), Verdict::Accept { .. }) && n2.errors() == 0
    });
    assert!(ok.join().unwrap());
    // Reading the files again makes init's changes again.
    let reloaded = Policy::reloaded(files(&dir), &next).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        eval(reloaded.snapshot(), "binding default ehlo_hostname").as_deref(),
        Some("init.example")
    );
}
