//! `cargo run --release -p bounce-bench [-- ROUNDS]`: nanoseconds per classification with the
//! shipped rules (and with a 100-line override file in front of them, as an operator might
//! have), over every reply of `tests/bounce/corpus-*.tsv`: the cost delivery pays once per
//! distinct failure reply (issue 22's goal: under 2 µs per attempt). Then adaptive delivery's
//! response-rule matching with Momentum's system rules (`bindery_adaptive::system`) on the
//! same replies and domains, and the two together: what a failed attempt costs with the
//! adaptive module loaded. Median of the rounds, one thread.

use std::time::Instant;

use bindery_bounce::{Classes, Classifier, Sources, overrides};

fn replies() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/bounce");
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !(name.starts_with("corpus-") && name.ends_with(".tsv")) {
            continue;
        }
        let text = std::fs::read(&p).unwrap_or_default();
        for line in String::from_utf8_lossy(&text).lines() {
            if line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() == 4 {
                out.push((f[1].to_string(), f[3].to_string()));
            }
        }
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn measure(c: &Classifier, replies: &[(String, String)], rounds: usize) -> (f64, u64) {
    let mut per = Vec::new();
    let mut sum = 0u64;
    for _ in 0..rounds {
        let t = Instant::now();
        for (d, r) in replies {
            sum += u64::from(c.smtp(r, d).class);
        }
        per.push(t.elapsed().as_nanos() as f64 / replies.len() as f64);
    }
    (median(per), sum)
}

/// Nanoseconds per reply to find the adaptive response rule it matches (most match none).
fn measure_rules(
    rules: &bindery_adaptive::RuleSet,
    replies: &[(String, String)],
    rounds: usize,
) -> (f64, usize) {
    let mut per = Vec::new();
    let mut hits = 0;
    for _ in 0..rounds {
        hits = 0;
        let t = Instant::now();
        for (d, r) in replies {
            hits += usize::from(rules.matching(d, r).is_some());
        }
        per.push(t.elapsed().as_nanos() as f64 / replies.len() as f64);
    }
    (median(per), hits)
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let replies = replies();
    assert!(!replies.is_empty(), "no corpus found");
    let mean_len = replies.iter().map(|(_, r)| r.len()).sum::<usize>() / replies.len();
    let t = Instant::now();
    let shipped = Classifier::shipped();
    let build_ms = t.elapsed().as_secs_f64() * 1000.0;
    // An operator's file: 50 domain rules and 50 global ones.
    let mut file = String::new();
    for i in 0..50 {
        file.push_str(&format!("domain{i}.test,10,account {i} is gone|forever\n"));
        file.push_str(&format!(",51,listed on private list {i}\n"));
    }
    let smtp = overrides::parse_smtp("bench.ovr", &file, &Classes::default()).expect("parses");
    let with_overrides = Classifier::new(Sources {
        smtp,
        ..Sources::shipped()
    })
    .expect("compiles");
    // The first pass fills the lazy DFA's cache: what the first failures after a start cost.
    let (cold, _) = measure(&shipped, &replies, 1);
    let (a, s1) = measure(&shipped, &replies, rounds);
    let (b, s2) = measure(&with_overrides, &replies, rounds);
    println!(
        "replies\t{}\tmean length\t{mean_len} bytes\tshipped rules\t{}\tbuild\t{build_ms:.1} ms",
        replies.len(),
        shipped.counts().base
    );
    println!("shipped rules, first pass (cold cache)\t{cold:.0} ns per classification");
    println!("shipped rules\t{a:.0} ns per classification (median of {rounds})");
    println!("with 100 overrides\t{b:.0} ns per classification (median of {rounds})");
    let system = bindery_adaptive::system::rules();
    let (m, hits) = measure_rules(&system, &replies, rounds);
    println!(
        "adaptive system rules	{m:.0} ns per reply matched (median of {rounds}; {hits} of {} replies match a rule)",
        replies.len()
    );
    println!(
        "classification + rule matching	{:.0} ns per failed attempt",
        a + m
    );
    // Keeps the work from being optimised away.
    if s1 == 0 || s2 == 0 {
        println!("(no class)");
    }
}
