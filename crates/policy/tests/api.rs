//! The Lua API, call by call, against real scripts loaded from a real configuration.

use std::sync::Arc;

use bindery_config::{LoadOptions, Snapshot};
use bindery_policy::{Callout, Code, Conn, Message, Policy, Verdict};

const BINDINGS: &str = r#"
binding_group "g" {
  binding "b1" { }
  binding "b2" { suspend_delivery = true }
}
binding "solo" { }
binding_group "down" {
  binding "d1" { suspend_delivery = true }
  binding "d2" { suspend_delivery = true }
}
binding_group "empty" { }
"#;

struct Setup {
    _dir: tempfile::TempDir,
    snapshot: Arc<Snapshot>,
}

/// A config directory with `bindery.conf` (BINDINGS, `extra`, and one script stanza per
/// file) and the given script files.
/// `script` loaded as `t.lua` with `dns` as its resolver seam.
fn load_with_dns(script: &str, dns: Arc<bindery_policy::dns::MemDns>) -> (Setup, Policy) {
    let s = setup(&[("t.lua", script)], &["t"], "");
    let hosts = bindery_policy::Hosts {
        dns: Some(dns),
        ..Default::default()
    };
    let p = Policy::load_hosted(s.snapshot.clone(), hosts).unwrap_or_else(|e| panic!("{e}"));
    (s, p)
}

fn setup(files: &[(&str, &str)], sources: &[&str], extra: &str) -> Setup {
    setup_in(files, sources, extra, "")
}

/// [`setup`], with `in_scriptlet` written inside the scriptlet stanza (its limits).
fn setup_in(files: &[(&str, &str)], sources: &[&str], extra: &str, in_scriptlet: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let mut conf = format!("{BINDINGS}\n{extra}\nscriptlet \"scriptlet\" {{\n{in_scriptlet}\n");
    for (i, s) in sources.iter().enumerate() {
        conf.push_str(&format!("  script \"s{i}\" {{ source = \"{s}\" }}\n"));
    }
    conf.push_str("}\n");
    let main = dir.path().join("bindery.conf");
    std::fs::write(&main, conf).unwrap();
    let opts = LoadOptions {
        node: "n".into(),
        search_path: Some("conf/global".into()),
    };
    let (tree, diags) = bindery_config::load(&bindery_config::FsSource, &main, &opts).unwrap();
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    Setup {
        _dir: dir,
        snapshot: Arc::new(Snapshot::compile(tree, 1)),
    }
}

fn load(script: &str) -> (Setup, Policy) {
    let s = setup(&[("t.lua", script)], &["t"], "");
    let p = Policy::load(s.snapshot.clone()).unwrap_or_else(|e| panic!("{e}"));
    (s, p)
}

fn conn() -> Conn {
    Conn::new(
        "192.0.2.9".parse().unwrap(),
        "esmtp",
        &[("tier".into(), "gold".into())],
    )
}

fn message(body: &str) -> Message {
    Message {
        sender: "alice@sender.test".into(),
        recipients: vec!["bob@rcpt.test".into()],
        body: body.replace('\n', "\r\n").into_bytes(),
        ..Message::default()
    }
}

fn binding_of(_: &Setup, v: &Verdict) -> Option<String> {
    match v {
        Verdict::Accept { binding } => binding.as_ref().map(|a| a.binding.clone()),
        Verdict::Refuse(c) => panic!("refused: {c:?}"),
        Verdict::Split(s) => panic!("split: {s:?}"),
        Verdict::Discard(c) => panic!("discarded: {c:?}"),
    }
}

/// The seed's pattern: a general binding first, specific ones by header, sender domain
/// and recipient domain.
const SEED: &str = r#"
require("msys.core")
require("msys.extended.message")
local mod = {}
function mod:validate_set_binding(msg)
  local binding = "solo"
  local hdr = msg:header("X-Binding")
  if #hdr > 0 then
    binding = hdr[1]
  elseif string.find(msg:mailfrom(), "@news%.test$") then
    binding = "b1"
  elseif string.find(msg:rcptto(), "@group%.test$") then
    msg:binding_group("g")
    return msys.core.VALIDATE_DONE
  end
  msg:binding(binding)
  return msys.core.VALIDATE_CONT
end
msys.registerModule("seed", mod)
"#;

#[test]
fn seed_pattern_assigns_by_header_sender_and_recipient() {
    let (s, p) = load(SEED);
    assert!(p.has(Callout::SetBinding));
    assert!(!p.has(Callout::RcptTo));
    let mut c = conn();
    let mut m = message("X-Binding: b2\nSubject: x\n\nbody\n");
    assert_eq!(
        binding_of(&s, &p.message(&mut c, &mut m)).as_deref(),
        Some("b2")
    );
    let mut m = message("Subject: x\n\nbody\n");
    m.sender = "list@news.test".into();
    assert_eq!(
        binding_of(&s, &p.message(&mut c, &mut m)).as_deref(),
        Some("b1")
    );
    // The group's b2 is suspended: the choice is always b1.
    for _ in 0..20 {
        let mut m = message("Subject: x\n\n");
        m.recipients = vec!["x@group.test".into()];
        assert_eq!(
            binding_of(&s, &p.message(&mut c, &mut m)).as_deref(),
            Some("b1")
        );
    }
    let mut m = message("Subject: x\n\n");
    assert_eq!(
        binding_of(&s, &p.message(&mut c, &mut m)).as_deref(),
        Some("solo")
    );
    // An unknown name: msg:binding returns nil and the assignment is unchanged (none yet).
    let mut m = message("X-Binding: nosuch\n\n");
    assert_eq!(binding_of(&s, &p.message(&mut c, &mut m)), None);
}

