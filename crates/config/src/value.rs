//! Typed option values: checked against the schema at load time, printed the way
//! Momentum's console prints them.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::schema::ValueType;
use crate::syntax::RawValue;

/// A rate limit: `count` events per `seconds`. A count of 0 means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Throttle {
    pub count: u32,
    pub seconds: u32,
}

/// A binding's source address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindAddress {
    /// `*`: let the kernel choose.
    Any,
    Ip(IpAddr),
    /// A host name, resolved when the binding is plumbed.
    Host(String),
}

/// A checked option value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Path(String),
    Int(i64),
    Bool(bool),
    /// An enumerated word, in the schema's spelling.
    Word(&'static str),
    Throttle(Throttle),
    Bind(BindAddress),
    HostPort(String),
    Cidrs(Vec<IpNet>),
    Domains(Vec<String>),
    List(Vec<String>),
    Dict(Vec<(String, String)>),
    Mode(u32),
    Seconds(u64),
    Bytes(u64),
    Regex(String),
}

/// `YYYY-MM-DD` as days since 1970-01-01 (Howard Hinnant's `days_from_civil`); `None` for
/// anything else, including a day the month does not have.
pub fn days_of_date(s: &str) -> Option<i64> {
    let mut it = s.split('-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Parses a boolean in any spelling Momentum accepts.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "enabled" | "1" => Some(true),
        "false" | "no" | "off" | "disabled" | "0" => Some(false),
        _ => None,
    }
}

/// Parses `N` or `N/S`.
pub fn parse_throttle(s: &str) -> Option<Throttle> {
    let (n, secs) = match s.split_once('/') {
        Some((n, secs)) => (
            n.trim(),
            secs.trim().parse::<u32>().ok().filter(|&s| s > 0)?,
        ),
        None => (s.trim(), 1),
    };
    Some(Throttle {
        count: n.parse().ok()?,
        seconds: secs,
    })
}

/// Parses an IP address or CIDR block; a bare address is a /32 or /128.
pub fn parse_cidr(s: &str) -> Option<IpNet> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Some(net);
    }
    let ip: IpAddr = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    Some(IpNet::from(ip))
}

/// Checks a host name: letters, digits, `-`, `_` and dots, no empty labels.
pub fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.trim_end_matches('.').split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `host`, `host:port`, `IP`, `IP:port`, `[IPv6]`, `[IPv6]:port`, or a `#name` that names a
/// synthetic domain stanza (as Momentum's `gateway = "#spe_relay"`).
fn is_host_port(s: &str) -> bool {
    if s.len() > 1 && s.starts_with('#') {
        return true;
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return false;
        };
        if ip.parse::<IpAddr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(p) => (ip, Some(p)),
                None => return false,
            },
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) if !p.contains(':') => (h, Some(p)),
            Some(_) => return false, // IPv6 must be bracketed here
            None => (s, None),
        }
    };
    let host_ok = host.parse::<IpAddr>().is_ok() || is_hostname(host);
    host_ok && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

fn is_domain_pattern(s: &str) -> bool {
    let rest = s.strip_prefix("*.").unwrap_or(s);
    is_hostname(rest) || s == "*"
}

fn scalars(raw: &RawValue) -> Option<Vec<&str>> {
    match raw {
        RawValue::Scalar(s) => Some(vec![s.as_str()]),
        RawValue::List(items) => items
            .iter()
            .map(|i| match i {
                RawValue::Scalar(s) => Some(s.as_str()),
                _ => None,
            })
            .collect(),
        RawValue::Dict(_) => None,
    }
}

