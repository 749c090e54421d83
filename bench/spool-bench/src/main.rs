//! `spool-bench [DIR]`: stores N 2 KiB messages from W concurrent writers into a fresh spool
//! under DIR (default /var/tmp), for each sync method, and prints messages per second and
//! the mean batch size. Env: N (default 20000), WRITERS (default "1 20").

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Instant;

use bindery_spool::{DiskSpool, Envelope, IdGenerator, Recipient, Spool, SyncMethod};

fn envelope(id: String) -> Envelope {
    Envelope {
        id: id.into(),
        received: 0,
        next_attempt: 0,
        peer: "127.0.0.1".into(),
        helo: "bench".into(),
        sender: "a@example.com".into(),
        recipients: Box::new([Recipient::pending("b@example.net")]),
        binding_group: "default".into(),
        binding: "default".into(),
        ..Envelope::default()
    }
}

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/var/tmp".into());
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let writers: Vec<usize> = std::env::var("WRITERS")
        .unwrap_or_else(|_| "1 20".into())
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let body = vec![b'x'; 2048];
    for method in [SyncMethod::Fsync, SyncMethod::Syncfs] {
        for &w in &writers {
            let tmp = tempfile::tempdir_in(&dir).expect("temp dir");
            let spool = Arc::new(DiskSpool::open(tmp.path(), 0o640, method).expect("open"));
            let ids = Arc::new(IdGenerator::new());
            let t0 = Instant::now();
            let threads: Vec<_> = (0..w)
                .map(|_| {
                    let (spool, ids, body) = (Arc::clone(&spool), Arc::clone(&ids), body.clone());
                    std::thread::spawn(move || {
                        for _ in 0..n / w {
                            let (tx, rx) = mpsc::channel();
                            spool.store(
                                envelope(ids.next(0)),
                                body.clone(),
                                Box::new(move |r| drop(tx.send(r))),
                            );
                            rx.recv().expect("completion").expect("store");
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().expect("writer");
            }
            let secs = t0.elapsed().as_secs_f64();
            let done = (n / w) * w;
            let batches = spool.stats().batches.load(Ordering::Relaxed);
            println!(
                "{method:?}\twriters={w}\t{:.0} msg/s\tmean batch {:.1}",
                done as f64 / secs,
                done as f64 / batches as f64
            );
        }
    }
}
