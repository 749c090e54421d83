//! Durations as Momentum's adaptive rules write them (`ad-adaptive-rules-actions.md`): "a
//! numeral and a time unit indicator separated by a space, for example `15 minutes`. The unit
//! can be one of seconds, minutes, hours or days." A bare number is seconds (the `warmup`
//! action's parameter, `adaptive_default_suspension = "4 hours"` takes the same form).

/// Why a duration does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("`{0}` is not a duration: write a number and a unit, such as `4 hours`")]
    Form(String),
    #[error("`{unit}` is not a time unit (seconds, minutes, hours or days){hint}")]
    Unit { unit: String, hint: String },
    #[error("`{0}` is too long a duration")]
    Overflow(String),
}

const UNITS: &[(&str, u64)] = &[
    ("second", 1),
    ("minute", 60),
    ("hour", 3600),
    ("day", 86_400),
];

/// Seconds in `text`: `30`, `30 seconds`, `15 minutes`, `4 hours`, `1 day`; units singular
/// or plural, any case; a bare number is seconds.
pub fn parse(text: &str) -> Result<u64, DurationError> {
    let t = text.trim();
    let (num, unit) = match t.split_once(char::is_whitespace) {
        Some((n, u)) => (n, u.trim()),
        None => (t, ""),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| DurationError::Form(t.to_string()))?;
    if unit.is_empty() {
        return Ok(n);
    }
    let u = unit.to_ascii_lowercase();
    let singular = u.strip_suffix('s').unwrap_or(&u);
    let Some((_, secs)) = UNITS.iter().find(|(name, _)| *name == singular) else {
        let hint = UNITS
            .iter()
            .map(|(name, _)| (strsim::levenshtein(singular, name), *name))
            .filter(|(d, _)| *d <= 2)
            .min()
            .map(|(_, name)| format!("; did you mean `{name}s`?"))
            .unwrap_or_default();
        return Err(DurationError::Unit {
            unit: unit.to_string(),
            hint,
        });
    };
    n.checked_mul(*secs)
        .ok_or_else(|| DurationError::Overflow(t.to_string()))
}

/// `seconds` as Momentum writes it back: the largest unit that divides it.
pub fn format(seconds: u64) -> String {
    for (name, secs) in UNITS.iter().rev() {
        if seconds >= *secs && seconds.is_multiple_of(*secs) {
            let n = seconds / secs;
            return format!("{n} {name}{}", if n == 1 { "" } else { "s" });
        }
    }
    format!("{seconds} seconds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_forms() {
        assert_eq!(parse("15 minutes"), Ok(900));
        assert_eq!(parse("4 hours"), Ok(14_400));
        assert_eq!(parse("1 day"), Ok(86_400));
        assert_eq!(parse("30 seconds"), Ok(30));
        assert_eq!(parse("2 Hours"), Ok(7200));
        assert_eq!(parse("3600"), Ok(3600));
        assert_eq!(parse("  1 hour "), Ok(3600));
    }

    #[test]
    fn bad_durations_say_why() {
        assert_eq!(
            parse("four hours"),
            Err(DurationError::Form("four hours".into()))
        );
        assert_eq!(parse(""), Err(DurationError::Form("".into())));
        let e = parse("4 hourz").unwrap_err().to_string();
        assert!(e.contains("did you mean `hours`"), "{e}");
        let e = parse("4 fortnights").unwrap_err().to_string();
        assert!(
            e.contains("not a time unit") && !e.contains("did you mean"),
            "{e}"
        );
        assert!(matches!(
            parse("99999999999999999 days"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn written_back() {
        assert_eq!(format(14_400), "4 hours");
        assert_eq!(format(60), "1 minute");
        assert_eq!(format(90), "90 seconds");
        assert_eq!(format(86_400 * 2), "2 days");
    }
}