/// Checks a raw value against a type. The error says what was expected.
pub fn check(ty: ValueType, raw: &RawValue) -> Result<Value, String> {
    let expected = || format!("expected {}", ty.describe());
    let scalar = match raw {
        RawValue::Scalar(s) => Some(s.as_str()),
        _ => None,
    };
    let need_scalar =
        || scalar.ok_or_else(|| format!("{}, found a list or dictionary", expected()));
    let found = |s: &str| format!("{}, found `{s}`", expected());
    match ty {
        ValueType::Str => Ok(Value::Str(need_scalar()?.to_string())),
        ValueType::Path => {
            let s = need_scalar()?;
            if s.is_empty() {
                Err(found(s))
            } else {
                Ok(Value::Path(s.to_string()))
            }
        }
        ValueType::Int => {
            let s = need_scalar()?;
            s.trim()
                .parse::<i64>()
                .map(Value::Int)
                .map_err(|_| found(s))
        }
        ValueType::Port => {
            let s = need_scalar()?;
            match s.trim().parse::<u16>() {
                Ok(p) if p > 0 => Ok(Value::Int(p as i64)),
                _ => Err(found(s)),
            }
        }
        ValueType::Seconds | ValueType::Bytes => {
            let s = need_scalar()?;
            let n = s.trim().parse::<u64>().map_err(|_| found(s))?;
            Ok(if ty == ValueType::Seconds {
                Value::Seconds(n)
            } else {
                Value::Bytes(n)
            })
        }
        ValueType::Bool => {
            let s = need_scalar()?;
            parse_bool(s).map(Value::Bool).ok_or_else(|| found(s))
        }
        ValueType::Enum(words) => {
            let s = need_scalar()?;
            words
                .iter()
                .find(|w| w.eq_ignore_ascii_case(s.trim()))
                .map(|w| Value::Word(w))
                .ok_or_else(|| found(s))
        }
        ValueType::IntOrEnum(words) => {
            let s = need_scalar()?;
            if let Some(w) = words.iter().find(|w| w.eq_ignore_ascii_case(s.trim())) {
                return Ok(Value::Word(w));
            }
            match s.trim().parse::<i64>() {
                Ok(n) if n >= 0 => Ok(Value::Int(n)),
                _ => Err(found(s)),
            }
        }
        ValueType::Throttle => {
            let s = need_scalar()?;
            parse_throttle(s)
                .map(Value::Throttle)
                .ok_or_else(|| found(s))
        }
        ValueType::BindAddress => {
            let s = need_scalar()?.trim();
            if s == "*" {
                Ok(Value::Bind(BindAddress::Any))
            } else if let Ok(ip) = s
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
            {
                Ok(Value::Bind(BindAddress::Ip(ip)))
            } else if is_hostname(s) {
                Ok(Value::Bind(BindAddress::Host(s.to_string())))
            } else {
                Err(found(s))
            }
        }
        ValueType::HostPort => {
            let s = need_scalar()?.trim();
            if is_host_port(s) {
                Ok(Value::HostPort(s.to_string()))
            } else {
                Err(found(s))
            }
        }
        ValueType::CidrList => {
            let items = scalars(raw).ok_or_else(expected)?;
            items
                .iter()
                .map(|s| parse_cidr(s.trim()).ok_or_else(|| found(s)))
                .collect::<Result<_, _>>()
                .map(Value::Cidrs)
        }
        ValueType::DomainList => {
            let items = scalars(raw).ok_or_else(expected)?;
            items
                .iter()
                .map(|s| {
                    if is_domain_pattern(s.trim()) {
                        Ok(s.trim().to_ascii_lowercase())
                    } else {
                        Err(found(s))
                    }
                })
                .collect::<Result<_, _>>()
                .map(Value::Domains)
        }
        ValueType::Range => {
            let items = scalars(raw).ok_or_else(expected)?;
            let nums: Vec<u64> = items.iter().filter_map(|i| i.trim().parse().ok()).collect();
            match nums[..] {
                [min, max] if items.len() == 2 && min <= max => {
                    Ok(Value::List(vec![min.to_string(), max.to_string()]))
                }
                [min, max] if items.len() == 2 => Err(format!(
                    "{}: the least, {min}, is more than the most, {max}",
                    expected()
                )),
                _ => Err(format!("{}, found `( {} )`", expected(), items.join(" "))),
            }
        }
        ValueType::Counts => {
            let items = scalars(raw).ok_or_else(expected)?;
            if items.is_empty() {
                return Err(format!("{}, found `( )`", expected()));
            }
            for i in &items {
                match i.trim().parse::<u32>() {
                    Ok(n) if n > 0 => {}
                    _ => return Err(found(i)),
                }
            }
            Ok(Value::List(
                items.iter().map(|i| i.trim().to_string()).collect(),
            ))
        }
        ValueType::Date => {
            let s = need_scalar()?.trim();
            days_of_date(s)
                .map(|_| Value::Str(s.to_string()))
                .ok_or_else(|| found(s))
        }
        ValueType::Percent => {
            let s = need_scalar()?.trim();
            match s.parse::<f64>() {
                Ok(v) if (0.0..=100.0).contains(&v) => Ok(Value::Str(s.to_string())),
                _ => Err(found(s)),
            }
        }
        ValueType::List => {
            let items = scalars(raw).ok_or_else(expected)?;
            Ok(Value::List(items.into_iter().map(str::to_string).collect()))
        }
        ValueType::Dict => match raw {
            RawValue::Dict(entries) => entries
                .iter()
                .map(|(k, v)| match v {
                    RawValue::Scalar(s) => Ok((k.clone(), s.clone())),
                    _ => Err(format!(
                        "{}: the value of `{k}` must be a string",
                        expected()
                    )),
                })
                .collect::<Result<_, _>>()
                .map(Value::Dict),
            _ => Err(format!(
                "{}, found a {}",
                expected(),
                if scalar.is_some() { "string" } else { "list" }
            )),
        },
        ValueType::Mode => {
            let s = need_scalar()?;
            match u32::from_str_radix(s.trim(), 8) {
                Ok(m) if m <= 0o7777 => Ok(Value::Mode(m)),
                _ => Err(found(s)),
            }
        }
        ValueType::Regex => {
            let s = need_scalar()?;
            regex::Regex::new(s)
                .map(|_| Value::Regex(s.to_string()))
                .map_err(|e| format!("invalid regular expression: {}", regex_error(&e)))
        }
        ValueType::RegexList => {
            let items = scalars(raw).ok_or_else(expected)?;
            items
                .iter()
                .map(|s| {
                    regex::Regex::new(s).map(|_| s.to_string()).map_err(|e| {
                        format!("invalid regular expression `{s}`: {}", regex_error(&e))
                    })
                })
                .collect::<Result<_, _>>()
                .map(Value::List)
        }
        ValueType::TlsProtocols => {
            let s = need_scalar()?;
            crate::tls_protocols::parse(s).map(|_| Value::Str(s.to_string()))
        }
    }
}

