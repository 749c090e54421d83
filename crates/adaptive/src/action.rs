//! The actions of Momentum's adaptive rules (`3-ad/ad-adaptive-rules-actions.md`,
//! `ad-custom-rules.md`), as the Lua tables write them (`{"suspend", "4 hours"}`) or a
//! configuration list (`( "suspend" "4 hours" )`).

use crate::duration;

/// What a rule does to its binding x domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Hold the mail for this long (seconds).
    Suspend(u64),
    /// Throw the mail away for this long: it is failed without a connection (Momentum's
    /// "blackhole the domain").
    Blackhole(u64),
    /// Lower `outbound_throttle_messages` (the only parameter is `down`).
    ThrottleDown,
    /// Wait this long before retrying (`retry_interval` and `max_retry_interval`).
    Greylisted(u64),
    /// Set the binding's age (seconds): it is warming up again.
    /// Lower `max_outbound_connections` by this many.
    ReduceConnections(u32),
    /// Lower `max_deliveries_per_connection` by this many.
    ReduceDeliveries(u32),
    /// Fail the mail that is waiting (KumoMTA's `Bounce`; bindery's, not Momentum's).
    Bounce,
}

const NAMES: &[&str] = &[
    "suspend",
    "blackhole",
    "throttle",
    "greylisted",
    "warmup",
    "reduce_connections",
    "reduce_deliveries",
    "bounce",
];

/// Why an action does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("no action")]
    Empty,
    #[error("`{name}` is not an adaptive action ({}){hint}", NAMES.join(", "))]
    Unknown { name: String, hint: String },
    #[error("`{0}` needs a parameter: {1}")]
    Missing(&'static str, &'static str),
    #[error("`{0}`: {1}")]
    Parameter(&'static str, String),
    #[error(
        "`transcode` (rewriting the reply, in Momentum's disposition rules) is not implemented by bindery: remove it from the rule's action, and the rule's other actions apply"
    )]
    Transcode,
    #[error(
        "`warmup` (the binding age that Momentum's `configuration` functions read) is not implemented by bindery, which runs no such functions"
    )]
    Warmup,
}

fn count(name: &'static str, p: &str) -> Result<u32, ActionError> {
    match p.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ActionError::Parameter(
            name,
            format!("`{p}` is not a positive whole number"),
        )),
    }
}

fn secs(name: &'static str, p: &str) -> Result<u64, ActionError> {
    match duration::parse(p) {
        Ok(0) => Err(ActionError::Parameter(name, "a duration of 0".into())),
        Ok(s) => Ok(s),
        Err(e) => Err(ActionError::Parameter(name, e.to_string())),
    }
}

impl Action {
    /// A rule's `action` list, which may hold several actions one after the other
    /// (`{"transcode", "554 ...", "throttle", "down"}`): each known action name starts the
    /// next one, and the words up to it are its parameter.
    pub fn parse_all<S: AsRef<str>>(words: &[S]) -> Result<Vec<Action>, ActionError> {
        let starts: Vec<usize> = words
            .iter()
            .enumerate()
            .filter(|(i, w)| {
                *i == 0
                    || NAMES
                        .iter()
                        .chain(&["transcode"])
                        .any(|n| n.eq_ignore_ascii_case(w.as_ref().trim()))
            })
            .map(|(i, _)| i)
            .collect();
        if starts.is_empty() {
            return Err(ActionError::Empty);
        }
        let mut out = Vec::new();
        for (k, &a) in starts.iter().enumerate() {
            let b = starts.get(k + 1).copied().unwrap_or(words.len());
            out.push(Action::parse(&words[a..b])?);
        }
        Ok(out)
    }

