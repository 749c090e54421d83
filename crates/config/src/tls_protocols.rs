//! `TLS_Protocols`: Momentum's OpenSSL-style protocol list, read into what rustls can offer.
//!
//! The value is `[+|-]NAME` tokens joined by `:` (`"+ALL:-SSLv3:-TLSv1.0:-TLSv1.1"`), applied
//! left to right to an empty set; a token without a sign adds. Names: `ALL`, `SSLv2`, `SSLv3`,
//! `TLSv1` (= `TLSv1.0`), `TLSv1.0`, `TLSv1.1`, `TLSv1.2`, `TLSv1.3`. rustls speaks TLS 1.2 and
//! 1.3 only, so the older names are read and then never negotiated: Momentum's own page says
//! the same happens under RHEL 8's default crypto policy, where `+ALL` means 1.2 and 1.3. A
//! list that leaves neither 1.2 nor 1.3 cannot be honoured and is refused.

/// The protocol versions a list leaves that bindery can speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Protocols {
    pub tls12: bool,
    pub tls13: bool,
}

impl Default for Protocols {
    /// Momentum's default, `+ALL`.
    fn default() -> Self {
        Protocols {
            tls12: true,
            tls13: true,
        }
    }
}

const NAMES: &[&str] = &[
    "ALL", "SSLv2", "SSLv3", "TLSv1", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3",
];

/// Reads a `TLS_Protocols` value. The error names the token at fault, with "did you mean".
pub fn parse(list: &str) -> Result<Protocols, String> {
    // Every protocol OpenSSL knows, in NAMES order from SSLv2: on or off.
    let mut on = [false; 6];
    for token in list.split(':').map(str::trim).filter(|t| !t.is_empty()) {
        let (add, name) = match token.as_bytes()[0] {
            b'+' => (true, &token[1..]),
            b'-' | b'!' => (false, &token[1..]),
            _ => (true, token),
        };
        let which: &[usize] = match NAMES.iter().position(|n| n.eq_ignore_ascii_case(name)) {
            Some(0) => &[0, 1, 2, 3, 4, 5],
            Some(1) => &[0],
            Some(2) => &[1],
            Some(3 | 4) => &[2],
            Some(5) => &[3],
            Some(6) => &[4],
            Some(7) => &[5],
            _ => {
                let hint = crate::diag::did_you_mean(name, NAMES.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(format!(
                    "unknown protocol `{name}` in TLS_Protocols{hint}; known: {}",
                    NAMES.join(", ")
                ));
            }
        };
        for &i in which {
            on[i] = add;
        }
    }
    let p = Protocols {
        tls12: on[4],
        tls13: on[5],
    };
    if !p.tls12 && !p.tls13 {
        return Err(format!(
            "TLS_Protocols `{list}` leaves neither TLSv1.2 nor TLSv1.3, the only versions bindery (rustls) speaks"
        ));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn momentums_examples() {
        let both = Protocols::default();
        assert_eq!(parse("+ALL"), Ok(both));
        assert_eq!(parse("+ALL:-SSLv3:-TLSv1.0:-TLSv1.1"), Ok(both));
        assert_eq!(
            parse("+ALL:-TLSv1.3"),
            Ok(Protocols {
                tls12: true,
                tls13: false
            })
        );
        assert_eq!(
            parse("TLSv1.3"),
            Ok(Protocols {
                tls12: false,
                tls13: true
            })
        );
        assert_eq!(parse("+TLSv1:+TLSv1.1:+TLSv1.2").map(|p| p.tls12), Ok(true));
    }

    #[test]
    fn refusals_say_why() {
        let e = parse("+TLSv1.0:+TLSv1.1").unwrap_err();
        assert!(e.contains("neither TLSv1.2 nor TLSv1.3"), "{e}");
        let e = parse("+ALL:-TLSv1.4").unwrap_err();
        assert!(e.contains("unknown protocol `TLSv1.4`"), "{e}");
        assert!(e.contains("did you mean"), "{e}");
        assert!(parse("").is_err());
        assert!(parse("+").is_err());
    }
}
