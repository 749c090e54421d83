//! RFC 2822 addresses in headers (`msys.parseRFC2822Addresses`, `msg:address_header`) and
//! internationalized domain names (`msys.idn.to_idn`, `to_utf8`).
//!
//! Addresses are parsed by mail-parser (groups flattened, display names and comments
//! dropped); each comes back as the component asked: `all` (the address), `localpart`
//! (before the `@`), `user` and `detail` (the local part split at its first `+`), `domain`.
//! IDN conversion is the `idna` crate's UTS #46 processing.

use mlua::{Lua, Table, UserDataMethods};

use crate::handles::Msg;

/// The addresses of one header value.
fn addresses(value: &str) -> Vec<String> {
    let raw = format!("From: {value}\r\n\r\n");
    let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes());
    let found: Vec<String> = parsed
        .as_ref()
        .and_then(|p| p.from())
        .map(|list| {
            list.iter()
                .filter_map(|a| a.address.as_ref().map(|s| s.to_string()))
                .filter(|a| a.contains('@'))
                .collect()
        })
        .unwrap_or_default();
    if found.is_empty() {
        lenient(value)
    } else {
        found
    }
}

/// Addresses in a value the RFC 5322 grammar refuses (an unclosed group, stray quotes, as
/// Momentum's own `msys.idn` example writes): each `<local@domain>`, else each word with an
/// `@`.
fn lenient(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let inner = rest[open + 1..open + close].trim();
        if inner.contains('@') {
            out.push(inner.to_string());
        }
        rest = &rest[open + close + 1..];
    }
    if out.is_empty() {
        out = value
            .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
            .map(|w| w.trim_matches(|c| c == '"' || c == '(' || c == ')'))
            .filter(|w| w.contains('@'))
            .map(str::to_string)
            .collect();
    }
    out
}

/// One component of `address`, or why the component is not one.
fn component(address: &str, which: &str) -> Result<String, String> {
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    let (user, detail) = local.split_once('+').unwrap_or((local, ""));
    Ok(match which {
        "all" => address.to_string(),
        "localpart" => local.to_string(),
        "user" => user.to_string(),
        "detail" => detail.to_string(),
        "domain" => domain.to_string(),
        other => {
            return Err(format!(
                "component {other:?} is not all, localpart, user, detail or domain"
            ));
        }
    })
}

fn components(values: &[String], which: &str) -> Result<Vec<String>, String> {
    values
        .iter()
        .flat_map(|v| addresses(v))
        .map(|a| component(&a, which))
        .collect()
}

/// The `which` components of the addresses in header `values`, as a Lua list; `what` names
/// the function in an error.
pub fn lua_components(
    lua: &Lua,
    values: &[String],
    which: Option<&str>,
    what: &str,
) -> mlua::Result<Table> {
    let found = components(values, which.unwrap_or("all"))
        .map_err(|e| mlua::Error::runtime(format!("{what}: {e}")))?;
    lua.create_sequence_from(found)
}

/// The domain of each address in header `values`.
pub fn domains(values: &[String]) -> Vec<String> {
    components(values, "domain").unwrap_or_default()
}

/// `msg:address_header(name [, component])`.
pub fn add_methods<M: UserDataMethods<Msg>>(m: &mut M) {
    m.add_method(
        "address_header",
        |lua, this, (name, which): (String, Option<String>)| {
            let values = this
                .0
                .with(|c| Ok(crate::headers::header_values(&c.msg.body, &name)))?;
            lua_components(lua, &values, which.as_deref(), "msg:address_header")
        },
    );
}

/// `msys.parseRFC2822Addresses` and `msys.idn`.
pub fn install(lua: &Lua, msys: &Table) -> mlua::Result<()> {
    msys.set(
        "parseRFC2822Addresses",
        lua.create_function(|lua, (s, which): (String, Option<String>)| {
            lua_components(lua, &[s], which.as_deref(), "msys.parseRFC2822Addresses")
        })?,
    )?;
    let idn = lua.create_table()?;
    idn.set(
        "to_idn",
        lua.create_function(|_, name: String| {
            idna::domain_to_ascii(&name)
                .map_err(|e| mlua::Error::runtime(format!("msys.idn.to_idn({name:?}): {e:?}")))
        })?,
    )?;
    idn.set(
        "to_utf8",
        lua.create_function(|_, name: String| {
            let (text, result) = idna::domain_to_unicode(&name);
            result
                .map(|()| text)
                .map_err(|e| mlua::Error::runtime(format!("msys.idn.to_utf8({name:?}): {e:?}")))
        })?,
    )?;
    msys.set("idn", idn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_of_header_addresses() {
        let v = vec![
            "\"Doe, John\" <john+news@example.com>, jane@example.org".to_string(),
            "Team: a@x.test, b+1@y.test;".to_string(),
        ];
        assert_eq!(
            components(&v, "all").unwrap(),
            vec![
                "john+news@example.com",
                "jane@example.org",
                "a@x.test",
                "b+1@y.test"
            ]
        );
        assert_eq!(
            components(&v, "domain").unwrap(),
            vec!["example.com", "example.org", "x.test", "y.test"]
        );
        assert_eq!(components(&v, "user").unwrap()[0], "john");
        assert_eq!(components(&v, "detail").unwrap()[0], "news");
        assert_eq!(components(&v, "localpart").unwrap()[3], "b+1");
        assert!(components(&v, "host").is_err());
        // Momentum's own msys.idn example: the value repeats "From:" and has stray quotes.
        let odd = vec![
            "From: \u{201c}John Doe =?utf-8?Q?=28?=\" <\u{5f17}\u{5170}\u{514b}@example.com>"
                .to_string(),
        ];
        assert_eq!(components(&odd, "domain").unwrap(), vec!["example.com"]);
    }
}