    /// Reads an action from its words: `["suspend", "4 hours"]`, `["throttle", "down"]`,
    /// `["reduce_connections", "1"]`. One word may hold both (`"suspend 4 hours"`).
    pub fn parse<S: AsRef<str>>(words: &[S]) -> Result<Action, ActionError> {
        let joined;
        let (name, param) = match words {
            [] => return Err(ActionError::Empty),
            [one] => {
                joined = one.as_ref().trim().to_string();
                match joined.split_once(char::is_whitespace) {
                    Some((n, p)) => (n.to_string(), p.trim().to_string()),
                    None => (joined.clone(), String::new()),
                }
            }
            [n, rest @ ..] => (
                n.as_ref().trim().to_string(),
                rest.iter()
                    .map(|w| w.as_ref().trim())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        };
        let lower = name.to_ascii_lowercase();
        let p = param.as_str();
        let need = |n: &'static str, what: &'static str| {
            if p.is_empty() {
                Err(ActionError::Missing(n, what))
            } else {
                Ok(())
            }
        };
        match lower.as_str() {
            "suspend" => {
                need("suspend", "how long, such as `4 hours`")?;
                Ok(Action::Suspend(secs("suspend", p)?))
            }
            "blackhole" => {
                need("blackhole", "how long, such as `4 hours`")?;
                Ok(Action::Blackhole(secs("blackhole", p)?))
            }
            "greylisted" => {
                need("greylisted", "how long, such as `15 minutes`")?;
                Ok(Action::Greylisted(secs("greylisted", p)?))
            }
            "warmup" => Err(ActionError::Warmup),
            "throttle" => match p.to_ascii_lowercase().as_str() {
                "down" => Ok(Action::ThrottleDown),
                "" => Err(ActionError::Missing("throttle", "`down`")),
                other => Err(ActionError::Parameter(
                    "throttle",
                    format!("`{other}`: the only direction is `down`"),
                )),
            },
            "reduce_connections" => {
                need("reduce_connections", "how many, such as `1`")?;
                Ok(Action::ReduceConnections(count("reduce_connections", p)?))
            }
            "reduce_deliveries" => {
                need("reduce_deliveries", "how many, such as `1`")?;
                Ok(Action::ReduceDeliveries(count("reduce_deliveries", p)?))
            }
            "bounce" if p.is_empty() => Ok(Action::Bounce),
            "bounce" => Err(ActionError::Parameter(
                "bounce",
                "takes no parameter".into(),
            )),
            "transcode" => Err(ActionError::Transcode),
            _ => {
                let hint = NAMES
                    .iter()
                    .map(|n| (strsim::levenshtein(&lower, n), *n))
                    .filter(|(d, _)| *d <= 3)
                    .min()
                    .map(|(_, n)| format!("; did you mean `{n}`?"))
                    .unwrap_or_default();
                Err(ActionError::Unknown { name, hint })
            }
        }
    }

    /// Momentum's words for it.
    pub fn describe(&self) -> String {
        match self {
            Action::Suspend(s) => format!("suspend {}", duration::format(*s)),
            Action::Blackhole(s) => format!("blackhole {}", duration::format(*s)),
            Action::ThrottleDown => "throttle down".into(),
            Action::Greylisted(s) => format!("greylisted {}", duration::format(*s)),
            Action::ReduceConnections(n) => format!("reduce_connections {n}"),
            Action::ReduceDeliveries(n) => format!("reduce_deliveries {n}"),
            Action::Bounce => "bounce".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_actions_in_one_list() {
        assert_eq!(
            Action::parse_all(&["throttle", "down", "suspend", "4 hours"]),
            Ok(vec![Action::ThrottleDown, Action::Suspend(14_400)])
        );
        assert_eq!(
            Action::parse_all(&["suspend", "4 hours"]),
            Ok(vec![Action::Suspend(14_400)])
        );
        assert_eq!(
            Action::parse_all(&["transcode", "554 x", "throttle", "down"]),
            Err(ActionError::Transcode)
        );
        assert!(Action::parse_all::<&str>(&[]).is_err());
    }

    #[test]
    fn the_documented_actions() {
        assert_eq!(
            Action::parse(&["suspend", "4 hours"]),
            Ok(Action::Suspend(14_400))
        );
        assert_eq!(
            Action::parse(&["blackhole", "4 hours"]),
            Ok(Action::Blackhole(14_400))
        );
        assert_eq!(
            Action::parse(&["throttle", "down"]),
            Ok(Action::ThrottleDown)
        );
        assert_eq!(
            Action::parse(&["greylisted", "15 minutes"]),
            Ok(Action::Greylisted(900))
        );
        assert_eq!(
            Action::parse(&["warmup", "86400"]),
            Err(ActionError::Warmup)
        );
        assert_eq!(
            Action::parse(&["reduce_connections", "1"]),
            Ok(Action::ReduceConnections(1))
        );
        assert_eq!(
            Action::parse(&["reduce_deliveries", "5"]),
            Ok(Action::ReduceDeliveries(5))
        );
        assert_eq!(
            Action::parse(&["suspend 2 hours"]),
            Ok(Action::Suspend(7200))
        );
        assert_eq!(Action::parse(&["bounce"]), Ok(Action::Bounce));
        assert_eq!(
            Action::parse(&["Suspend", "1 day"]).map(|a| a.describe()),
            Ok("suspend 1 day".into())
        );
    }

    #[test]
    fn bad_actions_are_errors_that_say_why() {
        let e = Action::parse(&["suspnd", "4 hours"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `suspend`"), "{e}");
        let e = Action::parse(&["suspend", "four hours"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a duration"), "{e}");
        assert_eq!(
            Action::parse(&["suspend"]),
            Err(ActionError::Missing(
                "suspend",
                "how long, such as `4 hours`"
            ))
        );
        let e = Action::parse(&["throttle", "up"]).unwrap_err().to_string();
        assert!(e.contains("only direction is `down`"), "{e}");
        assert!(Action::parse(&["reduce_connections", "-1"]).is_err());
        assert!(Action::parse(&["reduce_connections", "0"]).is_err());
        assert_eq!(Action::parse(&["transcode"]), Err(ActionError::Transcode));
        assert_eq!(Action::parse::<&str>(&[]), Err(ActionError::Empty));
        assert!(Action::parse(&["suspend", "0 hours"]).is_err());
    }
}
