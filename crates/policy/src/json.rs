//! Momentum's `json` module (`require("json")`, also `msys.json`): `decode`, `encode`,
//! `new`, `strerror`, `null` and the `ERROR_*` codes, on serde_json.
//!
//! Momentum's JSON values are objects that print as JSON. Here a decoded object or array is
//! a Lua table with a metatable that says which it is and whose `__tostring` (and `__concat`)
//! writes it as JSON, so `print(obj)` and `"x" .. obj` behave as Momentum's pages show,
//! while scripts index and assign fields as tables. JSON `null` is `json.null`, so a key
//! that holds null still exists. `json.encode(value)` gives such a value (an untagged table
//! becomes an array when it is a sequence, else an object); `tostring` of it is the text.

use mlua::{Lua, Table, Value};

/// json-c's error codes, which Momentum's module returns (`json.ERROR_*`).
const ERRORS: &[(&str, i64, &str)] = &[
    ("ERROR_DEPTH", 2, "nesting too deep"),
    ("ERROR_PARSE_EOF", 3, "unexpected end of data"),
    ("ERROR_PARSE_UNEXPECTED", 4, "unexpected character"),
    ("ERROR_PARSE_NULL", 5, "null expected"),
    ("ERROR_PARSE_BOOLEAN", 6, "boolean expected"),
    ("ERROR_PARSE_NUMBER", 7, "number expected"),
    ("ERROR_PARSE_ARRAY", 8, "array value separator ',' expected"),
    (
        "ERROR_PARSE_OBJECT_KEY_NAME",
        9,
        "quoted object property name expected",
    ),
    (
        "ERROR_PARSE_OBJECT_KEY_SEP",
        10,
        "object property name separator ':' expected",
    ),
    (
        "ERROR_PARSE_OBJECT_VALUE_SEP",
        11,
        "object value separator ',' expected",
    ),
    ("ERROR_PARSE_STRING", 12, "invalid string sequence"),
    ("ERROR_PARSE_COMMENT", 13, "expected comment"),
];

/// Deeper than this, decoding and encoding stop (json-c's default depth is 32; 64 leaves
/// room and keeps a hostile document from exhausting the stack).
const MAX_DEPTH: usize = 64;

const KIND: &str = "__jsontype";

/// Builds the module table.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let json = lua.create_table()?;
    for (name, code, _) in ERRORS {
        json.set(*name, *code)?;
    }
    // A unique value standing for JSON null.
    let null = lua.create_table()?;
    let null_mt = lua.create_table()?;
    null_mt.set("__tostring", lua.create_function(|_, _: Value| Ok("null"))?)?;
    null.set_metatable(Some(null_mt))?;
    json.set("null", null.clone())?;

    let object_mt = tagged(lua, "object")?;
    let array_mt = tagged(lua, "array")?;
    let tags = (object_mt, array_mt, null);
    lua.set_named_registry_value(
        "bindery.json.tags",
        lua.create_sequence_from([tags.0.clone(), tags.1.clone(), tags.2.clone()])?,
    )?;

    let t = tags.clone();
    json.set(
        "decode",
        lua.create_function(move |lua, text: mlua::LuaString| {
            let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&text.as_bytes());
            match parsed {
                Ok(v) => Ok((to_lua(lua, &v, &t, 0)?, Value::Nil, Value::Nil)),
                Err(e) => {
                    let code = if e.is_eof() { 3 } else { 4 };
                    Ok((
                        Value::Nil,
                        Value::Integer(code),
                        Value::String(lua.create_string(e.to_string())?),
                    ))
                }
            }
        })?,
    )?;
    let t = tags.clone();
    json.set(
        "encode",
        lua.create_function(move |lua, v: Value| {
            let j = from_lua(&v, &t, 0)?;
            to_lua(lua, &j, &t, 0)
        })?,
    )?;
    let t = tags.clone();
    json.set(
        "new",
        lua.create_function(move |lua, ()| {
            let o = lua.create_table()?;
            o.set_metatable(Some(t.0.clone()))?;
            Ok(o)
        })?,
    )?;
    json.set(
        "strerror",
        lua.create_function(|_, code: i64| {
            Ok(ERRORS
                .iter()
                .find(|(_, c, _)| *c == code)
                .map_or("success", |(_, _, text)| text))
        })?,
    )?;
    Ok(json)
}

