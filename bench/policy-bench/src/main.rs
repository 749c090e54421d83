//! What a Lua binding policy adds per message, measured the way the daemon calls it.
//!
//! Loads `examples/policy/bindery.conf` (the seed's if/elseif/else `validate_set_binding`
//! that reads a header, the sender's domain and the recipient's domain), then
//! `spe-relay.conf` (the sample repository's sparkpost-relay policy, unchanged: a context
//! read, `msys.config("get")` and two prints per message), and runs the
//! end-of-DATA phase (`Policy::message`) on a rotating set of four 2 KB messages, one per
//! branch. The same loop with no script gives the floor. Each round times `N` messages; the
//! median of the rounds is reported, and the run is repeated on every core at once to show
//! that threads do not wait on each other (each has its own Lua state).
//!
//! Usage: `cargo run --release -p policy-bench [-- MESSAGES ROUNDS]`

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bindery_config::{FsSource, LoadOptions, Snapshot};
use bindery_policy::{Conn, Message, Policy, Verdict};

fn snapshot(conf: &Path) -> Arc<Snapshot> {
    let opts = LoadOptions {
        node: "bench".into(),
        search_path: Some(String::new()),
    };
    let (tree, diags) = match bindery_config::load(&FsSource, conf, &opts) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("cannot read {}: {e}", conf.display());
            std::process::exit(2);
        }
    };
    if diags.iter().any(|d| d.is_error()) {
        eprint!(
            "{}",
            bindery_config::diag::render_all(&diags, &tree.sources)
        );
        std::process::exit(2);
    }
    Arc::new(Snapshot::compile(tree, 1))
}

/// Four envelopes, one per branch of the example script, each with a 2 KB message.
fn messages() -> Vec<Message> {
    let filler = "x".repeat(76);
    let body: String = (0..20).map(|_| format!("{filler}\r\n")).collect();
    let make = |from: &str, to: &str, extra: &str| {
        let text = format!(
            "Received: from client.example (client.example [192.0.2.1]) by mx.example\r\n\
             From: Sender <{from}>\r\nTo: <{to}>\r\nSubject: a message of about two kilobytes\r\n\
             Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1234@example.com>\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n{extra}\r\n{body}"
        );
        Message {
            sender: from.into(),
            recipients: vec![to.into()],
            body: text.into_bytes(),
            ..Message::default()
        }
    };
    vec![
        make("app@example.com", "a@example.net", "X-Binding: partner\r\n"),
        make("news@list.example.com", "b@example.net", ""),
        make("shop@example.com", "c@partner.example.net", ""),
        make("someone@example.com", "d@example.net", ""),
    ]
}

/// Nanoseconds per message over `n` messages.
fn round(policy: &Policy, msgs: &mut [Message], n: usize) -> f64 {
    let peer: IpAddr = [192, 0, 2, 1].into();
    let mut conn = Conn::new(peer, "bench", &[]);
    let started = Instant::now();
    let mut assigned = 0usize;
    for i in 0..n {
        let m = &mut msgs[i % msgs.len()];
        m.binding = None;
        if let Verdict::Accept { binding: Some(_) } = policy.message(&mut conn, m) {
            assigned += 1;
        }
    }
    let ns = started.elapsed().as_nanos() as f64 / n as f64;
    std::hint::black_box(assigned);
    ns
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median ns/message on `threads` threads at once (each thread's own median).
fn measure(policy: &Policy, threads: usize, n: usize, rounds: usize) -> f64 {
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let p = policy.clone();
            std::thread::spawn(move || {
                let mut msgs = messages();
                round(&p, &mut msgs, n / 10); // warm up: builds this thread's Lua state
                median((0..rounds).map(|_| round(&p, &mut msgs, n)).collect())
            })
        })
        .collect();
    median(handles.into_iter().filter_map(|h| h.join().ok()).collect())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let rounds: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(7);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    println!("policy\tthreads\tno_script_ns\tscript_ns\tadded_ns");
    for (name, conf) in [
        ("example", root.join("examples/policy/bindery.conf")),
        (
            "spe-relay",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("spe-relay.conf"),
        ),
    ] {
        run(name, &conf, n, rounds);
    }
}

/// Measures one policy: every message must get a binding from it.
fn run(name: &str, conf: &Path, n: usize, rounds: usize) {
    let snap = snapshot(conf);
    let scripted = match Policy::load(snap.clone()) {
        Ok(p) => p,
        Err(e) => {
            eprint!("{}", bindery_policy::render(&e, &snap));
            std::process::exit(2);
        }
    };
    let none = Policy::empty(snap);
    // Every branch must assign: a broken example would make a fast, meaningless number.
    let mut msgs = messages();
    let mut conn = Conn::new([192, 0, 2, 1].into(), "bench", &[]);
    for m in &mut msgs {
        assert!(matches!(
            scripted.message(&mut conn, m),
            Verdict::Accept { binding: Some(_) }
        ));
    }
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    for threads in [1, cores] {
        let base = measure(&none, threads, n, rounds);
        let with = measure(&scripted, threads, n, rounds);
        println!(
            "{name}\t{threads}\t{base:.0}\t{with:.0}\t{:.0}",
            (with - base).max(0.0)
        );
        if cores == 1 {
            break;
        }
    }
    assert_eq!(
        scripted.errors(),
        0,
        "the script raised during the benchmark"
    );
}
