//! The PROXY protocol (HAProxy's `proxy-protocol.txt`, versions 1 and 2): a header a load
//! balancer sends first on each connection, naming the client it accepted. With
//! `Proxy_Protocol = true` on a listener, every connection must start with one; its client
//! address is the one relay control, `Peer` stanzas, policy and the mainlog see.
//!
//! [`parse`] is sans-IO: it looks at the bytes read so far and says how many more it needs,
//! or what the header says, or why it is not one. [`read`] is the thin shim over a socket:
//! it reads exactly what `parse` asks for, never past the header, so what follows (the
//! client's first command, or its TLS ClientHello under `Use_SSL`) stays in the socket for
//! whoever reads next. Version 1 is read a byte at a time (at most 107): proxied connections
//! pay some tens of small reads once, against a buffer and its hand-over otherwise.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncReadExt;

/// Version 2's signature, the header's first 12 bytes.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Version 1's longest line, CRLF included.
const V1_MAX: usize = 107;
/// The most address and TLV bytes a version 2 header may carry here. HAProxy and the cloud
/// load balancers send tens; a header larger than this is refused rather than buffered.
const V2_MAX_BODY: usize = 4096;

/// What a complete header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The client the proxy accepted; `None` for a header that names none (v2 `LOCAL`, v1
    /// `UNKNOWN`, UNIX sockets), where the connection's own address stays.
    pub source: Option<SocketAddr>,
}

/// Where parsing stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Read this many more bytes, then ask again.
    Need(usize),
    Done(Header),
    /// Not a PROXY header: the connection is closed without a banner.
    Bad(&'static str),
}

/// Looks at `buf`, the connection's first bytes (exactly those read so far).
pub fn parse(buf: &[u8]) -> Progress {
    if buf.is_empty() {
        return Progress::Need(1);
    }
    if buf[0] == b'P' {
        return v1(buf);
    }
    if buf[0] == b'\r' {
        return v2(buf);
    }
    Progress::Bad("neither a version 1 nor a version 2 PROXY header")
}

fn v1(buf: &[u8]) -> Progress {
    let prefix = b"PROXY ";
    let n = buf.len().min(prefix.len());
    if buf[..n] != prefix[..n] {
        return Progress::Bad("a version 1 header starts with `PROXY `");
    }
    if !buf.ends_with(b"\r\n") {
        if buf.len() >= V1_MAX {
            return Progress::Bad("a version 1 header is at most 107 bytes");
        }
        if buf.last() == Some(&b'\n') {
            return Progress::Bad("a version 1 header ends with CRLF");
        }
        return Progress::Need(1);
    }
    let Ok(line) = std::str::from_utf8(&buf[prefix.len()..buf.len() - 2]) else {
        return Progress::Bad("a version 1 header is ASCII");
    };
    let words: Vec<&str> = line.split(' ').collect();
    match words.first().copied() {
        Some("UNKNOWN") => Progress::Done(Header { source: None }),
        Some(family @ ("TCP4" | "TCP6")) => {
            let [_, src, dst, sport, dport] = words[..] else {
                return Progress::Bad("a version 1 TCP header has two addresses and two ports");
            };
            let (Ok(src), Ok(_dst)) = (src.parse::<IpAddr>(), dst.parse::<IpAddr>()) else {
                return Progress::Bad("a version 1 header's address does not parse");
            };
            if src.is_ipv4() != (family == "TCP4") {
                return Progress::Bad("a version 1 header's address is not of its family");
            }
            let (Some(sport), Some(_)) = (port(sport), port(dport)) else {
                return Progress::Bad("a version 1 header's port does not parse");
            };
            Progress::Done(Header {
                source: Some(SocketAddr::new(src, sport)),
            })
        }
        _ => Progress::Bad("a version 1 header's protocol is TCP4, TCP6 or UNKNOWN"),
    }
}

/// A port as version 1 writes it: decimal, no sign, no leading zero.
fn port(s: &str) -> Option<u16> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