/// The metatable of a JSON object or array: it says which, and writes it as JSON.
fn tagged(lua: &Lua, kind: &'static str) -> mlua::Result<Table> {
    let mt = lua.create_table()?;
    mt.set(KIND, kind)?;
    let text = |lua: &Lua, v: Value| -> mlua::Result<String> {
        let tags: Table = lua.named_registry_value("bindery.json.tags")?;
        let t = (tags.get(1)?, tags.get(2)?, tags.get(3)?);
        let j = from_lua(&v, &t, 0)?;
        Ok(j.to_string())
    };
    mt.set(
        "__tostring",
        lua.create_function(move |lua, v: Value| text(lua, v))?,
    )?;
    mt.set(
        "__concat",
        lua.create_function(move |lua, (a, b): (Value, Value)| {
            let side = |v: Value| -> mlua::Result<String> {
                match &v {
                    Value::Table(_) => text(lua, v),
                    _ => Ok(lua
                        .coerce_string(v)?
                        .map(|s| s.to_string_lossy())
                        .unwrap_or_default()),
                }
            };
            Ok(side(a)? + &side(b)?)
        })?,
    )?;
    Ok(mt)
}

fn to_lua(
    lua: &Lua,
    v: &serde_json::Value,
    tags: &(Table, Table, Table),
    depth: usize,
) -> mlua::Result<Value> {
    if depth > MAX_DEPTH {
        return Err(mlua::Error::runtime("json: nesting deeper than 64 levels"));
    }
    Ok(match v {
        serde_json::Value::Null => Value::Table(tags.2.clone()),
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::String(lua.create_string(s)?),
        serde_json::Value::Array(a) => {
            let t = lua.create_table()?;
            for (i, x) in a.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, x, tags, depth + 1)?)?;
            }
            t.set_metatable(Some(tags.1.clone()))?;
            Value::Table(t)
        }
        serde_json::Value::Object(o) => {
            let t = lua.create_table()?;
            for (k, x) in o {
                t.raw_set(k.as_str(), to_lua(lua, x, tags, depth + 1)?)?;
            }
            t.set_metatable(Some(tags.0.clone()))?;
            Value::Table(t)
        }
    })
}

fn from_lua(
    v: &Value,
    tags: &(Table, Table, Table),
    depth: usize,
) -> mlua::Result<serde_json::Value> {
    if depth > MAX_DEPTH {
        return Err(mlua::Error::runtime(
            "json: nesting deeper than 64 levels (a table that contains itself?)",
        ));
    }
    Ok(match v {
        Value::Nil => serde_json::Value::Null,
        Value::Boolean(b) => serde_json::Value::Bool(*b),
        Value::Integer(i) => serde_json::Value::from(*i),
        Value::Number(n) => {
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                serde_json::Value::from(*n as i64)
            } else {
                serde_json::Number::from_f64(*n)
                    .map(serde_json::Value::Number)
                    .unwrap_or(serde_json::Value::Null)
            }
        }
        Value::String(s) => serde_json::Value::String(s.to_string_lossy()),
        Value::Table(t) => {
            if t == &tags.2 {
                return Ok(serde_json::Value::Null);
            }
            let kind = t
                .metatable()
                .and_then(|m| m.raw_get::<Option<String>>(KIND).ok().flatten());
            let len = t.raw_len();
            let is_array = match kind.as_deref() {
                Some("array") => true,
                Some(_) => false,
                None => len > 0 && t.clone().pairs::<Value, Value>().count() == len,
            };
            if is_array {
                let mut a = Vec::with_capacity(len);
                for i in 1..=len {
                    a.push(from_lua(&t.raw_get::<Value>(i)?, tags, depth + 1)?);
                }
                serde_json::Value::Array(a)
            } else {
                let mut o = serde_json::Map::new();
                for pair in t.clone().pairs::<Value, Value>() {
                    let (k, x) = pair?;
                    let key = match k {
                        Value::String(s) => s.to_string_lossy(),
                        Value::Integer(i) => i.to_string(),
                        Value::Number(n) => n.to_string(),
                        other => {
                            return Err(mlua::Error::runtime(format!(
                                "json: an object key must be a string or a number, not a {}",
                                other.type_name()
                            )));
                        }
                    };
                    o.insert(key, from_lua(&x, tags, depth + 1)?);
                }
                serde_json::Value::Object(o)
            }
        }
        other => {
            return Err(mlua::Error::runtime(format!(
                "json: a {} cannot be written as JSON",
                other.type_name()
            )));
        }
    })
}