#[test]
fn binding_calls_report_and_refuse_unknown_names() {
    let (s, p) = load(
        r#"
local mod = {}
function mod:validate_set_binding(msg)
  local r = {}
  r[#r+1] = tostring(msg:binding())
  r[#r+1] = tostring(msg:binding("solo"))
  r[#r+1] = tostring(msg:binding("nosuch"))
  r[#r+1] = tostring(msg:binding())
  r[#r+1] = tostring(msg:binding_group())
  r[#r+1] = tostring(msg:binding_group("nosuch"))
  r[#r+1] = tostring(msg:binding())
  r[#r+1] = tostring(msg:binding_group("down"))
  r[#r+1] = tostring(msg:binding_group())
  r[#r+1] = tostring(msys.core.config_get_binding_id_from_name("solo") >= 0)
  r[#r+1] = tostring(msys.core.config_get_binding_id_from_name("nosuch"))
  r[#r+1] = tostring(msys.core.config_get_binding_group_size("g"))
  r[#r+1] = tostring(msys.core.config_get_binding_group_size("empty"))
  r[#r+1] = tostring(msys.core.config_get_binding_group_size("nosuch"))
  msg:context_set(msys.core.ECMESS_CTX_MESS, "trace", table.concat(r, ","))
end
msys.registerModule("calls", mod)
"#,
    );
    let mut c = conn();
    let mut m = message("\n");
    let v = p.message(&mut c, &mut m);
    // A group whose bindings are all suspended still yields one of them.
    let b = binding_of(&s, &v).unwrap();
    assert!(b == "d1" || b == "d2", "{b}");
    assert_eq!(
        m.context["trace"],
        "nil,solo,nil,solo,default,nil,solo,down,down,true,-1,2,0,-1"
    );
}

#[test]
fn callouts_see_the_connection_and_share_context() {
    let (_s, p) = load(
        r#"
local mod = {}
function mod:validate_connect(accept, vctx)
  vctx:set(msys.core.VCTX_CONN, "seen", accept:peer() .. "/" .. accept:listener())
  return msys.core.VALIDATE_CONT
end
function mod:validate_ehlo(name, accept, vctx)
  if name == "bad.example" then vctx:set_code(550, "go away") end
  return msys.core.VALIDATE_CONT
end
function mod:validate_mailfrom(from, accept, vctx)
  vctx:set(msys.core.VCTX_MESS, "from", from)
  if from == "spam@x.test" then vctx:set_code(553, "5.7.1 sender refused") end
end
function mod:validate_rcptto(msg, rcpt, accept, vctx)
  if rcpt == "later@rcpt.test" then msg:code(451, "4.2.1 try later") end
  msg:context_set(msys.core.ECMESS_CTX_MESS, "last", msg:rcptto())
end
function mod:validate_data(msg, accept, vctx)
  local t = msg:context_get(msys.core.ECMESS_CTX_CONN, "tier")
  if #msg:header("X-Spam") > 0 then msg:code(554, "spam") end
  msg:context_set(msys.core.ECMESS_CTX_MESS, "data",
    table.concat({t, msg:context_get(msys.core.ECMESS_CTX_MESS, "from"),
      vctx:get(msys.core.VCTX_CONN, "seen"), vctx:get(msys.core.VCTX_CONN, "ehlo"),
      accept:ehlo()}, " "))
end
msys.registerModule("phases", mod)
"#,
    );
    for c in Callout::ALL {
        assert_eq!(
            p.has(c),
            matches!(
                c,
                Callout::Connect
                    | Callout::Ehlo
                    | Callout::MailFrom
                    | Callout::RcptTo
                    | Callout::Data
            ),
            "{c:?}"
        );
    }
    let mut c = conn();
    assert_eq!(p.connect(&mut c), None);
    assert_eq!(c.context["seen"], "192.0.2.9/esmtp");
    assert_eq!(
        p.ehlo(&mut c, "bad.example"),
        Some(Code {
            code: 550,
            text: "5.7.1 go away".into()
        })
    );
    assert_eq!(p.ehlo(&mut c, "client.example"), None);
    let mut m = Message {
        sender: "spam@x.test".into(),
        ..Message::default()
    };
    assert_eq!(
        p.mailfrom(&mut c, &mut m),
        Some(Code {
            code: 553,
            text: "5.7.1 sender refused".into()
        })
    );
    let mut m = Message {
        sender: "ok@x.test".into(),
        ..Message::default()
    };
    assert_eq!(p.mailfrom(&mut c, &mut m), None);
    assert_eq!(p.rcptto(&mut c, &mut m, "a@rcpt.test"), None);
    assert_eq!(m.context["last"], "a@rcpt.test");
    assert_eq!(
        p.rcptto(&mut c, &mut m, "later@rcpt.test"),
        Some(Code {
            code: 451,
            text: "4.2.1 try later".into()
        })
    );
    m.recipients.push("a@rcpt.test".into());
    m.body = b"Subject: hi\r\n\r\nbody\r\n".to_vec();
    assert_eq!(p.message(&mut c, &mut m), Verdict::Accept { binding: None });
    assert_eq!(
        m.context["data"],
        "gold ok@x.test 192.0.2.9/esmtp client.example client.example"
    );
    m.body = b"X-Spam: yes\r\n\r\nbody\r\n".to_vec();
    assert_eq!(
        p.message(&mut c, &mut m),
        Verdict::Refuse(Code {
            code: 554,
            text: "5.7.1 spam".into()
        })
    );
}

#[test]
fn validate_done_stops_later_modules_and_order_is_registration_order() {
    let s = setup(
        &[
            (
                "a.lua",
                "local m = {} function m:validate_set_binding(msg) msg:binding('solo') return msys.core.VALIDATE_DONE end msys.registerModule('a', m)",
            ),
            (
                "b.lua",
                "local m = {} function m:validate_set_binding(msg) msg:binding('b1') end msys.registerModule('b', m)",
            ),
            (
                "c.lua",
                "local m = {} function m:validate_set_binding(msg) msg:binding('b1') end msys.registerModule('c', m)",
            ),
        ],
        &["c", "a", "b"],
        "",
    );
    let p = Policy::load(s.snapshot.clone()).unwrap();
    let v = p.message(&mut conn(), &mut message("\n"));
    // c runs first (b1), then a (solo) says DONE, so b never runs.
    assert_eq!(binding_of(&s, &v).as_deref(), Some("solo"));
}

#[test]
fn a_raising_script_keeps_the_binding_in_set_binding_and_refuses_elsewhere() {
    let (s, p) = load(
        r#"
local mod = {}
function mod:validate_rcptto(msg, rcpt)
  error("boom in rcpt")
end
function mod:validate_set_binding(msg)
  msg:binding("solo")
  local x = nil
  return x.field
end
msys.registerModule("raise", mod)
"#,
    );
    let mut c = conn();
    let mut m = message("\n");
    let code = p.rcptto(&mut c, &mut m, "a@b.test").unwrap();
    assert_eq!(code.code, 451);
    let v = p.message(&mut c, &mut m);
    // The binding set before the error stands; the message is accepted.
    assert_eq!(binding_of(&s, &v).as_deref(), Some("solo"));
    assert_eq!(
        p.stats().errors[Callout::RcptTo as usize].load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(p.errors(), 2);
    // The next configuration generation's policy counts on from these counters.
    let next = Policy::continuing(s.snapshot.clone(), &p).unwrap_or_else(|e| panic!("{e}"));
    assert!(next.rcptto(&mut c, &mut m, "a@b.test").is_some());
    assert_eq!(next.errors(), 3);
    assert_eq!(p.errors(), 3, "one set of counters");
    assert_eq!(
        m.recipients,
        ["bob@rcpt.test"],
        "the message survives the error"
    );
}

#[test]
fn a_script_that_loops_forever_is_stopped() {
    let s = setup(
        &[(
            "t.lua",
            "local m = {}\nfunction m:validate_set_binding(msg)\n  msg:binding('solo')\n  while true do end\nend\nfunction m:validate_data(msg)\n  local t = {}\n  while true do t[#t % 10 + 1] = 1 end\nend\nmsys.registerModule('loop', m)\n",
        )],
        &["t"],
        "scriptlet \"scriptlet\" { instruction_limit = 100000 }",
    );
    let p = Policy::load(s.snapshot.clone()).unwrap();
    let mut c = conn();
    let mut m = message("\n");
    let started = std::time::Instant::now();
    let v = p.message(&mut c, &mut m);
    assert_eq!(
        v,
        Verdict::Refuse(Code {
            code: 451,
            text: "4.3.0 Error: policy failure, try again later".into()
        })
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(p.errors(), 1);
}

#[test]
fn the_time_limit_stops_a_loop_too() {
    let s = setup(
        &[(
            "t.lua",
            "local m = {}\nfunction m:validate_set_binding(msg)\n  msg:binding('solo')\n  while true do end\nend\nmsys.registerModule('loop', m)\n",
        )],
        &["t"],
        "scriptlet \"scriptlet\" { instruction_limit = 0 time_limit = 1 }",
    );
    let p = Policy::load(s.snapshot.clone()).unwrap();
    let started = std::time::Instant::now();
    let v = p.message(&mut conn(), &mut message("\n"));
    assert_eq!(binding_of(&s, &v).as_deref(), Some("solo"));
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_secs(1) && took < std::time::Duration::from_secs(5),
        "{took:?}"
    );
}

#[test]
fn scripts_cannot_touch_files_or_processes_unless_allowed() {
    let probe = r#"
local m = {}
function m:validate_set_binding(msg)
  local r = {type(io), type(os.execute), type(os.remove), type(os.getenv), type(dofile),
             type(loadfile), type(load), type(os.time), tostring(pcall(require, "io")),
             type(package.loadlib),
             tostring(loadstring(string.dump(function() end)) ~= nil)}
  msg:context_set(msys.core.ECMESS_CTX_MESS, "r", table.concat(r, ","))
end
msys.registerModule("probe", m)
"#;
    let (_s, p) = load(probe);
    let mut m = message("\n");
    p.message(&mut conn(), &mut m);
    assert_eq!(
        m.context["r"],
        "nil,nil,nil,nil,nil,nil,nil,function,false,nil,false"
    );
    let s = setup(
        &[("t.lua", probe)],
        &["t"],
        "scriptlet \"scriptlet\" { allow_unsafe_libraries = true }",
    );
    let p = Policy::load(s.snapshot.clone()).unwrap();
    let mut m = message("\n");
    p.message(&mut conn(), &mut m);
    assert_eq!(
        m.context["r"],
        "table,function,function,function,function,function,function,function,true,function,true"
    );
}

#[test]
fn msys_config_reads_the_configuration() {
    let (_s, p) = load(
        r#"
local m = {}
function m:validate_set_binding(msg)
  local v1, t1 = msys.config("eval", "binding", "b2", "suspend_delivery")
  local v2, t2 = msys.config("get", "binding", "b1", "suspend_delivery")
  local v3, t3 = msys.config("eval", "binding", "b1", "max_outbound_connections")
  local v4, t4 = msys.config("get", "bindng", "b1", "max_outbound_connections")
  msg:context_set(msys.core.ECMESS_CTX_MESS, "r",
    table.concat({tostring(v1), t1, tostring(v2), t2, tostring(v3), t3, tostring(v4), t4}, "|"))
end
msys.registerModule("cfg", m)
"#,
    );
    let mut m = message("\n");
    p.message(&mut conn(), &mut m);
    assert_eq!(
        m.context["r"],
        "true|Suspend_Delivery = true|nil|Option 'Suspend_Delivery' is not set in scope 'Binding:b1:'.|32|Max_Outbound_Connections = 32|nil|unknown scope `bindng`; did you mean `binding`?"
    );
}

#[test]
fn msg_code_is_refused_in_set_binding() {
    let (s, p) = load(
        "local m = {} function m:validate_set_binding(msg) msg:binding('b1') msg:code(550, 'no') end msys.registerModule('x', m)",
    );
    let v = p.message(&mut conn(), &mut message("\n"));
    assert_eq!(binding_of(&s, &v).as_deref(), Some("b1"));
    assert_eq!(p.errors(), 1);
}

fn load_err(files: &[(&str, &str)], sources: &[&str]) -> String {
    load_err_in(files, sources, "")
}

/// [`load_err`] with scriptlet options (`Time_Limit = 60`, say).
fn load_err_in(files: &[(&str, &str)], sources: &[&str], in_scriptlet: &str) -> String {
    let s = setup_in(files, sources, "", in_scriptlet);
    match Policy::load(s.snapshot.clone()) {
        Ok(_) => panic!("loaded"),
        Err(e) => {
            let text = bindery_policy::render(&e, &s.snapshot);
            // Paths are in a temporary folder: show them relative to it.
            let dir = s
                .snapshot
                .tree
                .sources
                .get(bindery_config::span::FileId(0))
                .path
                .parent()
                .unwrap()
                .display()
                .to_string();
            text.replace(&format!("{dir}/"), "")
        }
    }
}

#[test]
fn syntax_errors_point_at_the_script_line() {
    let text = load_err(
        &[(
            "t.lua",
            "local m = {}\nfunction m:validate_set_binding(msg)\n  if x == 1 msg:binding('a') end\nend\n",
        )],
        &["t"],
    );
    assert_eq!(
        text,
        "t.lua:3:13: error: 'then' expected near 'msg'\n     3 |   if x == 1 msg:binding('a') end\n       |             ^\n"
    );
}

#[test]
fn a_missing_source_says_where_it_looked_and_suggests() {
    let text = load_err(&[("assign.lua", "")], &["asign"]);
    assert!(text.starts_with("bindery.conf:"), "{text}");
    assert!(text.contains("error: no script `asign` found"), "{text}");
    assert!(text.contains("did you mean `assign`?"), "{text}");
}

#[test]
fn dotted_module_names_are_found_along_the_search_path() {
    let s = setup(
        &[(
            "conf/global/policy/assign.lua",
            "local m = {} function m:validate_set_binding(msg) msg:binding('b1') end msys.registerModule('a', m)",
        )],
        &["policy.assign"],
        "",
    );
    let p = Policy::load(s.snapshot.clone()).unwrap();
    assert!(
        p.scripts()[0]
            .path
            .ends_with("conf/global/policy/assign.lua")
    );
    let v = p.message(&mut conn(), &mut message("\n"));
    assert_eq!(binding_of(&s, &v).as_deref(), Some("b1"));
}

#[test]
fn init_must_return_true_and_runtime_errors_at_load_are_located() {
    let text = load_err(
        &[(
            "t.lua",
            "local m = {}\nfunction m:init() return false end\nmsys.registerModule('x', m)\n",
        )],
        &["t"],
    );
    // Issue 16, finding 14: located where `init` is defined.
    assert!(
        text.starts_with(
            "t.lua:2:1: error: module 'x' initialization failed: init() returned false instead of true"
        ),
        "{text}"
    );
    // Out of memory: located where the script was when memory ran out. The time limit is
    // raised so that a loaded machine runs out of memory before it runs out of time.
    let text = load_err_in(
        &[(
            "t.lua",
            "local t = {}\nfor i = 1, 1e9 do\n  t[i] = string.rep('x', 1000) .. i\nend\n",
        )],
        &["t"],
        "Time_Limit = 120",
    );
    assert!(
        text.starts_with("t.lua:2:") || text.starts_with("t.lua:3:"),
        "{text}"
    );
    assert!(text.contains("out of memory"), "{text}");
    let text = load_err(&[("t.lua", "local m = {}\n\nnosuch.call()\n")], &["t"]);
    assert!(
        // Lua 5.1's wording (Momentum's Lua).
        text.starts_with("t.lua:3:1: error: attempt to index global 'nosuch' (a nil value)"),
        "{text}"
    );
    let text = load_err(&[("t.lua", "require('socket')\n")], &["t"]);
    assert!(text.contains("module 'socket' not found"), "{text}");
}

#[test]
fn no_scripts_means_no_callouts() {
    let s = setup(&[], &[], "");
    let p = Policy::load(s.snapshot.clone()).unwrap();
    assert!(Callout::ALL.iter().all(|c| !p.has(*c)));
    assert_eq!(
        p.message(&mut conn(), &mut message("\n")),
        Verdict::Accept { binding: None }
    );
}

#[test]
fn states_are_per_thread_and_each_thread_gets_the_same_answers() {
    let (s, p) = load(SEED);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let p = p.clone();
            std::thread::spawn(move || {
                let mut m = message("X-Binding: b1\n\n");
                match p.message(&mut conn(), &mut m) {
                    Verdict::Accept { binding } => binding.map(|a| a.binding),
                    _ => None,
                }
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().as_deref(), Some("b1"));
        assert!(s.snapshot.binding_id("b1").is_some());
    }
}

/// Momentum's Lua is 5.1 with `!=` for "not equal" (its reference pages write
/// `while msgpart != nil do`): such a script loads and means `~=`, and 5.1's globals
/// (`unpack`, `setfenv`, `getfenv`) are there.
#[test]
fn momentums_dialect_loads() {
    let (s, p) = load(
        r#"
local mod = {}
function mod:validate_set_binding(msg)
  local hdr = msg:header("X-Binding")
  local first = unpack(hdr)
  if first != nil and first != "" then
    msg:binding(first)
  elseif type(setfenv) == "function" and type(getfenv) == "function" then
    msg:binding("b1") -- "!=" in a comment and "a != b" in a string stay as written
  end
  return msys.core.VALIDATE_CONT
end
msys.registerModule("dialect", mod)
"#,
    );
    let mut c = conn();
    let mut m = message("X-Binding: solo\n\n");
    assert_eq!(
        binding_of(&s, &p.message(&mut c, &mut m)).as_deref(),
        Some("solo")
    );
    let mut m = message("Subject: x\n\n");
    assert_eq!(
        binding_of(&s, &p.message(&mut c, &mut m)).as_deref(),
        Some("b1")
    );
}

/// `require` as Momentum's scripts use it: `msys.core` is `msys.core`, the `extended`
/// namespaces are there, `json` is `msys.json` once it exists, and a policy's own module
/// (`inbound.library`, written with Lua 5.1's `module()` and Momentum's `!=`) is found in the
/// configuration search path and loaded once.
#[test]
fn require_gives_msys_modules_and_the_policys_own_files() {
    let s = setup(
        &[
            (
                "conf/global/inbound/library.lua",
                "module(\"inbound.library\", package.seeall)\nloads = (loads or 0) + 1\nfunction pick(hdr)\n  if hdr != nil then return hdr end\n  return \"b1\"\nend\n",
            ),
            (
                "t.lua",
                r#"
local core = require("msys.core")
local vctx = require("msys.extended.vctx")
local lib = require("inbound.library")
local again = require("inbound.library")
assert(lib == again and lib.loads == 1, "loaded once")
assert(type(vctx) == "table")
local mod = {}
function mod:validate_set_binding(msg)
  msg:binding(lib.pick(msg:header("X-Binding")[1]))
  return core.VALIDATE_CONT
end
msys.registerModule("t", mod)
"#,
            ),
        ],
        &["t"],
        "",
    );
    let p = Policy::load(s.snapshot.clone()).unwrap_or_else(|e| panic!("{e}"));
    let v = p.message(&mut conn(), &mut message("X-Binding: solo\n\n"));
    assert_eq!(binding_of(&s, &v).as_deref(), Some("solo"));
    let v = p.message(&mut conn(), &mut message("Subject: x\n\n"));
    assert_eq!(binding_of(&s, &v).as_deref(), Some("b1"));
}

/// An error inside a required file is reported in that file, at its line; a module bindery
/// refuses is named with what Momentum does with it; one nobody has lists where it looked.
#[test]
fn require_errors_name_the_file_the_module_and_the_places() {
    let text = load_err(
        &[
            ("lib/bad.lua", "local x = 1\nif x then\n"),
            ("t.lua", "require('lib.bad')\n"),
        ],
        &["t"],
    );
    assert!(text.starts_with("lib/bad.lua:3:"), "{text}");
    assert!(text.contains("'end' expected"), "{text}");
    let text = load_err(
        &[
            ("lib/boom.lua", "local t = nil\nreturn t.x\n"),
            ("t.lua", "require('lib.boom')\n"),
        ],
        &["t"],
    );
    assert!(
        text.starts_with("lib/boom.lua:2:"),
        "runtime error in the module: {text}"
    );
    let text = load_err(&[("t.lua", "require('msys.cloudmark')\n")], &["t"]);
    assert!(
        text.contains(
            "module 'msys.cloudmark' is not implemented by bindery: Cloudmark's spam scanner"
        ),
        "{text}"
    );
    let text = load_err(&[("t.lua", "require('nosuch.mod')\n")], &["t"]);
    assert!(text.contains("module 'nosuch.mod' not found"), "{text}");
    assert!(text.contains("nosuch/mod.lua'"), "{text}");
}

/// A `source` given as a relative path is looked for along the search path too, as
/// includes are, not only beside the file that names it.
#[test]
fn a_source_path_is_found_along_the_search_path() {
    let s = setup(
        &[(
            "conf/global/policies/assign.lua",
            "local m = {} function m:validate_set_binding(msg) msg:binding('b1') end msys.registerModule('a', m)",
        )],
        &["policies/assign.lua"],
        "",
    );
    let p = Policy::load(s.snapshot.clone()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        p.scripts()[0]
            .path
            .ends_with("conf/global/policies/assign.lua")
    );
}

/// A callout Momentum has and bindery does not run is a warning at load, located where it is
/// defined, never silence; a misspelt one gets "did you mean"; helpers get nothing.
#[test]
fn callouts_bindery_does_not_run_are_warnings() {
    let (_s, p) = load(
        r#"
local mod = {}
function mod:validate_set_binding(msg) return 0 end
function mod:msg_gen_rcpt_to(msg, ac, vctx) end
function mod:validate_set_bindings(msg) end
function mod:helper() end
msys.registerModule("w", mod)
"#,
    );
    let w = p.warnings();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].contains("t.lua:4:1: warning: module 'w' defines `msg_gen_rcpt_to`"),
        "{}",
        w[0]
    );
    assert!(
        w[1].contains("did you mean `validate_set_binding`?"),
        "{}",
        w[1]
    );
    let (_s, p) = load(SEED);
    assert!(p.warnings().is_empty());
}

/// The sample repository's `each_rcpt.lua` pattern (SparkPost/momentum_sample_policy
/// kitchen-sink): `validate_data_spool_each_rcpt` copies `X-Binding` into the message
/// context and deletes the header, `validate_set_binding` takes the binding from the
/// context; `core_final_validation` runs last and may still change the message.
#[test]
fn each_rcpt_then_set_binding_then_final_validation() {
    let (s, p) = load(
        r#"
require("msys.core")
local mctx = msys.core.ECMESS_CTX_MESS
local mod = {}
function mod:validate_data_spool_each_rcpt(msg, accept, vctx)
  local binding = msg:header("X-Binding")[1]
  if binding ~= nil then
    msg:context_set(mctx, "binding", binding)
  end
  msg:header("X-Binding", "")
  return msys.core.VALIDATE_DONE
end
function mod:validate_set_binding(msg)
  local b = msg:context_get(mctx, "binding")
  if b then msg:binding(b) end
  return msys.core.VALIDATE_CONT
end
function mod:core_final_validation(msg, accept, vctx)
  msg:header("X-Final", msg:rcptto())
  return msys.core.VALIDATE_CONT
end
msys.registerModule("each", mod)
"#,
    );
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    let mut m = message("X-Binding: solo\nSubject: x\n\nbody\n");
    let v = p.message(&mut conn(), &mut m);
    assert_eq!(binding_of(&s, &v).as_deref(), Some("solo"));
    let body = String::from_utf8(m.body.clone()).unwrap();
    assert_eq!(body, "Subject: x\r\nX-Final: bob@rcpt.test\r\n\r\nbody\r\n");
}

/// Each recipient gets its own message (Momentum's messages have one recipient each):
/// recipients whose copies come out the same stay together; different bindings or headers
/// split the message.
#[test]
fn recipients_split_where_their_messages_differ() {
    let (_s, p) = load(
        r#"
local mod = {}
function mod:validate_set_binding(msg)
  if string.find(msg:rcptto(), "@group%.test$") then msg:binding("b1") else msg:binding("solo") end
  return 0
end
msys.registerModule("split", mod)
"#,
    );
    let mut m = message("Subject: x\n\n");
    m.recipients = vec![
        "a@group.test".into(),
        "b@other.test".into(),
        "c@group.test".into(),
    ];
    match p.message(&mut conn(), &mut m) {
        bindery_policy::Verdict::Split(shares) => {
            assert_eq!(shares.len(), 2);
            assert_eq!(shares[0].recipients, [0, 2]);
            assert_eq!(shares[0].binding.as_ref().unwrap().binding, "b1");
            assert_eq!(shares[1].recipients, [1]);
            assert_eq!(shares[1].binding.as_ref().unwrap().binding, "solo");
        }
        other => panic!("{other:?}"),
    }
    // All on one binding: one message.
    let mut m = message("Subject: x\n\n");
    m.recipients = vec!["a@group.test".into(), "c@group.test".into()];
    assert!(matches!(
        p.message(&mut conn(), &mut m),
        Verdict::Accept { binding: Some(_) }
    ));
}

/// `msg:header` with a value that is not a string raises, naming the script line; the
/// message gets the policy failure's 451.
#[test]
fn msg_header_refuses_values_that_are_not_strings() {
    let (_s, p) = load(
        r#"
local mod = {}
function mod:validate_data(msg, accept, vctx)
  msg:header("X-Flag", true)
end
msys.registerModule("bad", mod)
"#,
    );
    let mut m = message("Subject: x\n\n");
    match p.message(&mut conn(), &mut m) {
        Verdict::Refuse(c) => assert_eq!(c.code, 451),
        other => panic!("{other:?}"),
    }
    assert_eq!(p.errors(), 1);
}

/// The delivery log callouts get Momentum's arguments `(msg, dr, now, note, note_len)`,
/// `msg` knows the message (id, sender, the one recipient, `get_code`), and a code set with
/// `msg:set_code` comes back, to be logged instead of the reply.
#[test]
fn log_callouts_see_the_outcome_and_may_rewrite_it() {
    let (_s, p) = load(
        r#"
local mod = {}
function mod:core_log_permanent_failure_v1(msg, dr, now, note, note_len)
  assert(dr.domain == "rcpt.test" and type(now) == "number" and note_len == #note)
  if string.find(msg:get_code(), "^554 5%.4%.7") then
    msg:set_code(554, "5.4.7 timed out (" .. msg.id .. " to " .. msg:rcptto() .. ")")
  end
end
msys.registerModule("perm", mod)
"#,
    );
    assert!(p.has(Callout::LogPermanent) && !p.has(Callout::LogDelivery));
    let mut m = Message {
        id: "0000000A00000001".into(),
        sender: "a@sender.test".into(),
        recipients: vec!["b@rcpt.test".into()],
        ..Message::default()
    };
    let note = Code {
        code: 554,
        text: "5.4.7 [internal] exceeded max time without delivery".into(),
    };
    let got = p.log_event(
        Callout::LogPermanent,
        &mut m,
        "rcpt.test",
        1_700_000_000,
        &note,
    );
    assert_eq!(
        got,
        Some(Code {
            code: 554,
            text: "5.4.7 timed out (0000000A00000001 to b@rcpt.test)".into()
        })
    );
    let other = Code {
        code: 550,
        text: "5.1.1 unknown".into(),
    };
    assert_eq!(
        p.log_event(Callout::LogPermanent, &mut m, "rcpt.test", 1, &other),
        None
    );
    assert_eq!(p.errors(), 0);
}

/// Momentum's `json` module as its reference pages use it: decode gives an object whose
/// fields read and assign, that prints as JSON; encode and new; a bad document gives nil,
/// a json-c error code and a message; null survives a round trip.
#[test]
fn json_module_follows_momentums_pages() {
    let (_s, p) = load(
        r#"
local json = require("json")
local mod = {}
function mod:validate_data(msg, accept, vctx)
  local obj, code, err = json.decode([[{ "hello": "world", "n": null, "list": [1, 2] }]])
  assert(obj and code == nil, err)
  obj.int = 4
  obj.arr = json.encode({ 0, 1, 3 })
  local o = json.new()
  o.name = "value"
  local bad, bcode, berr = json.decode("{ \"a\": ")
  msg:context_set(msys.core.ECMESS_CTX_MESS, "r", table.concat({
    obj.hello, tostring(obj.n == json.null), tostring(#obj.list),
    tostring(json.decode(tostring(obj)).arr[3]), tostring(o), tostring(bad),
    tostring(bcode == json.ERROR_PARSE_EOF), json.strerror(bcode), "x" .. o,
    tostring(msys.json == json)}, "|"))
  return msys.core.VALIDATE_CONT
end
msys.registerModule("j", mod)
"#,
    );
    let mut m = message("Subject: x\n\n");
    p.message(&mut conn(), &mut m);
    assert_eq!(p.errors(), 0);
    assert_eq!(
        m.context["r"],
        "world|true|2|3|{\"name\":\"value\"}|nil|true|unexpected end of data|x{\"name\":\"value\"}|true"
    );
}

/// `msys.counter` (the reference page's example: a handle, paths, add, read, reset, unlink),
/// shared by every state and kept by the policy's statistics; `msys.expandMacro` with the
/// validation context; `msys.core.config_get_binding_name_from_id`.
#[test]
fn counters_macros_and_binding_names() {
    let (_s, p) = load(
        r#"
require("msys.counter")
local ct = msys.counter.open("/lua/test")
local mod = {}
function mod:validate_mailfrom(str, accept, vctx)
  if (string.find(str, "count@test.example.com") != nil) then
    msys.counter.inc(ct)
  elseif (string.find(str, "blargh@test.example.com") != nil) then
    local c = msys.counter.open("/lua/blargh", msys.counter.RELAXED)
    msys.counter.add(c, 1024)
  elseif (string.find(str, "blarghstring@test.example.com") != nil) then
    msys.counter.add("/lua/blargh", 3)
  elseif (string.find(str, "reset@test.example.com") != nil) then
    msys.counter.reset("/lua/blargh")
  end
  vctx:set(msys.core.VCTX_MESS, "read", msys.counter.read(ct) .. "/" ..
    msys.counter.read("/lua/blargh"))
  vctx:set(msys.core.VCTX_MESS, "macro",
    msys.expandMacro("%{vctx_conn:ehlo_domain} %{vctx_mess:read} %{spf:x}"))
  local id = msys.core.config_get_binding_id_from_name("solo")
  vctx:set(msys.core.VCTX_MESS, "name", tostring(msys.core.config_get_binding_name_from_id(id)) ..
    "/" .. tostring(msys.core.config_get_binding_name_from_id(9999)))
  return msys.core.VALIDATE_CONT
end
msys.registerModule("c", mod)
"#,
    );
    let mut c = conn();
    p.ehlo(&mut c, "client.example");
    let mut run = |from: &str| {
        let mut m = Message {
            sender: from.into(),
            ..Message::default()
        };
        assert_eq!(p.mailfrom(&mut c, &mut m), None);
        m.context
    };
    run("count@test.example.com");
    run("count@test.example.com");
    run("blargh@test.example.com");
    let ctx = run("blarghstring@test.example.com");
    assert_eq!(ctx["read"], "2/1027");
    assert_eq!(ctx["macro"], "client.example 2/1027 %{spf:x}");
    assert_eq!(ctx["name"], "solo/nil");
    assert_eq!(run("reset@test.example.com")["read"], "2/0");
    assert!(
        p.stats()
            .counters
            .list()
            .contains(&("/lua/test".to_string(), 2))
    );
}

/// Bad scripts (issue 19's acceptance): a script that raises in every callout gets the
/// session a 4xx at each phase (421 at connect), keeps the binding in set_binding, and
/// reports each error with its script line; a call to a function that does not exist is
/// the same; nothing panics.
#[test]
fn a_script_that_raises_everywhere_gets_4xx_and_names_its_line() {
    let (_s, p) = load(
        r#"
local mod = {}
local function boom() error("boom") end
function mod:validate_connect(accept, vctx) boom() end
function mod:validate_ehlo(s, accept, vctx) boom() end
function mod:validate_mailfrom(s, accept, vctx) boom() end
function mod:validate_rcptto(msg, s, accept, vctx) boom() end
function mod:validate_data(msg, accept, vctx) msys.no_such_function() end
function mod:validate_set_binding(msg) msg:binding("solo") boom() end
function mod:core_log_delivery_v1(msg, dr, now, note, len) boom() end
msys.registerModule("bad", mod)
"#,
    );
    let mut c = conn();
    assert_eq!(p.connect(&mut c).map(|k| k.code), Some(421));
    assert_eq!(p.ehlo(&mut c, "x").map(|k| k.code), Some(451));
    let mut m = message("Subject: x\n\n");
    assert_eq!(p.mailfrom(&mut c, &mut m).map(|k| k.code), Some(451));
    assert_eq!(
        p.rcptto(&mut c, &mut m, "a@b.test").map(|k| k.code),
        Some(451)
    );
    match p.message(&mut c, &mut m) {
        Verdict::Refuse(k) => assert_eq!(k.code, 451),
        other => panic!("{other:?}"),
    }
    let note = Code {
        code: 250,
        text: "2.0.0 ok".into(),
    };
    assert_eq!(
        p.log_event(Callout::LogDelivery, &mut m, "b.test", 1, &note),
        None
    );
    assert_eq!(p.errors(), 6);
    // set_binding alone: the binding chosen before the error stands.
    let (s2, p2) = load(
        "local mod = {}\nfunction mod:validate_set_binding(msg) msg:binding('solo') error('late') end\nmsys.registerModule('b', mod)\n",
    );
    let v = p2.message(&mut conn(), &mut message("Subject: x\n\n"));
    assert_eq!(binding_of(&s2, &v).as_deref(), Some("solo"));
    assert_eq!(p2.errors(), 1);
}

/// `Datasource` stanzas over SQLite with `msys.db` as Momentum's pages write it: `query`
/// iterates rows by column name with `?` parameters, `fetch_row` gives the first row or nil,
/// `execute` changes data, `raise_error = false` gives nil and the message; a URI whose
/// driver bindery lacks is a configuration error on its line.
#[test]
fn msys_db_queries_a_sqlite_datasource() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("prefs.sqlite");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "create table blacklist (address text primary key, reason text);
         insert into blacklist values ('bad@rcpt.test', 'complained');",
    )
    .unwrap();
    drop(c);
    let extra = format!(
        "Datasource \"prefs\" {{\n  uri = ( \"sqlite:{}\" )\n  cache_life = 60\n}}\n",
        db.display()
    );
    let script = r#"
require("msys.datasource")
require("msys.db")
local mod = {}
function mod:validate_data(msg, accept, vctx)
  local rcpt = msg:rcptto()
  local found = {}
  local rows, err = msys.db.query("prefs", "select address, reason from blacklist where address = ?", { rcpt })
  assert(rows, err)
  for row in rows do found[#found + 1] = row.address .. "=" .. row.reason end
  local first = msys.db.fetch_row("prefs", "select reason from blacklist where address = :a", { a = rcpt })
  local none = msys.db.fetch_row("prefs", "select reason from blacklist where address = ?", { "nobody" })
  local bad, msg2 = msys.db.fetch_row("prefs", "select nonsense from", nil, { raise_error = false })
  assert(msys.db.execute("prefs", "insert or replace into blacklist values (?, ?)", { "seen@" .. rcpt, "seen" }))
  msg:context_set(msys.core.ECMESS_CTX_MESS, "r", table.concat({ table.concat(found, ","),
    first and first.reason or "nil", tostring(none), tostring(bad), tostring(msg2 ~= nil) }, "|"))
  if #found > 0 then msg:discard() end
  return msys.core.VALIDATE_CONT
end
msys.registerModule("db", mod)
"#;
    let s = setup(&[("t.lua", script)], &["t"], &extra);
    let p = Policy::load(s.snapshot.clone()).unwrap_or_else(|e| panic!("{e}"));
    let mut m = message("Subject: x\n\n");
    m.recipients = vec!["bad@rcpt.test".into()];
    assert!(matches!(
        p.message(&mut conn(), &mut m),
        Verdict::Discard(_)
    ));
    assert_eq!(
        m.context["r"],
        "bad@rcpt.test=complained|complained|nil|nil|true"
    );
    let mut m = message("Subject: x\n\n");
    assert!(matches!(
        p.message(&mut conn(), &mut m),
        Verdict::Accept { .. }
    ));
    assert_eq!(p.errors(), 0);
    let c = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = c
        .query_row(
            "select count(*) from blacklist where reason = 'seen'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 2, "execute wrote to the file");

    let s = setup(
        &[("t.lua", "")],
        &["t"],
        "Datasource \"mssql\" {\n  uri = ( \"odbc:DSN=sqlserver;UID=user;PWD=pass\" )\n}\n",
    );
    match Policy::load(s.snapshot.clone()) {
        Ok(_) => panic!("an ODBC datasource loaded"),
        Err(e) => {
            let text = bindery_policy::render(&e, &s.snapshot);
            assert!(text.contains(":3: error: Datasource `mssql`"), "{text}");
            assert!(
                text.contains("uri = ( \"odbc:"),
                "the line is shown: {text}"
            );
            assert!(text.contains("only sqlite: URIs are implemented"), "{text}");
        }
    }
}

/// Momentum's bitwise operators (its reference pages; real scripts OR the `O_*` flags):
/// `|`, `&`, `^^`, `<<`, `>>`, `~` and `\` run on Lua 5.1, with Lua 5.3's precedence.
#[test]
fn momentums_bitwise_operators_run() {
    let (_s, p) = load(
        r#"
local FLAGS = msys.core.O_CREAT | msys.core.O_APPEND | msys.core.O_WRONLY;
local mod = {}
function mod:validate_data(msg, accept, vctx)
  local r = { FLAGS, 6 & 3, 6 ^^ 3, 1 << 4, 256 >> 4, ~0 & 255, 7 \ 2, 1 | 2 == 3 }
  for i, v in ipairs(r) do r[i] = tostring(v) end
  msg:context_set(msys.core.ECMESS_CTX_MESS, "r", table.concat(r, ","))
  return msys.core.VALIDATE_CONT
end
msys.registerModule("bits", mod)
"#,
    );
    let mut m = message("Subject: x\n\n");
    p.message(&mut conn(), &mut m);
    assert_eq!(p.errors(), 0);
    assert_eq!(m.context["r"], "1089,2,5,16,16,255,3,true");
}

/// `thread.mutex` as the reference page uses it (a global, and `require("thread")`); an
/// error-checking mutex refuses an unlock it does not hold. `msys.audit.connections`
/// without the inbound_audit module raises, saying so.
#[test]
fn thread_mutexes_and_refused_subsystems() {
    let (_s, p) = load(
        r#"
counter_lock = thread.mutex()
counter = 0
local t = require("thread")
local strict = t.mutex(t.MUTEX_ERRORCHECK)
local mod = {}
function mod:validate_data(msg, accept, vctx)
  counter_lock:lock() counter = counter + 1 counter_lock:unlock()
  local ok = pcall(function() strict:unlock() end)
  local aok, aerr = pcall(msys.audit.connections, "monitor")
  msg:context_set(msys.core.ECMESS_CTX_MESS, "r", table.concat({ counter, tostring(ok),
    tostring(aok), tostring(string.find(tostring(aerr), "the inbound_audit module is not loaded") ~= nil) }, ","))
  return msys.core.VALIDATE_CONT
end
msys.registerModule("m", mod)
"#,
    );
    let mut m = message("Subject: x\n\n");
    p.message(&mut conn(), &mut m);
    assert_eq!(p.errors(), 0);
    assert_eq!(m.context["r"], "1,false,false,true");
}

/// `msys.runInPool(pool, closure)` gives the closure's status and results; with `true` or
/// a completion function it runs the closure (then the completion) once the callout has
/// returned, and gives nothing.
#[test]
fn run_in_pool_returns_status_and_results() {
    let (_s, p) = load(
        r#"
local mod = {}
function mod:validate_data(msg, accept, vctx)
  local ok, v = msys.runInPool("io", function() return 5 end)
  local bad, err = msys.runInPool("io", function() error("no") end)
  local order = {}
  local none = msys.runInPool("io", function() order[#order + 1] = "async" end, true)
  msys.runInPool("io", function() order[#order + 1] = "closure" end,
    function() order[#order + 1] = "completion"
      msg:context_set(msys.core.ECMESS_CTX_MESS, "order", table.concat(order, ","))
    end, msys.core.ECTP_COMPLETE_CALLBACK_SCHED)
  order[#order + 1] = "callout"
  msg:context_set(msys.core.ECMESS_CTX_MESS, "r", tostring(ok) .. v .. tostring(bad) .. tostring(none))
  return msys.core.VALIDATE_CONT
end
msys.registerModule("pool", mod)
"#,
    );
    let mut m = message("Subject: x\n\n");
    p.message(&mut conn(), &mut m);
    assert_eq!(p.errors(), 0);
    assert_eq!(m.context["r"], "true5falsenil");
    assert_eq!(m.context["order"], "callout,async,closure,completion");
}

/// The training policy's `core_validate_accept(ac, vctx)` runs before `validate_connect`
/// and may refuse the connection; `validate_dealloc()` runs at the session's end with the
/// module as `self`; `core_pre_mailq_message_requeue(msg, now)` runs for a deferred message.
#[test]
fn accept_dealloc_and_requeue_callouts() {
    let (_s, p) = load(
        r#"
local mod = {}
function mod:core_validate_accept(ac, vctx)
  vctx:set(msys.core.VCTX_CONN, "order", "accept")
  if ac:peer() == "192.0.2.66" then vctx:set_code(554, "5.7.1 not from there") end
  return msys.core.VALIDATE_CONT
end
function mod:validate_connect(ac, vctx)
  vctx:set(msys.core.VCTX_CONN, "order", vctx:get(msys.core.VCTX_CONN, "order") .. ",connect")
  return msys.core.VALIDATE_CONT
end
function mod:validate_dealloc()
  msys.counter.inc("/test/dealloc")
end
function mod:core_pre_mailq_message_requeue(msg, now)
  assert(type(now) == "number")
  msys.counter.inc("/test/requeue/" .. msg:rcptto())
end
msys.registerModule("t", mod)
"#,
    );
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    let mut c = conn();
    assert_eq!(p.connect(&mut c), None);
    assert_eq!(c.context["order"], "accept,connect");
    let mut far = Conn::new("192.0.2.66".parse().unwrap(), "esmtp", &[]);
    assert_eq!(p.connect(&mut far).map(|k| k.code), Some(554));
    assert!(!far.context.contains_key("order") || far.context["order"] == "accept");
    p.dealloc(&mut c);
    let mut m = Message {
        recipients: vec!["b@rcpt.test".into()],
        ..Message::default()
    };
    let note = Code {
        code: 451,
        text: "4.2.0 busy".into(),
    };
    assert_eq!(
        p.log_event(Callout::PreRequeue, &mut m, "rcpt.test", 1, &note),
        None
    );
    let counters = p.stats().counters.list();
    assert!(
        counters.contains(&("/test/dealloc".to_string(), 1)),
        "{counters:?}"
    );
    assert!(
        counters.contains(&("/test/requeue/b@rcpt.test".to_string(), 1)),
        "{counters:?}"
    );
    assert_eq!(p.errors(), 0);
}

/// `msg:text()`: the text of the body, transfer-decoded to UTF-8; a table when there are
/// several text parts.
#[test]
fn msg_text_decodes_the_text_parts() {
    let (_s, p) = load(
        r#"
local mod = {}
function mod:validate_data(msg, accept, vctx)
  local t = msg:text()
  if type(t) == "table" then t = table.concat(t, "|") end
  msg:context_set(msys.core.ECMESS_CTX_MESS, "r", string.gsub(t, "\r?\n", "/"))
  return msys.core.VALIDATE_CONT
end
msys.registerModule("t", mod)
"#,
    );
    let mut m = message(
        "Subject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9\n",
    );
    p.message(&mut conn(), &mut m);
    assert_eq!(m.context["r"], "café/");
    let mut m = message(
        "Subject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\none\n--b\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\ndHdv\n--b--\n",
    );
    p.message(&mut conn(), &mut m);
    assert_eq!(p.errors(), 0);
    assert_eq!(m.context["r"], "one|two");
}

/// `msys.audit_series` as its reference pages use it: defined in `init`, counted per
/// connecting address (the `accept` object as the key), summed over a network with
/// `"/24"`; a string series by key; `persist` is refused, never ignored.
#[test]
fn audit_series_count_connections_per_network() {
    let (_s, p) = load(
        r#"
require("msys.audit_series")
local mod = {}
function mod:init()
  msys.audit_series.define("conns", "cidr", 60, 5)
  msys.audit_series.define("senders", "string", 3600, 1)
  return true
end
function mod:validate_connect(accept, vctx)
  msys.audit_series.add("conns", accept)
  local n = msys.audit_series.count("conns", { key = "/24" })
  vctx:set(msys.core.VCTX_CONN, "n", tostring(n))
  if n > 2 then vctx:set_code(421, "4.7.1 too many connections from your network") end
  return msys.core.VALIDATE_CONT
end
function mod:validate_mailfrom(from, accept, vctx)
  msys.audit_series.add("senders", { key = from, count = 2 })
  vctx:set(msys.core.VCTX_MESS, "s", tostring(msys.audit_series.count("senders", from)))
  local ok = pcall(msys.audit_series.define, "p", "cidr", 60, 1, { persist = true })
  vctx:set(msys.core.VCTX_MESS, "persist", tostring(ok))
  return msys.core.VALIDATE_CONT
end
msys.registerModule("a", mod)
"#,
    );
    let ip = |s: &str| Conn::new(s.parse().unwrap(), "esmtp", &[]);
    let mut c1 = ip("192.0.2.1");
    assert_eq!(p.connect(&mut c1), None);
    let mut c2 = ip("192.0.2.2");
    assert_eq!(p.connect(&mut c2), None);
    assert_eq!(c2.context["n"], "2");
    let mut other = ip("198.51.100.1");
    assert_eq!(p.connect(&mut other), None);
    assert_eq!(other.context["n"], "1", "another network");
    let mut c3 = ip("192.0.2.3");
    assert_eq!(p.connect(&mut c3).map(|k| k.code), Some(421));
    let mut m = Message {
        sender: "a@b.test".into(),
        ..Message::default()
    };
    p.mailfrom(&mut c1, &mut m);
    assert_eq!(m.context["s"], "2");
    assert_eq!(m.context["persist"], "false");
    assert_eq!(p.errors(), 0);
}

/// `msys.cidr` as the cidrdb pages and the training policy use it: an rbldnsd file defined
/// in `init` (the reference page's example shape), queried for the connected client (no
/// address) and for a given one, with `interpolate` and `default_value`; a datasource table
/// from SQLite; an unknown table or type raises, naming it.
#[test]
fn msys_cidr_answers_from_rbldnsd_files_and_datasources() {
    let dir = tempfile::tempdir().unwrap();
    let rbl = dir.path().join("rbl.txt");
    std::fs::write(
        &rbl,
        "# test list\n:127.0.0.2:Listed $\n192.0.2.0/24\n!192.0.2.200\n198.51.100.7 :5:Spam from $\n",
    )
    .unwrap();
    let db = dir.path().join("nets.sqlite");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "create table nets (label text, block text);
         insert into nets values ('partner', '203.0.113.0/24'), ('office', '192.0.2.9');",
    )
    .unwrap();
    drop(c);
    let extra = format!(
        "Datasource \"nets\" {{\n  uri = ( \"sqlite:{}\" )\n  max_rows = -1\n}}\n",
        db.display()
    );
    let script = format!(
        r#"
require("msys.cidr")
local mod = {{}}
function mod:init()
  msys.cidr.define("rbl", {{ type = "rbldnsd", source = "{rbl}", value = "txt",
                            interpolate = true, default_value = "127.0.0.0" }})
  msys.cidr.define("rbl_a", {{ type = "rbldnsd", source = "file://{rbl}" }})
  msys.cidr.define("nets", {{ type = "datasource", cachename = "nets",
                             query = "select label, block from nets",
                             cidr_column = "block", value_column = 1 }})
  msys.cidr.define("present", {{ type = "datasource", cachename = "nets",
                                query = "select block from nets" }})
  msys.cidr.define("blank", "empty")
  return true
end
function mod:validate_connect(accept, vctx)
  local r = {{ msys.cidr.query("rbl"), msys.cidr.query("rbl", "198.51.100.7"),
              msys.cidr.query("rbl", "192.0.2.200"), msys.cidr.query("rbl_a", "198.51.100.7"),
              tostring(msys.cidr.query("rbl_a", "10.0.0.1")), msys.cidr.query("nets"),
              msys.cidr.query("nets", "203.0.113.77:2525"), tostring(msys.cidr.query("present")),
              tostring(msys.cidr.query("blank")), tostring(msys.cidr.reload("rbl")) }}
  vctx:set(msys.core.VCTX_CONN, "r", table.concat(r, "|"))
  local ok, err = pcall(msys.cidr.query, "nope")
  vctx:set(msys.core.VCTX_CONN, "e", tostring(err))
  return msys.core.VALIDATE_CONT
end
msys.registerModule("cidr", mod)
"#,
        rbl = rbl.display()
    );
    let s = setup(&[("t.lua", &script)], &["t"], &extra);
    let p = Policy::load(s.snapshot.clone()).unwrap_or_else(|e| panic!("{e}"));
    let mut c = conn();
    assert_eq!(p.connect(&mut c), None);
    assert_eq!(
        c.context.get("r").map(String::as_str),
        Some(
            "Listed 192.0.2.9|Spam from 198.51.100.7|127.0.0.0|127.0.0.5|nil|office|partner|true|nil|true"
        )
    );
    let e = c.context.get("e").cloned().unwrap_or_default();
    assert!(e.contains("no CIDR named \"nope\""), "{e}");
    assert_eq!(p.errors(), 0);

    let bad = r#"
local mod = {}
function mod:init()
  msys.cidr.define("x", { type = "rbl", source = "/nonexistent" })
  return true
end
msys.registerModule("bad", mod)
"#;
    let err = load_err(&[("t.lua", bad)], &["t"]);
    assert!(
        err.contains("type \"rbl\" is not datasource, rbldnsd or empty"),
        "{err}"
    );
}

/// `msys.dnsLookup` as its reference page gives it: A by default, MX best first (with
/// `priority = true` as `{preference, name}`), TXT, `nil, "NXDOMAIN"` for a name that does
/// not exist, an empty table for a name without such records, `server` passed on, and an
/// unknown record type raises.
#[test]
fn dns_lookup_answers_through_the_resolver_seam() {
    use bindery_policy::dns::{DnsFailure, DnsRecord, MemDns, RecordType};
    let rec = |p: Option<u16>, t: &str| DnsRecord {
        preference: p,
        text: t.into(),
    };
    let dns = Arc::new(MemDns::default());
    dns.answer("a.test", RecordType::A, Ok(vec![rec(None, "192.0.2.1")]));
    dns.answer(
        "a.test",
        RecordType::Mx,
        Ok(vec![
            rec(Some(10), "mx1.a.test"),
            rec(Some(20), "mx2.a.test"),
        ]),
    );
    dns.answer(
        "a.test",
        RecordType::Txt,
        Ok(vec![rec(None, "v=spf1 -all")]),
    );
    dns.answer("empty.test", RecordType::Mx, Ok(vec![]));
    dns.answer(
        "broken.test",
        RecordType::A,
        Err(DnsFailure::Failed("SERVFAIL".into())),
    );
    let script = r##"
local mod = {}
function mod:validate_connect(accept, vctx)
  local out = {}
  local a = msys.dnsLookup("a.test")
  out[#out + 1] = a[1]
  local mx = msys.dnsLookup("a.test", "mx")
  out[#out + 1] = table.concat(mx, ",")
  local p = msys.dnsLookup("a.test", "MX", { priority = true })
  out[#out + 1] = p[1][1] .. "=" .. p[1][2]
  out[#out + 1] = msys.dnsLookup("a.test", "TXT", { server = "127.0.0.1:5353" })[1]
  local none, err = msys.dnsLookup("nosuch.test", "A")
  out[#out + 1] = tostring(none) .. ":" .. err
  out[#out + 1] = "#" .. #msys.dnsLookup("empty.test", "MX")
  local b, why = msys.dnsLookup("broken.test")
  out[#out + 1] = tostring(b) .. ":" .. why
  local ok, e = pcall(msys.dnsLookup, "a.test", "SRV")
  out[#out + 1] = tostring(ok)
  vctx:set(msys.core.VCTX_CONN, "r", table.concat(out, "|"))
  vctx:set(msys.core.VCTX_CONN, "e", tostring(e))
  return msys.core.VALIDATE_CONT
end
msys.registerModule("dns", mod)
"##;
    let (_s, p) = load_with_dns(script, dns.clone());
    let mut c = conn();
    assert_eq!(p.connect(&mut c), None);
    assert_eq!(
        c.context.get("r").map(String::as_str),
        Some(
            "192.0.2.1|mx1.a.test,mx2.a.test|10=mx1.a.test|v=spf1 -all|nil:NXDOMAIN|#0|nil:SERVFAIL|false"
        )
    );
    let e = c.context.get("e").cloned().unwrap_or_default();
    assert!(e.contains("record type \"SRV\" is not A, AAAA"), "{e}");
    let asked = dns.asked.lock().unwrap().clone();
    assert!(
        asked.contains(&"a.test/Txt@127.0.0.1:5353".to_string()),
        "{asked:?}"
    );
    assert_eq!(p.errors(), 0);
}

/// Messages a script makes and the addresses a message came by, as the reference pages and
/// the sample policy use them: `msg:copy():inject` (secondary_delivery.lua),
/// `ec_message_new` + `msg:build` + `inject` (dynamically_create_new_message.lua), an
/// injection loop stopped at `MAX_DEPTH`, `msg.recv_method` against `msys.core.P_*`,
/// `msg:reception_peer` / `listener_addr`, `accept.remote_addr` as a sockaddr the training
/// library splits, live session counts, `debug.output`.
#[test]
fn scripts_make_and_inject_messages_and_read_their_addresses() {
    use bindery_policy::inject::{MemInjector, MemSessions, Service};
    let script = r#"
local mod = {}
function mod:validate_connect(ac, vctx)
  local sa = ac.remote_addr
  vctx:set(msys.core.VCTX_CONN, "addr", tostring(sa) .. "|" .. msys.core.ec_sockaddr_family(sa)
    .. "|" .. tostring(msys.core.ec_sockaddr_family(sa) == msys.core.AF_INET) .. "|" .. "x" .. sa)
  vctx:set(msys.core.VCTX_CONN, "count", msys.audit.inbound_session_count("/24", "SMTP") .. ","
    .. msys.audit.inbound_session_count("10.0.0.0/8", "SMTP") .. "," .. ac:inbound_session_count())
  local ok, err = pcall(msys.audit.inbound_session_count, "/32", "ECCluster")
  vctx:set(msys.core.VCTX_CONN, "cluster", tostring(err))
  debug.output("connect from " .. tostring(sa))
  return msys.core.VALIDATE_CONT
end
function mod:validate_data_spool(msg, ac, vctx)
  msg:context_set(msys.core.ECMESS_CTX_MESS, "seen", table.concat({ msg.recv_method,
    tostring(msg.recv_method == msys.core.P_ESMTP), msys.core.protocol_string(msg.recv_method),
    msg:reception_peer("ip"), msg:reception_peer("port"), msg:reception_peer(),
    msg:listener_addr() }, "|"))
  local copy = msg:copy()
  copy:header("X-Copy", "yes")
  copy:inject(msg:mailfrom(), "archive@example.com, audit@example.com")
  local new = msys.core.ec_message_new(os.time())
  new:build({ To = "recipient@example.com", Subject = "built" },
            { ["text/plain; charset=utf8"] = "plain words", ["text/html"] = "<b>html</b>" },
            { { type = "text/csv", name = "data.csv", content = "a,b\n1,2\n" } })
  new:inject("noreply@example.com", "test2@example.com")
  local ok, err = pcall(new.build, new, {}, {})
  msg:context_set(msys.core.ECMESS_CTX_MESS, "rebuild", tostring(err))
  return msys.core.VALIDATE_CONT
end
msys.registerModule("made", mod)
"#;
    let s = setup(&[("t.lua", script)], &["t"], "");
    let injected = Arc::new(MemInjector::default());
    let peer: std::net::IpAddr = "192.0.2.9".parse().unwrap();
    let hosts = bindery_policy::Hosts {
        sessions: Some(Arc::new(MemSessions(vec![
            (Service::Smtp, "esmtp".into(), peer),
            (Service::Smtp, "esmtp".into(), "192.0.2.77".parse().unwrap()),
            (Service::Smtp, "other".into(), peer),
        ]))),
        injector: Some(injected.clone()),
        ..Default::default()
    };
    let p = Policy::load_hosted(s.snapshot.clone(), hosts).unwrap_or_else(|e| panic!("{e}"));
    let mut c = conn();
    c.peer_port = 40123;
    c.local = Some("192.0.2.1:25".parse().unwrap());
    assert_eq!(p.connect(&mut c), None);
    assert_eq!(
        c.context.get("addr").map(String::as_str),
        Some("192.0.2.9:40123|2|true|x192.0.2.9:40123")
    );
    assert_eq!(c.context.get("count").map(String::as_str), Some("3,0,1"));
    assert!(
        c.context["cluster"].contains("\"ECCluster\" is not implemented by bindery"),
        "{}",
        c.context["cluster"]
    );
    let mut m = message("Subject: original\n\nHello.\n");
    assert!(matches!(p.message(&mut c, &mut m), Verdict::Accept { .. }));
    assert_eq!(p.errors(), 0);
    assert_eq!(
        m.context["seen"],
        "2|true|ESMTP|192.0.2.9|40123|192.0.2.9:40123|192.0.2.1:25"
    );
    assert!(
        m.context["rebuild"].contains("needs an empty message"),
        "{}",
        m.context["rebuild"]
    );
    assert!(
        !String::from_utf8_lossy(&m.body).contains("X-Copy"),
        "the copy's header is not the original's"
    );
    let taken = injected.taken.lock().unwrap().clone();
    assert_eq!(taken.len(), 2);
    assert_eq!(taken[0].sender, "alice@sender.test");
    assert_eq!(
        taken[0].recipients,
        vec!["archive@example.com", "audit@example.com"]
    );
    let copy = String::from_utf8_lossy(&taken[0].body).into_owned();
    assert!(
        copy.contains("X-Copy: yes\r\n") && copy.contains("Subject: original\r\n"),
        "{copy}"
    );
    assert_eq!(taken[0].depth, 1);
    let built = mail_parser::MessageParser::default()
        .parse(&taken[1].body)
        .expect("a MIME message");
    assert_eq!(built.subject(), Some("built"));
    assert_eq!(built.body_text(0).as_deref(), Some("plain words"));
    assert_eq!(built.body_html(0).as_deref(), Some("<b>html</b>"));
    let att = built.attachment(0).expect("the attachment");
    {
        use mail_parser::MimeHeaders;
        assert_eq!(att.attachment_name(), Some("data.csv"));
    }
    assert_eq!(att.contents(), b"a,b\n1,2\n");

    // An injected message's own injection goes one deeper; at MAX_DEPTH it is refused.
    let mut deep = message("Subject: loop\n\n");
    deep.recv_method = bindery_policy::inject::RecvMethod::Internal;
    deep.depth = bindery_policy::inject::MAX_DEPTH;
    let _ = p.message(&mut c, &mut deep);
    assert!(p.errors() > 0, "the loop was refused by raising");
    assert_eq!(injected.taken.lock().unwrap().len(), 2);
}

/// The MIME API as Momentum's pages describe it: `msg:mime` walks the tree by `thread`;
/// a read-only tree refuses changes; a writable one writes them back (`text` of a
/// quoted-printable part stays quoted-printable, `addLastChild` of a made part, `unlink`);
/// a tree older than a header change refuses; `body_match` / `text_replace` on the whole
/// message; `vctx:recipient_list` counts from 0, as the page's loop does.
#[test]
fn mime_trees_read_edit_and_write_back() {
    let script = r##"
local mod = {}
function mod:validate_data(msg, accept, vctx)
  local out = {}
  local p = msg:mime()
  while p ~= nil do out[#out + 1] = p:content_type().mimetype; p = p.thread end
  local ro = msg:mime()
  local ok, err = pcall(function() ro.parts[1]:text("changed") end)
  out[#out + 1] = tostring(ok) .. ":" .. tostring(string.find(err, "read%-only") ~= nil)
  local top = msg:mime(false)
  local plain = top.parts[1]
  out[#out + 1] = plain:text()
  plain:text("Bonjour, café")
  top:addLastChild(msg:makePart("text/calendar", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"))
  top.parts[2]:unlink()
  msg:header("X-After", "yes")
  local stale, serr = pcall(function() top.parts[1]:header("X-Part", "1") end)
  out[#out + 1] = tostring(stale) .. ":" .. tostring(string.find(serr, "call msg:mime again") ~= nil)
  out[#out + 1] = tostring(msg:body_match("VCALENDAR")[1])
  out[#out + 1] = tostring(msg:text_replace("Bonjour", "Salut"))
  local list = vctx:recipient_list()
  out[#out + 1] = list[0] .. "#" .. #list
  msg:context_set(msys.core.ECMESS_CTX_MESS, "r", table.concat(out, "|"))
  return msys.core.VALIDATE_CONT
end
msys.registerModule("mime", mod)
"##;
    let (_s, p) = load(script);
    let body = "Subject: x\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"b\"\n\n--b\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nHello caf=C3=A9\n--b\nContent-Type: text/html\n\n<p>Hello</p>\n--b--\n";
    let mut m = message(body);
    m.recipients = vec!["one@rcpt.test".into(), "two@rcpt.test".into()];
    p.message(&mut conn(), &mut m);
    assert_eq!(p.errors(), 0);
    assert_eq!(
        m.context["r"],
        "multipart/alternative|text/plain|text/html|false:true|Hello café|false:true|VCALENDAR|true|one@rcpt.test#1"
    );
    let out = String::from_utf8(m.body.clone()).unwrap();
    assert!(
        out.contains("Content-Transfer-Encoding: quoted-printable\r\n\r\nSalut, caf=C3=A9"),
        "{out}"
    );
    assert!(
        out.contains("Content-Type: text/calendar\r\n\r\nBEGIN:VCALENDAR"),
        "{out}"
    );
    assert!(!out.contains("<p>Hello</p>"), "{out}");
    assert!(out.contains("X-After: yes"), "{out}");
    let parsed = mail_parser::MessageParser::default()
        .parse(&m.body)
        .unwrap();
    assert_eq!(parsed.body_text(0).as_deref(), Some("Salut, café"));
}

/// `validate_rcptto_list(list, vctx)` and `validate_rcptto_list_final(list, vctx)` run at DATA
/// with the complete recipient list (numbered from 0, as `vctx:recipient_list`); a code
/// refuses DATA, and `_final` does not run after a refusal; changing the recipients there is
/// refused (the list is the session's).
#[test]
fn rcptto_list_callouts_see_the_whole_list_at_data() {
    let (_s, p) = load(
        r#"
local mod = {}
function mod:validate_rcptto_list(list, vctx)
  local seen = {}
  for i = 0, #list do seen[#seen + 1] = list[i] end
  vctx:set(msys.core.VCTX_CONN, "list", table.concat(seen, ","))
  if #seen > 2 then vctx:set_code(452, "4.5.3 three is a crowd") end
  return msys.core.VALIDATE_CONT
end
function mod:validate_rcptto_list_final(list, vctx)
  vctx:set(msys.core.VCTX_CONN, "final", tostring(list[0]))
  local ok, err = pcall(function() vctx:add_recipient("x@y.test") end)
  vctx:set(msys.core.VCTX_CONN, "add", tostring(ok))
  return msys.core.VALIDATE_CONT
end
msys.registerModule("lists", mod)
"#,
    );
    assert!(p.has_rcptto_list());
    let mut c = conn();
    let mut m = message("");
    m.recipients = vec!["a@r.test".into(), "b@r.test".into()];
    assert_eq!(p.rcptto_list(&mut c, &mut m), None);
    assert_eq!(c.context["list"], "a@r.test,b@r.test");
    assert_eq!(c.context["final"], "a@r.test");
    assert_eq!(c.context["add"], "false");
    let mut c = conn();
    m.recipients.push("c@r.test".into());
    let code = p.rcptto_list(&mut c, &mut m).expect("refused");
    assert_eq!(
        (code.code, code.text.as_str()),
        (452, "4.5.3 three is a crowd")
    );
    assert!(!c.context.contains_key("final"), "_final after a refusal");
    assert_eq!(p.errors(), 0);
}

/// `msys.validate.opendkim.sign` in `core_final_validation`, as Momentum's page calls it (a
/// `keyfile` with `%{d}` and `%{s}`, the responsible domain from From): the message comes out
/// with a DKIM-Signature python3-dkim verifies; `keybuf` works too; `rsa-sha1` and a call
/// outside core_final_validation raise.
#[test]
fn opendkim_sign_in_final_validation_verifies_with_python3_dkim() {
    let dir = tempfile::tempdir().unwrap();
    let keydir = dir.path().join("dkim/sign.test");
    std::fs::create_dir_all(&keydir).unwrap();
    let key = keydir.join("s1.key");
    let ok = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&key)
        .arg("2048")
        .output()
        .map(|o| o.status.success());
    assert!(matches!(ok, Ok(true)), "openssl makes a key");
    let pem = std::fs::read_to_string(&key).unwrap();
    let keybuf: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let public = bindery_dkim::Key::from_pem(pem.as_bytes())
        .unwrap()
        .public_key_base64();
    let script = format!(
        r#"
require("msys.validate.opendkim")
local mod = {{}}
function mod:validate_data(msg, ac, vctx)
  local ok, err = pcall(msys.validate.opendkim.sign, msg, vctx, {{ selector = "s1", keybuf = "x" }})
  msg:context_set(msys.core.ECMESS_CTX_MESS, "early", tostring(err))
  return msys.core.VALIDATE_CONT
end
function mod:core_final_validation(msg, ac, vctx)
  local ok, err = pcall(msys.validate.opendkim.sign, msg, vctx,
    {{ selector = "s1", keyfile = "{dir}/dkim/%{{d}}/%{{s}}.key", digest = "rsa-sha1" }})
  msg:context_set(msys.core.ECMESS_CTX_MESS, "sha1", tostring(err))
  if msg:rcptto() == "buf@rcpt.test" then
    msys.validate.opendkim.sign(msg, vctx, {{ selector = "s1", keybuf = "{keybuf}",
      header_canon = "relaxed", body_canon = "relaxed", headerlist = "from:to:subject" }})
  else
    msys.validate.opendkim.sign(msg, vctx, {{ selector = "s1",
      keyfile = "{dir}/dkim/%{{d}}/%{{s}}.key", header_canon = "relaxed" }})
  end
  return msys.core.VALIDATE_CONT
end
msys.registerModule("sign", mod)
"#,
        dir = dir.path().display()
    );
    let (_s, p) = load(&script);
    let mut signed = Vec::new();
    for rcpt in ["file@rcpt.test", "buf@rcpt.test"] {
        let mut m = message(
            "From: =?UTF-8?B?Wm/Dqw==?= <zoe@sign.test>\nTo: bob@rcpt.test\nSubject: signed\n\nHello.\n",
        );
        m.recipients = vec![rcpt.into()];
        let v = p.message(&mut conn(), &mut m);
        assert!(matches!(v, Verdict::Accept { .. }), "{v:?}");
        assert!(
            m.context["early"].contains("core_final_validation only"),
            "{}",
            m.context["early"]
        );
        assert!(
            m.context["sha1"].contains("RFC 8301"),
            "{}",
            m.context["sha1"]
        );
        let head = String::from_utf8_lossy(&m.body[..200.min(m.body.len())]).replace("\r\n\t", " ");
        assert!(
            head.starts_with("DKIM-Signature: v=1; a=rsa-sha256; s=s1; d=sign.test;"),
            "{head}"
        );
        signed.push(m.body);
    }
    assert_eq!(p.errors(), 0);
    let verdicts: Vec<String> = signed
        .iter()
        .map(|body| {
            let path = dir.path().join(format!("m{}.eml", body.len()));
            std::fs::write(&path, body).unwrap();
            let out = std::process::Command::new("/usr/bin/python3")
                .arg("-c")
                .arg(format!(
                    "import dkim,sys\nrec=b'v=DKIM1; k=rsa; p={public}'\nprint(dkim.verify(open(sys.argv[1],'rb').read(), dnsfunc=lambda n, timeout=5: rec))"
                ))
                .arg(&path)
                .output()
                .expect("/usr/bin/python3 with python3-dkim");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
                + &String::from_utf8_lossy(&out.stderr)
        })
        .collect();
    assert_eq!(verdicts, vec!["True", "True"]);
}

/// The cross-check the other way: a message signed by python3-dkim verifies with
/// `msys.validate.opendkim.verify` in `validate_data`, the key record coming through the
/// resolver seam; the getters read the signature as Momentum's page loops over it. A changed
/// body is `DKIM_STAT_BADSIG`, a key record that is not there `DKIM_STAT_NOKEY`, an unsigned
/// message `DKIM_STAT_NOSIG`.
#[test]
fn opendkim_verify_reads_a_python3_dkim_signature() {
    use bindery_policy::dns::{DnsRecord, MemDns, RecordType};
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("py.key");
    let ok = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&key)
        .arg("1024")
        .output()
        .map(|o| o.status.success());
    assert!(matches!(ok, Ok(true)), "openssl makes a key");
    let public = bindery_dkim::Key::from_pem(&std::fs::read(&key).unwrap())
        .unwrap()
        .public_key_base64();
    let original = "From: Py <py@py.test>\r\nTo: b@rcpt.test\r\nSubject: signed by python\r\n\r\nHello from dkimpy.\r\n";
    let out = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg("import dkim,sys\nm=sys.stdin.buffer.read()\nk=open(sys.argv[1],'rb').read()\nsys.stdout.buffer.write(dkim.sign(m,b's1',b'py.test',k,canonicalize=(b'relaxed',b'simple'),include_headers=[b'from',b'to',b'subject'])+m)")
        .arg(&key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(original.as_bytes())?;
            c.wait_with_output()
        })
        .expect("/usr/bin/python3 with python3-dkim");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let signed = String::from_utf8(out.stdout).unwrap();
    assert!(signed.starts_with("DKIM-Signature:"), "{signed}");
    let dns = Arc::new(MemDns::default());
    dns.answer(
        "s1._domainkey.py.test",
        RecordType::Txt,
        Ok(vec![DnsRecord {
            preference: None,
            text: format!("v=DKIM1; k=rsa; p={public}"),
        }]),
    );
    let script = r##"
require("opendkim.dkim")
require("msys.validate.opendkim")
local mod = {}
function mod:validate_data(msg, accept, vctx)
  local out = {}
  local dkim, stat = msys.validate.opendkim.verify(msg)
  local num = msys.validate.opendkim.get_num_sigs(dkim)
  out[#out + 1] = "stat=" .. stat .. " num=" .. num
  if num > 0 then
    for i = 0, num - 1 do
      local sig = msys.validate.opendkim.get_sig(dkim, i)
      local hc, bc = msys.validate.opendkim.get_sig_canons(sig)
      out[#out + 1] = table.concat({
        msys.validate.opendkim.get_sig_domain(sig),
        msys.validate.opendkim.get_sig_selector(sig),
        msys.validate.opendkim.get_sig_signalg(sig),
        tostring(msys.validate.opendkim.get_sig_keysize(sig)),
        hc .. "/" .. bc,
        msys.validate.opendkim.get_sig_identity(dkim, sig),
        tostring(msys.validate.opendkim.get_sig_hdrsigned(sig, "Subject")),
        tostring(msys.validate.opendkim.get_sig_hdrsigned(sig, "Date")),
        tostring(msys.validate.opendkim.get_sig_flags(sig)),
        msys.validate.opendkim.get_sig_errorstr(sig),
      }, ",")
    end
  end
  out[#out + 1] = tostring(stat == msys.validate.opendkim.DKIM_STAT_OK)
  msg:context_set(msys.core.ECMESS_CTX_MESS, "r", table.concat(out, "|"))
  return msys.core.VALIDATE_CONT
end
msys.registerModule("verify", mod)
"##;
    let (_s, p) = load_with_dns(script, dns.clone());
    let run = |body: &str| {
        let mut m = message(&body.replace("\r\n", "\n"));
        let v = p.message(&mut conn(), &mut m);
        assert!(matches!(v, Verdict::Accept { .. }), "{v:?}");
        m.context.get("r").cloned().unwrap_or_default()
    };
    assert_eq!(
        run(&signed),
        "stat=0 num=1|py.test,s1,rsa-sha256,1024,1/0,@py.test,true,false,6,,0|true"
    );
    let changed = signed.replace("Hello from dkimpy", "Hello from elsewhere");
    let r = run(&changed);
    assert!(
        r.starts_with("stat=1 num=1|py.test,s1,rsa-sha256,1024,1/0,@py.test,true,false,2,"),
        "{r}"
    );
    let unknown = signed.replace("d=py.test", "d=other.test");
    assert!(
        run(&unknown).starts_with("stat=3 num=1|other.test"),
        "{}",
        run(&unknown)
    );
    assert_eq!(
        run("From: a@b.test\nSubject: unsigned\n\nHi.\n"),
        "stat=2 num=0|false"
    );
    assert_eq!(p.errors(), 0);
}

/// Momentum's `outbound_smtp_auth_config(msg)` (and the 4.2 module's
/// `outbound_smtp_auth_v0_config(msg, ac, vctx)`): what the hook leaves in the message
/// context is the login; a hook that raises leaves the context as it was.
#[test]
fn the_outbound_smtp_auth_hook_sets_the_login_in_the_context() {
    let (_s, p) = load(
        r#"
local mod = {}
function mod:outbound_smtp_auth_config(msg)
  local key = msg:context_get(msys.core.VCTX_MESS, "outbound_smtp_auth_key")
  local rcpt = msg:rcptto()
  if rcpt == "boom@b.test" then error("no such tenant") end
  msg:context_set(msys.core.VCTX_MESS, "outbound_smtp_auth_user", key .. ":" .. rcpt)
  msg:context_set(msys.core.VCTX_MESS, "outbound_smtp_auth_pass", "secret")
end
function mod:outbound_smtp_auth_v0_config(msg, ac, vctx)
  msg:context_set(msys.core.VCTX_MESS, "outbound_smtp_auth_type", "LOGIN")
end
msys.registerModule("t", mod)
"#,
    );
    assert!(p.has_smtp_auth_config());
    let mut msg = Message {
        recipients: vec!["a@b.test".into()],
        context: [("outbound_smtp_auth_key".to_string(), "tenants".to_string())].into(),
        ..Message::default()
    };
    p.smtp_auth_config(&mut msg);
    assert_eq!(
        p.stats().errors[Callout::SmtpAuthConfig as usize]
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "{:?}",
        msg.context
    );
    assert_eq!(msg.context["outbound_smtp_auth_user"], "tenants:a@b.test");
    assert_eq!(msg.context["outbound_smtp_auth_pass"], "secret");
    assert_eq!(msg.context["outbound_smtp_auth_type"], "LOGIN");

    let mut msg = Message {
        recipients: vec!["boom@b.test".into()],
        context: [("outbound_smtp_auth_key".to_string(), "tenants".to_string())].into(),
        ..Message::default()
    };
    p.smtp_auth_config(&mut msg);
    assert!(!msg.context.contains_key("outbound_smtp_auth_user"));
    assert_eq!(
        p.stats().errors[Callout::SmtpAuthConfig as usize]
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}
