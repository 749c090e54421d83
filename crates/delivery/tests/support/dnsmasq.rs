//! A real dnsmasq on a free loopback port, serving the zone lines a test gives it, for the
//! resolver tests. `None` (with a line saying so) where dnsmasq is not installed; `.ci/run`
//! installs it.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct Dnsmasq {
    child: Child,
    pub port: u16,
    /// The query log (`--log-queries`), one line per question.
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Dnsmasq {
    /// Starts dnsmasq with `zone` (dnsmasq.conf lines) as its configuration.
    pub fn start(zone: &str) -> Option<Dnsmasq> {
        if Command::new("dnsmasq").arg("--version").output().is_err() {
            eprintln!("dnsmasq not installed: skipped");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = dir.path().join("dnsmasq.conf");
        let log = dir.path().join("queries.log");
        std::fs::write(&conf, zone).expect("write dnsmasq.conf");
        // The free UDP port may have its TCP twin taken (dnsmasq binds both) or be taken
        // again before dnsmasq binds it; then dnsmasq exits and every lookup would time out.
        // So each try waits until the server answers a question, and a server that does not
        // is replaced on another port.
        for _ in 0..5 {
            let port = UdpSocket::bind("127.0.0.1:0")
                .and_then(|s| s.local_addr())
                .map(|a| a.port())
                .expect("a free port");
            let mut child = Command::new("dnsmasq")
                .arg("-k")
                .arg(format!("--conf-file={}", conf.display()))
                .args(["--no-resolv", "--no-hosts", "--listen-address=127.0.0.1"])
                .args(["--bind-interfaces", "--pid-file=", "--local=/test/"])
                .arg("--log-queries")
                .arg(format!("--log-facility={}", log.display()))
                .arg(format!("--port={port}"))
                .arg(if is_root() { "--user=root" } else { "--user=" })
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start dnsmasq");
            if answers(port, &mut child) {
                return Some(Dnsmasq {
                    child,
                    port,
                    log,
                    _dir: dir,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("dnsmasq did not answer on any of 5 ports");
    }

    /// A resolv.conf naming this server.
    pub fn resolv_conf(&self) -> bindery_delivery::resolv_conf::ResolvConf {
        bindery_delivery::resolv_conf::parse(
            "resolv.conf",
            &format!(
                "nameserver 127.0.0.1:{}\noptions timeout:5 attempts:2\n",
                self.port
            ),
        )
        .expect("resolv.conf")
    }

    /// The questions asked so far, as "TYPE name" (`query[MX] d0.test from ...`).
    pub fn questions(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let q = l.split("query[").nth(1)?;
                let (kind, rest) = q.split_once("] ")?;
                let name = rest.split_whitespace().next()?;
                // The start-up probe (`answers`) is not the test's question.
                (name != "probe.test").then(|| format!("{kind} {name}"))
            })
            .collect()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asks `probe.test A` until the server answers (any reply will do), for up to 10 s, or
/// until dnsmasq has exited.
fn answers(port: u16, child: &mut Child) -> bool {
    let Ok(sock) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(std::time::Duration::from_millis(200)));
    // Header: id 0x6262, recursion desired, one question; then probe.test, type A, class IN.
    let mut q = vec![0x62, 0x62, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(b"\x05probe\x04test\x00\x00\x01\x00\x01");
    let mut buf = [0u8; 512];
    for _ in 0..50 {
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        if sock.send_to(&q, ("127.0.0.1", port)).is_ok()
            && matches!(sock.recv_from(&mut buf), Ok((n, _)) if n >= 12 && buf[..2] == q[..2])
        {
            return true;
        }
    }
    false
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
