//! Property tests over generated configurations.
//!
//! A random model (global options, groups, bindings, domain stanzas, some regex) is written
//! out as configuration text with random formatting (quoting, commas, comments, reopened
//! stanzas). Then:
//! - it loads without errors;
//! - `config show` output parses back to a tree of the same shape;
//! - every (binding, domain, option) lookup in the compiled snapshot equals what a direct,
//!   naive implementation of Momentum's documented chain computes from the model.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use bindery_config::schema::option_by_name;
use bindery_config::show::show;
use bindery_config::snapshot::{BindingId, Snapshot};
use bindery_config::syntax::RawValue;
use bindery_config::value;
use bindery_config::{LoadOptions, MemSource};
use proptest::prelude::*;

/// Options the generator sets, with a generator of valid values for each.
const OPTS: &[&str] = &[
    "max_outbound_connections",
    "message_expiration",
    "ehlo_hostname",
    "generate_bounces",
    "outbound_throttle_messages",
    "tls",
];

fn value_for(opt: usize) -> BoxedStrategy<String> {
    match opt {
        0 => (-1i64..500).prop_map(|n| n.to_string()).boxed(),
        1 => (0u64..1_000_000).prop_map(|n| n.to_string()).boxed(),
        // Strings that need quoting and escaping: spaces, quotes, backslashes, `#`, braces.
        2 => "[a-z .#{}\"'\\\\=()\\[\\],/*-]{0,12}".boxed(),
        3 => prop::sample::select(vec![
            "true", "false", "yes", "no", "on", "off", "enabled", "disabled", "1", "0",
        ])
        .prop_map(str::to_string)
        .boxed(),
        4 => (0u32..1000, 1u32..100)
            .prop_map(|(n, s)| format!("{n}/{s}"))
            .boxed(),
        _ => prop::sample::select(vec!["no", "ifavailable", "required", "IfAvailable"])
            .prop_map(str::to_string)
            .boxed(),
    }
}

type Opts = BTreeMap<usize, String>;

fn opts() -> impl Strategy<Value = Opts> {
    prop::collection::btree_map(0..OPTS.len(), Just(()), 0..3).prop_flat_map(|keys| {
        let keys: Vec<usize> = keys.into_keys().collect();
        let vals: Vec<_> = keys.iter().map(|&k| value_for(k)).collect();
        vals.prop_map(move |v| keys.iter().copied().zip(v).collect::<Opts>())
    })
}

const DOMAINS: &[&str] = &[
    "example.com",
    "mail.example.net",
    "Other.Example.NET",
    "/\\.net$/",
    "/^mail\\./",
];

fn domains() -> impl Strategy<Value = Vec<(usize, Opts)>> {
    prop::collection::vec((0..DOMAINS.len(), opts()), 0..3).prop_map(|mut v| {
        // One stanza per name and container: a second would merge into the first.
        let mut seen = std::collections::HashSet::new();
        v.retain(|(d, _)| seen.insert(DOMAINS[*d].to_ascii_lowercase()));
        v
    })
}

#[derive(Clone, Debug)]
struct Binding {
    name: String,
    opts: Opts,
    domains: Vec<(usize, Opts)>,
}

#[derive(Clone, Debug)]
struct Group {
    name: String,
    opts: Opts,
    domains: Vec<(usize, Opts)>,
    bindings: Vec<Binding>,
}

#[derive(Clone, Debug)]
struct Model {
    global: Opts,
    domains: Vec<(usize, Opts)>,
    groups: Vec<Group>,
    loose: Vec<Binding>,
}

fn binding(name: String) -> impl Strategy<Value = Binding> {
    (opts(), domains()).prop_map(move |(opts, domains)| Binding {
        name: name.clone(),
        opts,
        domains,
    })
}

