//! `sink-bench ADDR:PORT`: an SMTP sink for the delivery benchmarks. It accepts every
//! connection and every message (PIPELINING, no TLS), and writes `sess=S mesg=N` lines to stdout
//! every 50 ms (sessions accepted, messages taken), the counter format of Postfix's `smtp-sink -c`, so `bench/*.sh` read either.
//!
//! Why not only `smtp-sink`: at 10,000 sessions it spent 12.8 s of CPU where bindery spent
//! 15 s for the same 20,000 messages, on a 2-core machine, so it set the pace being measured.
//! This one is a tokio task per connection and costs a few microseconds per session.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

async fn session(sock: TcpStream, count: Arc<AtomicU64>) -> std::io::Result<()> {
    // One write per batch of replies, sent at once: with Nagle a reply written after another
    // waits for the client's delayed ACK (40 ms).
    sock.set_nodelay(true)?;
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 sink-bench ESMTP\r\n").await?;
    let mut line = Vec::with_capacity(1024);
    let mut out = Vec::with_capacity(1024);
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).map(|v| v.to_ascii_uppercase());
        match verb.as_deref() {
            Some(b"EHLO") => out.extend_from_slice(b"250-sink-bench\r\n250 PIPELINING\r\n"),
            Some(b"DATA") => {
                out.extend_from_slice(b"354 go\r\n");
                w.write_all(&out).await?;
                out.clear();
                loop {
                    line.clear();
                    if r.read_until(b'\n', &mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == b".\r\n" {
                        break;
                    }
                }
                count.fetch_add(1, Ordering::Relaxed);
                out.extend_from_slice(b"250 2.0.0 ok\r\n");
            }
            Some(b"QUIT") => {
                out.extend_from_slice(b"221 bye\r\n");
                w.write_all(&out).await?;
                return Ok(());
            }
            _ => out.extend_from_slice(b"250 ok\r\n"),
        }
        // Answer once the client's pipelined batch has been read.
        if r.buffer().is_empty() {
            w.write_all(&out).await?;
            out.clear();
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let Some(addr) = std::env::args().nth(1) else {
        eprintln!("usage: sink-bench ADDR:PORT");
        std::process::exit(2);
    };
    let listener = match TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sink-bench: {addr}: {e}");
            std::process::exit(1);
        }
    };
    let count = Arc::new(AtomicU64::new(0));
    let shown = Arc::clone(&count);
    // Sessions accepted: a benchmark reads how many connections its messages took.
    let sessions = Arc::new(AtomicU64::new(0));
    let sessions_shown = Arc::clone(&sessions);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut o = std::io::stdout().lock();
            let _ = writeln!(
                o,
                "sess={} mesg={}",
                sessions_shown.load(Ordering::Relaxed),
                shown.load(Ordering::Relaxed)
            );
            let _ = o.flush();
        }
    });
    loop {
        match listener.accept().await {
            Ok((sock, _)) => {
                sessions.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(session(sock, Arc::clone(&count)));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}
