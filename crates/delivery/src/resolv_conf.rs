//! `resolv_conf = "FILE"`: the name servers delivery asks, in resolv.conf format.
//!
//! `nameserver` lines and the `timeout:N` and `attempts:N` of an `options` line matter (how
//! long a lookup may take decides how soon a dead name server defers mail); other keywords
//! (`search`, `domain`, other options) are accepted and ignored, since delivery always asks
//! for complete names. As an extension, a
//! server may carry a port: `nameserver 127.0.0.1:5353` or `nameserver [::1]:5353`, so tests
//! and split-horizon setups can use a resolver on a high port.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// What delivery takes from a resolv.conf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvConf {
    pub servers: Vec<SocketAddr>,
    /// `options timeout:N`: seconds to wait for one answer (resolv.conf caps it at 30).
    pub timeout: Option<Duration>,
    /// `options attempts:N`: how many times each server is asked (capped at 5).
    pub attempts: Option<usize>,
}

/// A line that is not a usable `nameserver` entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: error: {message}")]
pub struct ResolvConfError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Parses one address: `IP`, `IP:PORT`, `[IPv6]` or `[IPv6]:PORT`. A bare IPv6 address
/// takes no port (its colons would be ambiguous).
pub fn parse_server(s: &str) -> Option<SocketAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let ip: IpAddr = ip.parse().ok()?;
        let port = match after {
            "" => 53,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        return Some(SocketAddr::new(ip, port));
    }
    let (ip, port) = s.rsplit_once(':')?;
    Some(SocketAddr::new(ip.parse().ok()?, port.parse().ok()?))
}

/// Every name server in `text`, in order, and the lookup options. `file` names the file in
/// errors. As in glibc, a malformed option is ignored and values are capped.
pub fn parse(file: &str, text: &str) -> Result<ResolvConf, ResolvConfError> {
    let mut servers = Vec::new();
    let (mut timeout, mut attempts) = (None, None);
    for (i, line) in text.lines().enumerate() {
        let content = line.split(['#', ';']).next().unwrap_or("");
        let mut words = content.split_whitespace();
        match words.next() {
            Some("nameserver") => {}
            Some("options") => {
                for w in words {
                    let n = |v: &str| v.parse::<u64>().ok();
                    if let Some(v) = w.strip_prefix("timeout:").and_then(n) {
                        timeout = Some(Duration::from_secs(v.clamp(1, 30)));
                    } else if let Some(v) = w.strip_prefix("attempts:").and_then(n) {
                        attempts = Some(v.clamp(1, 5) as usize);
                    }
                }
                continue;
            }
            _ => continue,
        }
        let err = |col: usize, message: String| ResolvConfError {
            file: file.to_string(),
            line: i + 1,
            col,
            message,
        };
        let Some(addr) = words.next() else {
            return Err(err(line.len() + 1, "nameserver needs an address".into()));
        };
        let col = line.find(addr).unwrap_or(0) + 1;
        match parse_server(addr) {
            Some(s) => servers.push(s),
            None => {
                return Err(err(
                    col,
                    format!("{addr:?} is not an address (IP, IP:PORT or [IPv6]:PORT)"),
                ));
            }
        }
    }
    if servers.is_empty() {
        return Err(ResolvConfError {
            file: file.to_string(),
            line: 1,
            col: 1,
            message: "no nameserver line".into(),
        });
    }
    Ok(ResolvConf {
        servers,
        timeout,
        attempts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_with_and_without_ports() {
        let text = "# test\nsearch example\nnameserver 127.0.0.1:5353\nnameserver [::1]:5300\nnameserver 10.0.0.1 # comment\nnameserver ::1\n";
        let got = parse("r.conf", text).unwrap();
        assert_eq!((got.timeout, got.attempts), (None, None));
        let got = got.servers;
        let want: Vec<SocketAddr> = vec![
            "127.0.0.1:5353".parse().unwrap(),
            "[::1]:5300".parse().unwrap(),
            "10.0.0.1:53".parse().unwrap(),
            "[::1]:53".parse().unwrap(),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn timeout_and_attempts_options() {
        let text = "options rotate timeout:2 attempts:9 ndots:3\nnameserver 127.0.0.1\n";
        let got = parse("r.conf", text).unwrap();
        assert_eq!(got.timeout, Some(Duration::from_secs(2)));
        assert_eq!(got.attempts, Some(5), "capped as glibc caps it");
        let got = parse("r.conf", "options timeout:x\nnameserver 127.0.0.1\n").unwrap();
        assert_eq!(got.timeout, None, "a malformed option is ignored");
    }

    #[test]
    fn errors_say_where() {
        let e = parse("r.conf", "options ndots:1\nnameserver  nowhere:53\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "r.conf:2:13: error: \"nowhere:53\" is not an address (IP, IP:PORT or [IPv6]:PORT)"
        );
        assert_eq!(
            parse("r.conf", "").unwrap_err().message,
            "no nameserver line"
        );
    }
}
