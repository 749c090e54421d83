//! `msys.adaptive` (Momentum's `3-ad/ad-custom-rules.md`): `registerRules(rules, mode)`
//! adds response rules to adaptive delivery, `"augment"` (per domain, after the rules in
//! force) or `"replace"` (the domain's rules instead of those in force).
//!
//! Scripts call it while they load. Each registration folds into the state's own rule set;
//! the policy's trial state hands the result to the daemon ([`crate::Policy::adaptive_rules`]),
//! so a reload that fails leaves the rules of the policy in force, and one that succeeds
//! replaces them whole (a rule removed from the script is gone).
//!
//! A rule that does not parse (a bad regular expression, an unknown action, a duration or
//! trigger that does not parse, a `configuration` function) fails the load, naming the
//! domain and the rule: a rule is never dropped in silence.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use bindery_adaptive::{Action, DomainRules, Entry, Mode, Range, Response, RuleSet, Trigger};
use mlua::{Lua, Table, Value};

/// What a state registered so far.
pub type Registered = Rc<RefCell<RuleSet>>;

pub fn install(lua: &Lua, msys: &Table, registered: Registered) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set(
        "registerRules",
        lua.create_function(move |_, (rules, mode): (Table, Option<String>)| {
            let mode = match mode.as_deref().map(str::to_ascii_lowercase).as_deref() {
                None | Some("augment") => Mode::Augment,
                Some("replace") => Mode::Replace,
                Some(other) => {
                    return Err(fail(format!(
                        "mode `{other}` is neither \"augment\" nor \"replace\""
                    )));
                }
            };
            let incoming = RuleSet::new(entries(&rules)?).map_err(|e| fail(e.to_string()))?;
            let mut current = registered.borrow_mut();
            let merged = current
                .register(&incoming, mode)
                .map_err(|e| fail(e.to_string()))?;
            *current = merged;
            Ok(())
        })?,
    )?;
    msys.set("adaptive", t)
}

fn fail(text: String) -> mlua::Error {
    mlua::Error::runtime(format!("msys.adaptive.registerRules: {text}"))
}

/// The rules table: domain to rules, or domain to the domain it is an alias of.
fn entries(rules: &Table) -> mlua::Result<BTreeMap<String, Entry>> {
    let mut out = BTreeMap::new();
    for pair in rules.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let Value::String(domain) = k else {
            return Err(fail("the rules table is keyed by domain names".into()));
        };
        let domain = domain.to_string_lossy().to_ascii_lowercase();
        let entry = match v {
            Value::String(target) => Entry::Alias(target.to_string_lossy().to_ascii_lowercase()),
            Value::Table(t) => Entry::Rules(domain_rules(&domain, &t)?),
            other => {
                return Err(fail(format!(
                    "`{domain}`: a table of rules or the name of another domain, not a {}",
                    other.type_name()
                )));
            }
        };
        out.insert(domain, entry);
    }
    Ok(out)
}

fn domain_rules(domain: &str, t: &Table) -> mlua::Result<DomainRules> {
    let mut rules = DomainRules::default();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let key = match &k {
            Value::String(s) => s.to_string_lossy(),
            _ => {
                return Err(fail(format!(
                    "`{domain}`: keys are `responses` and `configuration`"
                )));
            }
        };
        match (key.as_str(), v) {
            ("responses", Value::Table(list)) => {
                for (i, r) in list.sequence_values::<Table>().enumerate() {
                    rules.responses.push(response(domain, i + 1, &r?)?);
                }
            }
            ("configuration", Value::Table(conf)) => {
                for pair in conf.pairs::<String, Value>() {
                    let (opt, v) = pair?;
                    let opt = opt.to_ascii_lowercase();
                    rules
                        .configuration
                        .insert(opt.clone(), range(domain, &opt, v)?);
                }
            }
            (other, _) => {
                return Err(fail(format!(
                    "`{domain}`: `{other}` is not `responses` or `configuration` (a table each)"
                )));
            }
        }
    }
    Ok(rules)
}

/// One response rule: `code`, `trigger`, `action`, and optional `message` and `phase`
/// (which Momentum does not implement either).
fn response(domain: &str, n: usize, r: &Table) -> mlua::Result<Response> {
    let at = |what: String| fail(format!("`{domain}`, response {n}: {what}"));
    let code: String = match r.get::<Value>("code")? {
        Value::String(s) => s.to_string_lossy(),
        _ => {
            return Err(at(
                "`code` (a regular expression on the reply) is missing".into()
            ));
        }
    };
    let trigger = match r.get::<Value>("trigger")? {
        Value::Nil => Trigger::FIRST,
        Value::Integer(i) => Trigger::parse(&i.to_string()).map_err(|e| at(e.to_string()))?,
        Value::Number(x) => Trigger::parse(&x.to_string()).map_err(|e| at(e.to_string()))?,
        Value::String(s) => Trigger::parse(&s.to_string_lossy()).map_err(|e| at(e.to_string()))?,
        other => return Err(at(format!("`trigger` is a {}", other.type_name()))),
    };
    let words: Vec<String> = match r.get::<Value>("action")? {
        Value::Table(t) => t
            .sequence_values::<Value>()
            .map(|v| {
                v.map(|v| match v {
                    Value::String(s) => s.to_string_lossy(),
                    Value::Integer(i) => i.to_string(),
                    Value::Number(x) => x.to_string(),
                    _ => String::new(),
                })
            })
            .collect::<mlua::Result<_>>()?,
        Value::String(s) => vec![s.to_string_lossy()],
        _ => {
            return Err(at(
                "`action` (such as {\"suspend\", \"4 hours\"}) is missing".into(),
            ));
        }
    };
    let actions = Action::parse_all(&words).map_err(|e| at(e.to_string()))?;
    let message = match r.get::<Value>("message")? {
        Value::String(s) => s.to_string_lossy(),
        _ => String::new(),
    };
    Ok(Response {
        code,
        trigger,
        actions,
        message,
        origin: "msys.adaptive.registerRules".into(),
    })
}

/// `{min, max}` clips what the rules set; a single number forces the value.
fn range(domain: &str, opt: &str, v: Value) -> mlua::Result<Range> {
    let num = |v: Value| -> Option<u64> {
        match v {
            Value::Integer(i) => u64::try_from(i).ok(),
            Value::Number(x) if x >= 0.0 && x.fract() == 0.0 => Some(x as u64),
            _ => None,
        }
    };
    let bad = |what: &str| fail(format!("`{domain}`: configuration `{opt}`: {what}"));
    match v {
        Value::Table(t) => {
            let min = t.get::<Value>(1).ok().and_then(num);
            let max = t.get::<Value>(2).ok().and_then(num);
            match (min, max) {
                (Some(min), Some(max)) => Ok(Range { min, max }),
                _ => Err(bad("a range is {min, max}, two whole numbers")),
            }
        }
        Value::Function(_) => Err(bad(
            "a function of the binding's age: bindery runs none; write a range {min, max}, or a warm-up plan",
        )),
        v => match num(v) {
            Some(n) => Ok(Range { min: n, max: n }),
            None => Err(bad("a whole number or a range {min, max}")),
        },
    }
}