/// The regex crate's message on one line: its last line ("error: unclosed group").
pub fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    last.trim().trim_start_matches("error: ").to_string()
}

/// Writes a string in double quotes, escaping `"` and `\`.
pub fn write_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        if c == '"' || c == '\\' {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('"')
}

impl Value {
    /// The value as a script wants it (`msys.config`'s first result): a scalar without
    /// quotes (`mx.example`, `127.0.0.2`, `10/60`); lists and dictionaries in console form.
    pub fn plain(&self) -> String {
        match self {
            Value::Str(s) | Value::Path(s) | Value::HostPort(s) | Value::Regex(s) => s.clone(),
            Value::Bind(BindAddress::Host(h)) => h.clone(),
            Value::Bind(BindAddress::Ip(ip)) => ip.to_string(),
            Value::Bind(BindAddress::Any) => "*".into(),
            Value::Throttle(t) if t.seconds == 1 => t.count.to_string(),
            Value::Throttle(t) => format!("{}/{}", t.count, t.seconds),
            other => other.to_string(),
        }
    }
}

/// Console form: strings in double quotes, numbers and words bare, lists one item a line.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) | Value::Path(s) | Value::HostPort(s) | Value::Regex(s) => {
                write_quoted(f, s)
            }
            Value::Int(n) => write!(f, "{n}"),
            Value::Seconds(n) | Value::Bytes(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Word(w) => f.write_str(w),
            Value::Throttle(t) if t.seconds == 1 => write!(f, "\"{}\"", t.count),
            Value::Throttle(t) => write!(f, "\"{}/{}\"", t.count, t.seconds),
            Value::Bind(BindAddress::Any) => f.write_str("\"*\""),
            Value::Bind(BindAddress::Ip(ip)) => write!(f, "\"{ip}\""),
            Value::Bind(BindAddress::Host(h)) => write_quoted(f, h),
            Value::Mode(m) => write!(f, "0{m:o}"),
            // A single address prints as written (`10.0.0.1`, not `10.0.0.1/32`).
            Value::Cidrs(nets) => write_list(
                f,
                nets.iter().map(|n| {
                    if n.prefix_len() == n.max_prefix_len() {
                        n.addr().to_string()
                    } else {
                        n.to_string()
                    }
                }),
            ),
            Value::Domains(items) | Value::List(items) => write_list(f, items.iter().cloned()),
            Value::Dict(entries) => {
                f.write_str("[")?;
                for (k, v) in entries {
                    write!(f, " {k} = ")?;
                    write_quoted(f, v)?;
                }
                f.write_str(" ]")
            }
        }
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, items: impl Iterator<Item = String>) -> fmt::Result {
    f.write_str("(\n")?;
    for item in items {
        f.write_str("  ")?;
        if item.bytes().all(crate::lexer::is_word_byte) && !item.is_empty() {
            f.write_str(&item)?;
        } else {
            write_quoted(f, &item)?;
        }
        f.write_str("\n")?;
    }
    f.write_str("  )")
}

/// Where a listener listens: `":25"`, `"*:25"`, `"127.0.0.1:2525"`, `"[::1]:25"`, or a Unix
/// socket path such as `"/tmp/2025"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// `ip` is `None` for every address (`:25`, `*:25`).
    Tcp {
        ip: Option<IpAddr>,
        port: u16,
    },
    Unix(String),
}

pub fn parse_listen(s: &str) -> Option<ListenAddr> {
    let s = s.trim();
    if s.starts_with('/') || s.starts_with("./") {
        return Some(ListenAddr::Unix(s.to_string()));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        (ip, after.strip_prefix(':')?)
    } else {
        s.rsplit_once(':')?
    };
    let port: u16 = port.parse().ok()?;
    let ip = match host {
        "" | "*" => None,
        h => Some(h.parse::<IpAddr>().ok()?),
    };
    Some(ListenAddr::Tcp { ip, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_of_dates() {
        assert_eq!(days_of_date("1970-01-01"), Some(0));
        assert_eq!(days_of_date("2026-12-08"), Some(20_795));
        assert_eq!(days_of_date("2024-02-29"), Some(19_782));
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "2026-1-01",
            "26-01-01",
            "2026-01-00",
            "x",
        ] {
            assert_eq!(days_of_date(bad), None, "{bad}");
        }
    }
}
