//! Focused behaviour of the configuration engine: includes, throttle identity, schema sanity.

use std::path::Path;

use bindery_config::schema::{OPTIONS, OptionId, ScopeKind, option_by_name};
use bindery_config::snapshot::{Origin, Snapshot, default_value};
use bindery_config::{ConfigTree, Diagnostic, LoadOptions, MemSource};

fn load(source: &MemSource, main: &str, node: &str) -> (ConfigTree, Vec<Diagnostic>) {
    let opts = LoadOptions {
        node: node.into(),
        search_path: None,
    };
    bindery_config::load(source, Path::new(main), &opts).unwrap()
}

fn ok(source: &MemSource, main: &str) -> Snapshot {
    let (tree, diags) = load(source, main, "node1");
    assert!(
        diags.iter().all(|d| !d.is_error()),
        "{}",
        bindery_config::diag::render_all(&diags, &tree.sources)
    );
    Snapshot::compile(tree, 7)
}

fn opt(name: &str) -> OptionId {
    option_by_name(name).unwrap()
}

#[test]
fn every_default_parses_as_its_own_type() {
    for (i, def) in OPTIONS.iter().enumerate() {
        if def.default.is_some() {
            assert!(
                default_value(OptionId(i as u16)).is_some(),
                "default of {} does not parse",
                def.name
            );
        }
        assert!(
            !def.scopes.iter().collect::<Vec<_>>().is_empty(),
            "{} has no scope",
            def.name
        );
        // Canonical names are unique ignoring case.
        assert_eq!(
            option_by_name(def.name),
            Some(OptionId(i as u16)),
            "{} is listed twice",
            def.name
        );
    }
    assert!(OPTIONS.len() >= 75);
}

#[test]
fn throttles_resolve_by_reference() {
    // Momentum: b1, b2 and domain d together send 10 msg/s: one bucket, the group's.
    let src = MemSource::new().with(
        "/c/e.conf",
        r#"binding_group "g" {
  outbound_throttle_messages = "10"
  binding "b1" { }
  binding "b2" { }
  binding "b3" { outbound_throttle_messages = "10" }
  domain "d.example" { }
}
domain "/\.example$/" { outbound_throttle_connections = "5/60" }
"#,
    );
    let snap = ok(&src, "/c/e.conf");
    let t = opt("outbound_throttle_messages");
    let d = snap.domain_key("d.example");
    let origin = |b: &str| {
        snap.lookup(snap.binding_id(b).unwrap(), &d, t)
            .unwrap()
            .origin
    };
    assert_eq!(origin("b1"), origin("b2"));
    // Redeclared with the same value: a bucket of its own.
    assert_ne!(origin("b1"), origin("b3"));
    assert!(matches!(origin("b1"), Origin::Scope(_)));
    // One regex stanza is one bucket across every name it matches.
    let c = opt("outbound_throttle_connections");
    let b = snap.binding_id("b1").unwrap();
    let x = snap.lookup(b, &snap.domain_key("x.example"), c).unwrap();
    let y = snap.lookup(b, &snap.domain_key("y.example"), c).unwrap();
    assert_eq!(x.origin, y.origin);
    assert_eq!(x.value.to_string(), "\"5/60\"");
    assert_eq!(snap.generation, 7);
}

#[test]
fn folder_includes_are_lexical_and_skip_hidden_files() {
    let src = MemSource::new()
        .with("/c/e.conf", "include \"d\"\n")
        .with("/c/d/20-b.conf", "max_outbound_connections = 2\n")
        .with(
            "/c/d/10-a.conf",
            "max_outbound_connections = 1\nmessage_expiration = 60\n",
        )
        .with("/c/d/.hidden.conf", "message_expiration = 999\n")
        .with("/c/d/sub/x.conf", "this would not parse\n");
    let snap = ok(&src, "/c/e.conf");
    assert_eq!(
        snap.global(opt("max_outbound_connections"))
            .unwrap()
            .to_string(),
        "2"
    );
    assert_eq!(
        snap.global(opt("message_expiration")).unwrap().to_string(),
        "60"
    );
}