fn v2(buf: &[u8]) -> Progress {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] != V2_SIGNATURE[..n] {
        return Progress::Bad("not the version 2 signature");
    }
    if buf.len() < V2_SIGNATURE.len() {
        return Progress::Need(V2_SIGNATURE.len() - buf.len());
    }
    if buf.len() < 16 {
        return Progress::Need(16 - buf.len());
    }
    let (ver_cmd, family) = (buf[12], buf[13]);
    if ver_cmd >> 4 != 2 {
        return Progress::Bad("a version 2 header's version is 2");
    }
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if len > V2_MAX_BODY {
        return Progress::Bad("a version 2 header longer than 4096 bytes");
    }
    if buf.len() < 16 + len {
        return Progress::Need(16 + len - buf.len());
    }
    let body = &buf[16..16 + len];
    match ver_cmd & 0x0f {
        // LOCAL: the proxy's own connection (a health check); the address stays.
        0 => Progress::Done(Header { source: None }),
        1 => match family >> 4 {
            1 if body.len() >= 12 => {
                let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
                let port = u16::from_be_bytes([body[8], body[9]]);
                Progress::Done(Header {
                    source: Some(SocketAddr::new(IpAddr::V4(ip), port)),
                })
            }
            2 if body.len() >= 36 => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&body[..16]);
                let port = u16::from_be_bytes([body[32], body[33]]);
                Progress::Done(Header {
                    source: Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port)),
                })
            }
            1 | 2 => Progress::Bad("a version 2 header too short for its addresses"),
            // UNSPEC or UNIX: no address policy can use.
            0 | 3 => Progress::Done(Header { source: None }),
            _ => Progress::Bad("a version 2 header's address family is unknown"),
        },
        _ => Progress::Bad("a version 2 header's command is LOCAL or PROXY"),
    }
}