fn model() -> impl Strategy<Value = Model> {
    let groups = prop::collection::vec((opts(), domains(), 0usize..3), 0..3);
    (opts(), domains(), groups, 0usize..3, any::<bool>())
        .prop_flat_map(|(global, domains, groups, loose, default_defined)| {
            let mut n = 0;
            let mut name = |prefix: &str| {
                n += 1;
                format!("{prefix}-{n}")
            };
            let groups: Vec<_> = groups
                .into_iter()
                .enumerate()
                .map(|(gi, (o, d, nb))| {
                    let gname = if gi == 0 && default_defined {
                        "default".to_string()
                    } else {
                        name("g")
                    };
                    let bs: Vec<_> = (0..nb).map(|_| binding(name("b"))).collect();
                    (Just(gname), Just(o), Just(d), bs)
                })
                .collect();
            let mut loose_names: Vec<String> = (0..loose).map(|_| name("b")).collect();
            if default_defined {
                loose_names.push("default".into());
            }
            let loose: Vec<_> = loose_names.into_iter().map(binding).collect();
            (Just(global), Just(domains), groups, loose)
        })
        .prop_map(|(global, domains, groups, loose)| Model {
            global,
            domains,
            groups: groups
                .into_iter()
                .map(|(name, opts, domains, bindings)| Group {
                    name,
                    opts,
                    domains,
                    bindings,
                })
                .collect(),
            loose,
        })
}

/// Writes text for the model. `style` varies quoting, commas, comments and whether a
/// binding's options are split across a reopened stanza.
fn render(m: &Model, style: u64) -> String {
    let mut out = String::new();
    let quote = |s: &str, bit: u64| {
        let bare_ok = !s.is_empty()
            && s.bytes().all(bindery_config::lexer::is_word_byte)
            && !s.starts_with("/*");
        if bare_ok && style & bit != 0 {
            s.to_string()
        } else {
            let mut q = String::new();
            value::write_quoted(&mut q, s).unwrap();
            q
        }
    };
    let opts_text = |o: &Opts, indent: &str, out: &mut String| {
        for (i, (k, v)) in o.iter().enumerate() {
            let key = if style & 2 != 0 {
                OPTS[*k].to_uppercase()
            } else {
                OPTS[*k].to_string()
            };
            let _ = writeln!(
                out,
                "{indent}{key} = {} # comment {i}",
                quote(v, 1 << (i % 8))
            );
        }
    };
    let domains_text = |ds: &[(usize, Opts)], indent: &str, out: &mut String| {
        for (d, o) in ds {
            let _ = writeln!(
                out,
                "{indent}domain {} {{ /* block */",
                quote(DOMAINS[*d], 4)
            );
            opts_text(o, &format!("{indent}  "), out);
            let _ = writeln!(out, "{indent}}}");
        }
    };
    let binding_text = |b: &Binding, indent: &str, out: &mut String| {
        let _ = writeln!(out, "{indent}binding {} {{", quote(&b.name, 8));
        opts_text(&b.opts, &format!("{indent}  "), out);
        let _ = writeln!(out, "{indent}}}");
        // Reopen the binding (at top level) for its domains: contents must merge.
        let _ = writeln!(out, "binding \"{}\" {{", b.name);
        domains_text(&b.domains, "  ", out);
        out.push_str("}\n");
    };
    opts_text(&m.global, "", &mut out);
    domains_text(&m.domains, "", &mut out);
    for g in &m.groups {
        let _ = writeln!(out, "binding_group \"{}\" {{", g.name);
        opts_text(&g.opts, "  ", &mut out);
        domains_text(&g.domains, "  ", &mut out);
        for b in &g.bindings {
            binding_text(b, "  ", &mut out);
        }
        out.push_str("}\n");
    }
    for b in &m.loose {
        binding_text(b, "", &mut out);
    }
    out
}

fn load(text: &str) -> bindery_config::ConfigTree {
    let source = MemSource::new().with("gen.conf", text);
    let (tree, diags) =
        bindery_config::load(&source, Path::new("gen.conf"), &LoadOptions::default()).unwrap();
    let errors = bindery_config::diag::render_all(&diags, &tree.sources);
    assert!(
        !diags.iter().any(|d| d.is_error()),
        "generated config has errors:\n{errors}\n{text}"
    );
    tree
}

/// The stanzas in a container that apply to `domain`, in the order a lookup consults them:
/// the exact one, then the matching regexes in order (Momentum's domain page: the exact
/// stanza wins for what it sets, a matching regex stanza supplies the rest).
fn matching<'a>(ds: &'a [(usize, Opts)], domain: &str) -> Vec<&'a Opts> {
    let domain = domain.to_ascii_lowercase();
    let exact = ds
        .iter()
        .filter(|(d, _)| DOMAINS[*d].to_ascii_lowercase() == domain);
    let regex = ds.iter().filter(|(d, _)| {
        let p = DOMAINS[*d];
        p.starts_with('/')
            && regex::Regex::new(&p[1..p.len() - 1])
                .unwrap()
                .is_match(&domain)
    });
    exact.chain(regex).map(|(_, o)| o).collect()
}