#[test]
fn includes_inside_stanzas_node_search_path_cycles_and_readonly() {
    let src = MemSource::new()
        .with("/c/e.conf", "binding \"b\" { include \"b.conf\" }\ninclude \"node-local.conf\"\ninclude \"b.conf\"\n")
        .with("/c/conf/global/b.conf", "generate_bounces = false\n")
        .with("/c/conf/node1/node-local.conf", "hostname = \"node1.example\"\n")
        .with("/c/conf/default/node-local.conf", "hostname = \"default.example\"\n");
    let snap = ok(&src, "/c/e.conf");
    let tree = &snap.tree;
    let b = tree
        .find(bindery_config::tree::ROOT, ScopeKind::Binding, Some("b"))
        .unwrap();
    assert!(tree.scope(b).setting(opt("generate_bounces")).is_some());
    assert_eq!(
        snap.global(opt("hostname")).unwrap().to_string(),
        "\"node1.example\""
    );
    // b.conf was included twice: read-only. The main file is not.
    let ro: Vec<_> = tree
        .sources
        .files()
        .filter(|(_, f)| f.readonly)
        .map(|(_, f)| f.path.clone())
        .collect();
    assert_eq!(ro, vec![Path::new("/c/conf/global/b.conf").to_path_buf()]);

    let (_, diags) = load(&src, "/c/e.conf", "unknown-node");
    assert!(diags.is_empty(), "falls back to conf/default");

    let cyc = MemSource::new()
        .with("/c/a.conf", "include \"b.conf\"\n")
        .with("/c/b.conf", "include \"a.conf\"\n");
    let (_, diags) = load(&cyc, "/c/a.conf", "n");
    assert_eq!(diags.len(), 1);
    assert!(diags[0].message.contains("include cycle"), "{:?}", diags[0]);
}

#[test]
fn default_binding_and_group_always_exist() {
    let snap = ok(
        &MemSource::new().with("/e.conf", "bind_address = 192.0.2.7\n"),
        "/e.conf",
    );
    let d = snap.binding_id("default").unwrap();
    assert_eq!(snap.group_name(snap.group_of(d)), "default");
    let key = snap.domain_key("anything.example");
    assert_eq!(
        snap.lookup(d, &key, opt("bind_address"))
            .unwrap()
            .value
            .to_string(),
        "\"192.0.2.7\""
    );
    // Unset everywhere, no default: nothing.
    assert!(snap.lookup(d, &key, opt("gateway")).is_none());
}

#[test]
fn the_local_changes_file_is_read_last_and_its_errors_point_into_it() {
    let main = r#"
Local_Changes_File = "/etc/bindery/local_changes.conf"
binding "b1" { EHLO_Hostname = "files.example" }
"#;
    let local = "Binding \"b1\" {\n    EHLO_Hostname = local.example\n}\nBinding \"new1\" { Bind_Address = 127.0.0.4 }\n";
    let source = MemSource::new()
        .with("/etc/bindery/bindery.conf", main)
        .with("/etc/bindery/local_changes.conf", local);
    let (mut tree, diags) = load(&source, "/etc/bindery/bindery.conf", "n");
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(
        bindery_config::local_changes_path(&tree),
        std::path::Path::new("/etc/bindery/local_changes.conf")
    );
    let diags = bindery_config::load_local_changes(&mut tree, &source);
    assert!(diags.is_empty(), "{diags:?}");
    let snap = Snapshot::compile(tree, 1);
    let b1 = snap.binding_id("b1").expect("b1");
    let got = snap.chain(Some(b1), None, None).get(opt("EHLO_Hostname"));
    assert_eq!(
        got.map(|r| r.value.plain()).as_deref(),
        Some("local.example"),
        "the local changes file wins"
    );
    assert!(snap.binding_id("new1").is_some());

    // A broken local changes file: the error names it, with line, column and caret.
    let source = MemSource::new()
        .with("/etc/bindery/bindery.conf", main)
        .with(
            "/etc/bindery/local_changes.conf",
            "Binding \"b1\" {\n    EHLO_Hostnme = x\n}\n",
        );
    let (mut tree, _) = load(&source, "/etc/bindery/bindery.conf", "n");
    let diags = bindery_config::load_local_changes(&mut tree, &source);
    let text = bindery_config::diag::render_all(&diags, &tree.sources);
    assert!(
        text.starts_with("/etc/bindery/local_changes.conf:2:5: error: unknown option"),
        "{text}"
    );
    assert!(text.contains("did you mean `EHLO_Hostname`"), "{text}");

    // No such file: nothing to read, nothing to say.
    let source = MemSource::new().with("/etc/bindery/bindery.conf", main);
    let (mut tree, _) = load(&source, "/etc/bindery/bindery.conf", "n");
    assert!(bindery_config::load_local_changes(&mut tree, &source).is_empty());
}
