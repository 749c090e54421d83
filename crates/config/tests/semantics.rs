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
