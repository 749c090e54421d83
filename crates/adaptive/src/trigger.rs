//! A rule's trigger (`ad-custom-rules.md`): `"1"` fires on the first occurrence; `"N/S"` when
//! more than N occurrences are seen within S seconds ("`10/1` triggers the action when more
//! than 10 occurrences of this code are detected per second").

use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trigger {
    /// Occurrences that must be exceeded (0 for `"1"`: the first fires).
    pub more_than: u32,
    /// Within this many seconds.
    pub per: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a trigger: write `1` (the first occurrence) or `N/S` (more than N in S seconds)"
)]
pub struct TriggerError(pub String);

impl Trigger {
    pub const FIRST: Trigger = Trigger {
        more_than: 0,
        per: 1,
    };

    pub fn parse(text: &str) -> Result<Trigger, TriggerError> {
        let t = text.trim();
        let bad = || TriggerError(t.to_string());
        match t.split_once('/') {
            None => match t.parse::<u32>() {
                Ok(1) => Ok(Trigger::FIRST),
                // "N" alone: N occurrences at all (within a day, so a count cannot grow forever).
                Ok(n) if n > 1 => Ok(Trigger {
                    more_than: n - 1,
                    per: 86_400,
                }),
                _ => Err(bad()),
            },
            Some((n, s)) => {
                let n: u32 = n.trim().parse().map_err(|_| bad())?;
                let s: u64 = s.trim().parse().map_err(|_| bad())?;
                if s == 0 {
                    return Err(bad());
                }
                Ok(Trigger {
                    more_than: n,
                    per: s,
                })
            }
        }
    }

    /// Records an occurrence at `now` (seconds) in `seen` and says whether the rule fires.
    /// `seen` keeps only the occurrences within the window, at most `more_than + 1`.
    pub fn hit(&self, seen: &mut VecDeque<u64>, now: u64) -> bool {
        let since = now.saturating_sub(self.per);
        while seen.front().is_some_and(|&t| t < since || t > now) {
            seen.pop_front();
        }
        seen.push_back(now);
        if seen.len() > self.more_than as usize {
            seen.clear();
            return true;
        }
        false
    }

    pub fn describe(&self) -> String {
        if *self == Trigger::FIRST {
            "1".into()
        } else {
            format!("{}/{}", self.more_than, self.per)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(Trigger::parse("1"), Ok(Trigger::FIRST));
        assert_eq!(
            Trigger::parse("10/1"),
            Ok(Trigger {
                more_than: 10,
                per: 1
            })
        );
        assert_eq!(
            Trigger::parse("5/60"),
            Ok(Trigger {
                more_than: 5,
                per: 60
            })
        );
        assert!(Trigger::parse("often").is_err());
        assert!(Trigger::parse("5/0").is_err());
        assert!(Trigger::parse("0").is_err());
        assert!(Trigger::parse("").is_err());
    }

    #[test]
    fn fires_when_more_than_n_fall_in_the_window() {
        let t = Trigger::parse("3/60").unwrap();
        let mut seen = VecDeque::new();
        assert!(!t.hit(&mut seen, 0));
        assert!(!t.hit(&mut seen, 10));
        assert!(!t.hit(&mut seen, 20));
        assert!(t.hit(&mut seen, 30), "the fourth within 60 s");
        // The count starts again after a firing.
        assert!(!t.hit(&mut seen, 31));
        // Old occurrences leave the window.
        assert!(!t.hit(&mut seen, 200));
        assert!(!t.hit(&mut seen, 201));
        assert!(!t.hit(&mut seen, 202));
        assert!(t.hit(&mut seen, 203));
        let mut seen = VecDeque::new();
        assert!(Trigger::FIRST.hit(&mut seen, 5));
    }
}
