//! Configuration benchmark (run in release mode through `bench/config.sh`).
//!
//! 1. Generates a configuration of 5,000 bindings in 50 binding groups, each binding with 20
//!    domain stanzas (100,000 in all), plus group and global domain stanzas, and writes it to
//!    a temporary file.
//! 2. Loads (read, parse, build, check) and compiles it `RUNS` times: median, min, max.
//! 3. Measures the hot-path lookup of one (binding, domain, option): with prepared ids (what
//!    a queue holds) and from names (binding name and domain string each time), over batches
//!    of random triples; reports the median batch's nanoseconds per lookup.
//!
//! Goals from issue 2: load+compile under 1 s, a lookup under 100 ns.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

use bindery_config::schema::option_by_name;
use bindery_config::snapshot::Snapshot;
use bindery_config::{FsSource, LoadOptions};

const GROUPS: usize = 50;
const BINDINGS_PER_GROUP: usize = 100;
const DOMAINS_PER_BINDING: usize = 20;
const RUNS: usize = 7;
const BATCHES: usize = 9;
const LOOKUPS_PER_BATCH: usize = 1_000_000;

fn generate() -> String {
    let mut out = String::with_capacity(8 << 20);
    out.push_str("max_outbound_connections = 32\nmessage_expiration = 604800\n");
    for d in 0..20 {
        let _ = writeln!(
            out,
            "domain \"global{d}.example\" {{ max_outbound_connections = {} }}",
            10 + d
        );
    }
    out.push_str("domain \"/^mx[0-9]+\\.regex\\.example$/\" { retry_interval = 600 }\n");
    for g in 0..GROUPS {
        let _ = writeln!(
            out,
            "binding_group \"group{g}\" {{\n  outbound_throttle_messages = \"{}/60\"",
            100 + g
        );
        let _ = writeln!(
            out,
            "  domain \"yahoo.com\" {{ max_outbound_connections = 5 }}"
        );
        for b in 0..BINDINGS_PER_GROUP {
            let n = g * BINDINGS_PER_GROUP + b;
            let _ = writeln!(
                out,
                "  binding \"b{n}\" {{\n    bind_address = 10.{}.{}.{}\n    ehlo_hostname = \"mta{n}.example.com\"\n    max_outbound_connections = {}",
                n / 65536,
                (n / 256) % 256,
                n % 256,
                20 + n % 7
            );
            for d in 0..DOMAINS_PER_BINDING {
                let _ = writeln!(
                    out,
                    "    domain \"d{d}.example{}.com\" {{ max_outbound_connections = {} message_expiration = {} }}",
                    n % 10,
                    1 + d,
                    3600 * (1 + d)
                );
            }
            out.push_str("  }\n");
        }
        out.push_str("}\n");
    }
    out
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A small deterministic generator, so runs compare like with like.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn main() {
    let text = generate();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ecelerity.conf");
    std::fs::write(&path, &text).expect("write config");
    println!(
        "config: {GROUPS} groups, {} bindings, {} domain stanzas, {:.1} MB",
        GROUPS * BINDINGS_PER_GROUP,
        GROUPS * BINDINGS_PER_GROUP * DOMAINS_PER_BINDING + GROUPS + 21,
        text.len() as f64 / 1e6
    );

    let mut load_ms = Vec::new();
    let mut compile_ms = Vec::new();
    let mut total_ms = Vec::new();
    let mut snap = None;
    for run in 0..RUNS {
        let t0 = Instant::now();
        let (tree, diags) =
            bindery_config::load(&FsSource, &path, &LoadOptions::default()).expect("load");
        let t1 = Instant::now();
        assert!(
            diags.is_empty(),
            "{}",
            bindery_config::diag::render_all(&diags, &tree.sources)
        );
        let s = Snapshot::compile(tree, run as u64 + 1);
        let t2 = Instant::now();
        load_ms.push((t1 - t0).as_secs_f64() * 1e3);
        compile_ms.push((t2 - t1).as_secs_f64() * 1e3);
        total_ms.push((t2 - t0).as_secs_f64() * 1e3);
        snap = Some(s);
    }
    let snap = snap.expect("at least one run");
    let (lo, hi) = (
        total_ms.iter().cloned().fold(f64::MAX, f64::min),
        total_ms.iter().cloned().fold(0.0, f64::max),
    );
    println!(
        "load+compile: median {:.0} ms (load {:.0} ms, compile {:.0} ms), min {lo:.0} ms, max {hi:.0} ms over {RUNS} runs  [goal < 1000 ms]",
        median(&mut total_ms),
        median(&mut load_ms),
        median(&mut compile_ms)
    );

    // Lookup triples: bindings, destination names (half with their own stanza, some global,
    // some unlisted), and options along the chain.
    let opts: Vec<_> = [
        "max_outbound_connections",
        "message_expiration",
        "outbound_throttle_messages",
        "ehlo_hostname",
        "retry_interval",
    ]
    .iter()
    .map(|o| option_by_name(o).expect("option"))
    .collect();
    let mut rng = XorShift(0x9E3779B97F4A7C15);
    let bindings: Vec<_> = snap.bindings().collect();
    let names: Vec<String> = (0..4096)
        .map(|i| match i % 4 {
            0 | 1 => format!(
                "d{}.example{}.com",
                rng.next(DOMAINS_PER_BINDING),
                rng.next(10)
            ),
            2 => format!("global{}.example", rng.next(20)),
            _ => format!("unlisted{i}.example.org"),
        })
        .collect();
    let binding_names: Vec<String> = bindings
        .iter()
        .map(|&b| snap.binding_name(b).to_string())
        .collect();
    let keys: Vec<_> = names.iter().map(|n| snap.domain_key(n)).collect();
    let triples: Vec<(usize, usize, usize)> = (0..LOOKUPS_PER_BATCH)
        .map(|_| {
            (
                rng.next(bindings.len()),
                rng.next(keys.len()),
                rng.next(opts.len()),
            )
        })
        .collect();

    let mut by_id = Vec::new();
    let mut by_name = Vec::new();
    for _ in 0..BATCHES {
        let t = Instant::now();
        let mut found = 0usize;
        for &(b, d, o) in &triples {
            found += black_box(snap.lookup(bindings[b], &keys[d], opts[o])).is_some() as usize;
        }
        by_id.push(t.elapsed().as_nanos() as f64 / triples.len() as f64);
        assert!(found > 0);

        let t = Instant::now();
        for &(b, d, o) in &triples {
            let bid = snap.binding_id(&binding_names[b]).expect("binding");
            let key = snap.domain_key(&names[d]);
            black_box(snap.lookup(bid, &key, opts[o]));
        }
        by_name.push(t.elapsed().as_nanos() as f64 / triples.len() as f64);
    }
    println!(
        "lookup (prepared binding id + domain key): median {:.1} ns over {BATCHES} batches of {LOOKUPS_PER_BATCH}  [goal < 100 ns]",
        median(&mut by_id)
    );
    println!(
        "lookup from names (binding name + domain string, incl. regex match): median {:.1} ns",
        median(&mut by_name)
    );
}
