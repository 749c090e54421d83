//! `resolv_conf = "FILE"`: the name servers delivery asks, in resolv.conf format.
//!
//! Only `nameserver` lines matter; other keywords (`search`, `options`, `domain`) are
//! accepted and ignored, since delivery always asks for complete names. As an extension, a
//! server may carry a port: `nameserver 127.0.0.1:5353` or `nameserver [::1]:5353`, so tests
//! and split-horizon setups can use a resolver on a high port.

use std::net::{IpAddr, SocketAddr};

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

/// Every name server in `text`, in order. `file` names the file in errors.
pub fn parse(file: &str, text: &str) -> Result<Vec<SocketAddr>, ResolvConfError> {
    let mut servers = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let content = line.split(['#', ';']).next().unwrap_or("");
        let mut words = content.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
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
    Ok(servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_with_and_without_ports() {
        let text = "# test\nsearch example\nnameserver 127.0.0.1:5353\nnameserver [::1]:5300\nnameserver 10.0.0.1 # comment\nnameserver ::1\n";
        let got = parse("r.conf", text).unwrap();
        let want: Vec<SocketAddr> = vec![
            "127.0.0.1:5353".parse().unwrap(),
            "[::1]:5300".parse().unwrap(),
            "10.0.0.1:53".parse().unwrap(),
            "[::1]:53".parse().unwrap(),
        ];
        assert_eq!(got, want);
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