/// Why no header could be had.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("PROXY header: {0}")]
    Bad(&'static str),
    #[error("PROXY header not complete within {0:?}")]
    Timeout(Duration),
    #[error("PROXY header: the client closed the connection")]
    Closed,
    #[error("PROXY header: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one header from `io`, within `limit` (`None`: no limit, `Proxy_Protocol_Timeout = 0`).
pub async fn read<R: AsyncReadExt + Unpin>(
    io: &mut R,
    limit: Option<Duration>,
) -> Result<Header, ProxyError> {
    let work = async {
        let mut buf = Vec::with_capacity(64);
        loop {
            match parse(&buf) {
                Progress::Done(h) => return Ok(h),
                Progress::Bad(why) => return Err(ProxyError::Bad(why)),
                Progress::Need(n) => {
                    let at = buf.len();
                    buf.resize(at + n, 0);
                    let mut got = 0;
                    while got < n {
                        match io.read(&mut buf[at + got..]).await? {
                            0 => return Err(ProxyError::Closed),
                            k => got += k,
                        }
                    }
                }
            }
        }
    };
    match limit {
        Some(d) => tokio::time::timeout(d, work)
            .await
            .map_err(|_| ProxyError::Timeout(d))?,
        None => work.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` the way `read` does (what `parse` asks for, no more) and returns the
    /// outcome and how many bytes were taken.
    fn run(bytes: &[u8]) -> (Progress, usize) {
        let mut taken = 0;
        loop {
            match parse(&bytes[..taken]) {
                Progress::Need(n) if taken + n <= bytes.len() => taken += n,
                p => return (p, taken),
            }
        }
    }

    fn src(s: &str) -> Progress {
        Progress::Done(Header {
            source: Some(s.parse().unwrap()),
        })
    }

    #[test]
    fn version_1_lines() {
        let cases: &[(&[u8], Progress)] = &[
            (
                b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\n",
                src("192.0.2.7:40000"),
            ),
            (
                b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 25\r\n",
                src("[2001:db8::7]:40000"),
            ),
            (
                b"PROXY UNKNOWN\r\n",
                Progress::Done(Header { source: None }),
            ),
            (
                b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
                Progress::Done(Header { source: None }),
            ),
            (
                b"PROXY TCP4 192.0.2.7 198.51.100.1 40000\r\n",
                Progress::Bad("a version 1 TCP header has two addresses and two ports"),
            ),
            (
                b"PROXY TCP4 2001:db8::7 198.51.100.1 1 2\r\n",
                Progress::Bad("a version 1 header's address is not of its family"),
            ),
            (
                b"PROXY TCP4 192.0.2.7 198.51.100.1 040000 25\r\n",
                Progress::Bad("a version 1 header's port does not parse"),
            ),
            (
                b"PROXY TCP4 192.0.2.777 198.51.100.1 1 2\r\n",
                Progress::Bad("a version 1 header's address does not parse"),
            ),
            (
                b"PROXY SCTP 1 2 3 4\r\n",
                Progress::Bad("a version 1 header's protocol is TCP4, TCP6 or UNKNOWN"),
            ),
            (
                b"PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n",
                Progress::Bad("a version 1 header ends with CRLF"),
            ),
            (
                b"EHLO client.example\r\n",
                Progress::Bad("neither a version 1 nor a version 2 PROXY header"),
            ),
            (
                b"PROXZ TCP4",
                Progress::Bad("a version 1 header starts with `PROXY `"),
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(run(bytes).0, *want, "{}", String::from_utf8_lossy(bytes));
        }
        let long = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 120]].concat();
        assert_eq!(
            run(&long).0,
            Progress::Bad("a version 1 header is at most 107 bytes")
        );
        // Nothing past the CRLF is taken: the client's first bytes stay in the socket.
        let mut bytes = b"PROXY UNKNOWN\r\n".to_vec();
        bytes.extend_from_slice(b"EHLO x\r\n");
        assert_eq!(run(&bytes).1, 15);
    }

    fn v2_header(cmd: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | cmd);
        h.push(family);
        h.extend_from_slice(&(body.len() as u16).to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    #[test]
    fn version_2_headers() {
        let v4 = [192, 0, 2, 7, 198, 51, 100, 1, 0x9c, 0x40, 0, 25];
        let h = v2_header(1, 0x11, &v4);
        assert_eq!(run(&h), (src("192.0.2.7:40000"), h.len()));
        // TLVs after the addresses (an AWS endpoint id, say) are read and dropped.
        let mut with_tlv = v4.to_vec();
        with_tlv.extend_from_slice(&[0xea, 0, 3, b'v', b'p', b'c']);
        let h = v2_header(1, 0x11, &with_tlv);
        assert_eq!(run(&h), (src("192.0.2.7:40000"), h.len()));
        let mut v6 = vec![0x20, 0x01, 0x0d, 0xb8];
        v6.extend_from_slice(&[0; 11]);
        v6.push(7);
        v6.extend_from_slice(&[0; 16]);
        v6.extend_from_slice(&[0x9c, 0x40, 0, 25]);
        assert_eq!(run(&v2_header(1, 0x21, &v6)).0, src("[2001:db8::7]:40000"));
        assert_eq!(
            run(&v2_header(0, 0x00, &[])).0,
            Progress::Done(Header { source: None })
        );
        assert_eq!(
            run(&v2_header(1, 0x31, &[0; 216])).0,
            Progress::Done(Header { source: None })
        );
        assert_eq!(
            run(&v2_header(1, 0x11, &v4[..6])).0,
            Progress::Bad("a version 2 header too short for its addresses")
        );
        assert_eq!(
            run(&v2_header(2, 0x11, &v4)).0,
            Progress::Bad("a version 2 header's command is LOCAL or PROXY")
        );
        let mut bad_version = v2_header(1, 0x11, &v4);
        bad_version[12] = 0x11;
        assert_eq!(
            run(&bad_version).0,
            Progress::Bad("a version 2 header's version is 2")
        );
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert_eq!(
            run(&huge).0,
            Progress::Bad("a version 2 header longer than 4096 bytes")
        );
        assert_eq!(
            run(b"\r\n\r\nXXXXXXXXXXXX").0,
            Progress::Bad("not the version 2 signature")
        );
    }

    #[tokio::test]
    async fn read_stops_at_the_header_and_times_out() {
        let (mut client, mut server) = tokio::io::duplex(256);
        use tokio::io::AsyncWriteExt;
        client
            .write_all(b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\nEHLO x\r\n")
            .await
            .unwrap();
        let h = read(&mut server, Some(Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(h.source, Some("192.0.2.7:40000".parse().unwrap()));
        let mut rest = [0u8; 8];
        server.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"EHLO x\r\n");
        // Half a header and then silence: the timeout ends it.
        let (mut client, mut server) = tokio::io::duplex(256);
        client.write_all(b"PROXY TCP4 192.0").await.unwrap();
        let e = read(&mut server, Some(Duration::from_millis(50)))
            .await
            .unwrap_err();
        assert!(matches!(e, ProxyError::Timeout(_)), "{e}");
        drop(client);
    }
}
