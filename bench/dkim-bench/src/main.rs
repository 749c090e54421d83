//! CPU per DKIM signature, one thread: `dkim-bench [N] [ROUNDS]` signs N messages of 2 KB
//! and N/10 of 100 KB with each key (RSA 1024, 2048, 4096 and Ed25519, made by `openssl`)
//! and prints the median over ROUNDS of µs per signature, beside `openssl speed`'s own
//! figure for the same key in the same run: the floor the crypto sets (issue 20's goal is
//! within 1.2× of it, hashing and header work included).

use std::process::Command;
use std::time::Instant;

use bindery_dkim::{Canon, Key, Options, sign};

fn openssl_speed(alg: &str) -> Option<f64> {
    // `openssl speed -seconds 2 rsa2048`: "rsa 2048 bits 0.000390s 0.000012s ..." (sign
    // time in seconds first); `ed25519`: "253 bits EdDSA (Ed25519)   0.0000s ..." with
    // sign/s as the third number from the end.
    let out = Command::new("openssl")
        .args(["speed", "-seconds", "2", alg])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| {
        let l = l.trim_start();
        l.starts_with("rsa ") || l.contains("EdDSA")
    })?;
    let nums: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.trim_end_matches('s').parse::<f64>().ok())
        .collect();
    if line.contains("EdDSA") {
        // bits, sign s, verify s, sign/s, verify/s
        let per_sec = nums.get(nums.len().checked_sub(2)?)?;
        Some(1e6 / per_sec)
    } else {
        // bits, sign s, verify s, ...
        Some(nums.get(1)? * 1e6)
    }
}

fn message(size: usize) -> Vec<u8> {
    let mut m = b"From: Alice <alice@sign.test>\r\nTo: bob@example.test\r\nSubject: A benchmark message\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <1@sign.test>\r\nContent-Type: text/plain\r\n\r\n".to_vec();
    while m.len() < size {
        m.extend_from_slice(
            b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n",
        );
    }
    m
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let dir = std::env::temp_dir().join(format!("dkim-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    let keys = [
        ("rsa1024", vec!["genrsa", "-out", "K", "1024"], "rsa1024"),
        ("rsa2048", vec!["genrsa", "-out", "K", "2048"], "rsa2048"),
        ("rsa4096", vec!["genrsa", "-out", "K", "4096"], "rsa4096"),
        (
            "ed25519",
            vec!["genpkey", "-algorithm", "ed25519", "-out", "K"],
            "ed25519",
        ),
    ];
    println!("key\tmessage\tsignatures\tus_per_signature\topenssl_us\tratio");
    for (name, make, speed) in keys {
        let path = dir.join(format!("{name}.pem"));
        let make: Vec<String> = make
            .iter()
            .map(|a| {
                if *a == "K" {
                    path.display().to_string()
                } else {
                    a.to_string()
                }
            })
            .collect();
        let ok = Command::new("openssl")
            .args(&make)
            .output()
            .map(|o| o.status.success());
        assert!(matches!(ok, Ok(true)), "openssl could not make {name}");
        let key = Key::from_pem(&std::fs::read(&path).expect("the key")).expect("loads");
        let floor = openssl_speed(speed);
        for (label, size, count) in [("2KB", 2048, n), ("100KB", 100 * 1024, (n / 10).max(1))] {
            let m = message(size);
            let o = Options {
                domain: "sign.test".into(),
                selector: name.into(),
                headers: [
                    "from",
                    "to",
                    "subject",
                    "date",
                    "message-id",
                    "content-type",
                ]
                .map(String::from)
                .to_vec(),
                oversign: vec!["from".into()],
                header_canon: Canon::Relaxed,
                body_canon: Canon::Relaxed,
                ..Options::default()
            };
            let mut per = Vec::new();
            for _ in 0..rounds {
                let start = Instant::now();
                for _ in 0..count {
                    std::hint::black_box(sign(&m, &key, &o).expect("signs"));
                }
                per.push(start.elapsed().as_secs_f64() * 1e6 / count as f64);
            }
            let us = median(per);
            let (f, ratio) = match floor {
                Some(f) => (format!("{f:.1}"), format!("{:.2}", us / f)),
                None => ("-".into(), "-".into()),
            };
            println!(
                "{}\t{label}\t{count}\t{us:.1}\t{f}\t{ratio}",
                key.describe()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
