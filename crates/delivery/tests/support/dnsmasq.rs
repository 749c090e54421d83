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
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = dir.path().join("dnsmasq.conf");
        let log = dir.path().join("queries.log");
        std::fs::write(&conf, zone).expect("write dnsmasq.conf");
        let child = Command::new("dnsmasq")
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
        std::thread::sleep(std::time::Duration::from_millis(500));
        Some(Dnsmasq {
            child,
            port,
            log,
            _dir: dir,
        })
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
                Some(format!("{kind} {name}"))
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

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