/// Momentum's documented chain, computed directly from the model:
/// B::D > G::D > B > G > D > global > default.
fn reference(m: &Model, binding: &str, domain: &str, opt: usize) -> Option<String> {
    let empty = Vec::new();
    let (b, g) = m
        .groups
        .iter()
        .find_map(|g| {
            g.bindings
                .iter()
                .find(|b| b.name == binding)
                .map(|b| (Some(b), Some(g)))
        })
        .or_else(|| {
            m.loose
                .iter()
                .find(|b| b.name == binding)
                .map(|b| (Some(b), m.groups.iter().find(|g| g.name == "default")))
        })
        .unwrap_or((None, m.groups.iter().find(|g| g.name == "default")));
    let levels: [Vec<&Opts>; 6] = [
        matching(b.map_or(&empty, |b| &b.domains), domain),
        matching(g.map_or(&empty, |g| &g.domains), domain),
        b.map(|b| &b.opts).into_iter().collect(),
        g.map(|g| &g.opts).into_iter().collect(),
        matching(&m.domains, domain),
        vec![&m.global],
    ];
    levels
        .into_iter()
        .flatten()
        .find_map(|o| o.get(&opt).cloned())
}

fn canonical(opt: usize, raw: &str) -> String {
    let id = option_by_name(OPTS[opt]).unwrap();
    value::check(id.def().ty, &RawValue::Scalar(raw.into()))
        .unwrap()
        .to_string()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn show_round_trips(m in model(), style in any::<u64>()) {
        let text = render(&m, style);
        let tree = load(&text);
        let shown = show(&tree);
        let again = load(&shown);
        prop_assert_eq!(tree.shape(), again.shape(), "show output:\n{}", shown);
        // And show is a fixed point.
        prop_assert_eq!(show(&again), shown);
    }

    #[test]
    fn snapshot_matches_documented_chain(m in model(), style in any::<u64>()) {
        let text = render(&m, style);
        let snap = Snapshot::compile(load(&text), 1);
        let mut names: Vec<String> = vec!["default".into()];
        names.extend(m.groups.iter().flat_map(|g| g.bindings.iter().map(|b| b.name.clone())));
        names.extend(m.loose.iter().map(|b| b.name.clone()));
        for name in &names {
            let b: BindingId = snap.binding_id(name).expect("binding exists");
            for domain in ["example.com", "EXAMPLE.com", "mail.example.net", "other.example.net", "mail.example.org", "unlisted.test"] {
                let key = snap.domain_key(domain);
                for (opt, opt_name) in OPTS.iter().enumerate() {
                    let id = option_by_name(opt_name).unwrap();
                    let got = snap.lookup(b, &key, id).map(|r| r.value.to_string());
                    let want = reference(&m, name, domain, opt)
                        .map(|raw| canonical(opt, &raw))
                        .or_else(|| bindery_config::snapshot::default_value(id).map(|v| v.to_string()));
                    prop_assert_eq!(got, want, "binding {} domain {} option {}\n{}", name, domain, opt_name, text);
                }
            }
        }
    }

    /// Arbitrary text built from the language's own tokens never panics the front end.
    #[test]
    fn front_end_never_panics(parts in prop::collection::vec(prop::sample::select(vec![
        "binding", "binding_group", "domain", "host", "\"x\"", "'y'", "{", "}", "(", ")", "[", "]", "=", ",",
        "max_outbound_connections", "include", "\"missing.conf\"", "/*", "*/", "#", "\n", " ", "\"", "\\",
        "esmtp_listener", "listen", "peer", "\":25\"", "10.0.0.0/8", "/^re(/", "é", "\u{0}",
    ]), 0..60)) {
        let text: String = parts.concat();
        let source = MemSource::new().with("junk.conf", text.as_str());
        let (tree, diags) = bindery_config::load(&source, Path::new("junk.conf"), &LoadOptions::default()).unwrap();
        let _ = bindery_config::diag::render_all(&diags, &tree.sources);
        let _ = show(&tree);
        let _ = Snapshot::compile(tree, 1);
    }
}
