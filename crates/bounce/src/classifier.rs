//! The classifier: overrides first, then the shipped rules, first match wins.
//!
//! Order for an SMTP reply to `domain`:
//! 1. SMTP overrides limited to `domain` (user files, then system files),
//! 2. SMTP overrides of every domain (user, then system),
//! 3. the shipped rules.
//!
//! For out-of-band mail (an MDN): the MDN overrides (user, then system), then the shipped
//! rules. Momentum's page says a domain override applies "only to responses given when
//! talking to the specified domain"; it does not say whether it beats a global one, so the
//! more specific wins here.
//!
//! Each group is one `RegexSet`: a reply is scanned once per group, whatever the number
//! of rules. Architecture Invariant: classification never allocates unless the reply has
//! continuation status codes to strip, and never fails: a reply no rule matches is class 1.

use std::borrow::Cow;
use std::collections::HashMap;

use regex::bytes::RegexSet;

use crate::class::{Classes, Described, UNDETERMINED};
use crate::overrides::SmtpOverride;
use crate::rules::{Origin, Rule, builder};

/// Replies longer than this are classified on their first part (a DSN's diagnostic text
/// can run to kilobytes; what decides the class is at its start).
const MAX_SCAN: usize = 2048;

/// A compiled group of rules.
#[derive(Debug)]
struct Group {
    rules: Vec<Rule>,
    set: RegexSet,
}

impl Group {
    fn new(rules: Vec<Rule>) -> Result<Group, regex::Error> {
        let set = builder(rules.iter().map(|r| r.pattern.as_str())).build()?;
        Ok(Group { rules, set })
    }

    fn first(&self, text: &[u8]) -> Option<&Rule> {
        if self.rules.is_empty() {
            return None;
        }
        // `matches` reports every rule; the lowest index is the first in file order.
        self.set.matches(text).iter().next().map(|i| &self.rules[i])
    }
}

/// What the classifier decided, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict<'a> {
    pub class: u16,
    /// The rule that matched; `None` for Undetermined.
    pub rule: Option<&'a Rule>,
}

impl Verdict<'_> {
    pub fn origin(&self) -> Option<&Origin> {
        self.rule.map(|r| &r.origin)
    }
}

/// Everything a classifier is built from.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    pub classes: Classes,
    /// User SMTP overrides, then system ones, in file order.
    pub smtp: Vec<SmtpOverride>,
    /// User MDN overrides, then system ones.
    pub mdn: Vec<Rule>,
    /// The rules after the overrides: the shipped set, unless a test replaces it.
    pub base: Vec<Rule>,
}

impl Sources {
    /// No overrides, the shipped rules.
    pub fn shipped() -> Sources {
        Sources {
            base: crate::rules::shipped(),
            ..Sources::default()
        }
    }
}

/// A built classifier. Cheap to share (`Arc`); rebuilt whole on reload.
#[derive(Debug)]
pub struct Classifier {
    classes: Classes,
    by_domain: HashMap<String, Group>,
    global: Group,
    mdn: Group,
    base: Group,
    counts: Counts,
}

/// How many rules of each kind a classifier holds, for the console.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub domain_overrides: usize,
    pub global_overrides: usize,
    pub mdn_overrides: usize,
    pub base: usize,
}

impl Classifier {
    pub fn new(s: Sources) -> Result<Classifier, regex::Error> {
        let mut domains: HashMap<String, Vec<Rule>> = HashMap::new();
        let mut global = Vec::new();
        let mut counts = Counts {
            mdn_overrides: s.mdn.len(),
            base: s.base.len(),
            ..Counts::default()
        };
        for o in s.smtp {
            match o.domain {
                Some(d) => {
                    counts.domain_overrides += 1;
                    domains.entry(d).or_default().push(o.rule);
                }
                None => {
                    counts.global_overrides += 1;
                    global.push(o.rule);
                }
            }
        }
        let by_domain = domains
            .into_iter()
            .map(|(d, r)| Group::new(r).map(|g| (d, g)))
            .collect::<Result<_, _>>()?;
        Ok(Classifier {
            classes: s.classes,
            by_domain,
            global: Group::new(global)?,
            mdn: Group::new(s.mdn)?,
            base: Group::new(s.base)?,
            counts,
        })
    }

    /// The shipped rules and nothing else.
    pub fn shipped() -> Classifier {
        // The shipped set is tested to compile; an empty classifier is the fallback.
        Classifier::new(Sources::shipped()).unwrap_or_else(|_| Classifier::empty())
    }

    fn empty() -> Classifier {
        let none = || Group {
            rules: Vec::new(),
            set: RegexSet::empty(),
        };
        Classifier {
            classes: Classes::default(),
            by_domain: HashMap::new(),
            global: none(),
            mdn: none(),
            base: none(),
            counts: Counts::default(),
        }
    }

    /// Classifies an SMTP reply (`550 5.1.1 text`, one line) given while delivering to
    /// `domain` (Momentum's `msys.bounce.classify_smtp_response(text, domain)`).
    pub fn smtp(&self, reply: &str, domain: &str) -> Verdict<'_> {
        let text = normalize(reply);
        let b = scan(&text);
        // Most deployments have no domain overrides: no lowercased copy of the domain then.
        let d = (!domain.is_empty() && !self.by_domain.is_empty())
            .then(|| self.by_domain.get(&domain.to_ascii_lowercase()))
            .flatten();
        let rule = d
            .and_then(|g| g.first(b))
            .or_else(|| self.global.first(b))
            .or_else(|| self.base.first(b));
        verdict(rule)
    }

    /// Classifies the text of out-of-band mail: a DSN's diagnostic, an auto-reply.
    pub fn mdn(&self, text: &str) -> Verdict<'_> {
        let text = normalize(text);
        let b = scan(&text);
        verdict(self.mdn.first(b).or_else(|| self.base.first(b)))
    }

    pub fn describe(&self, code: u16) -> Described<'_> {
        self.classes.describe(code)
    }

    pub fn classes(&self) -> &Classes {
        &self.classes
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }
}

fn verdict(rule: Option<&Rule>) -> Verdict<'_> {
    Verdict {
        class: rule.map_or(UNDETERMINED, |r| r.class),
        rule,
    }
}

fn scan(text: &str) -> &[u8] {
    let b = text.as_bytes();
    &b[..b.len().min(MAX_SCAN)]
}

/// A multi-line reply joined into one line repeats its enhanced code on every line
/// (`550 5.1.1 The email account ... 5.1.1 double-checking ...`): the repeats go, so that
/// a phrase broken across lines still reads as one (KumoMTA issue 157 found the same).
pub fn normalize(reply: &str) -> Cow<'_, str> {
    let mut words = reply.splitn(3, ' ');
    let (Some(code), Some(enh)) = (words.next(), words.next()) else {
        return Cow::Borrowed(reply);
    };
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) || !is_enhanced(enh) {
        return Cow::Borrowed(reply);
    }
    let head = code.len() + 1 + enh.len();
    let rest = &reply[head..];
    let needle = format!(" {enh} ");
    if !rest.contains(&needle) {
        return Cow::Borrowed(reply);
    }
    let mut out = String::with_capacity(reply.len());
    out.push_str(&reply[..head]);
    out.push_str(&rest.replace(&needle, " "));
    Cow::Owned(out)
}

fn is_enhanced(w: &str) -> bool {
    let mut parts = w.split('.');
    let ok = |p: Option<&str>, max: usize| {
        p.is_some_and(|p| !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit()))
    };
    matches!(w.as_bytes().first(), Some(b'2' | b'4' | b'5'))
        && ok(parts.next(), 1)
        && ok(parts.next(), 3)
        && ok(parts.next(), 3)
        && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overrides::{parse_mdn, parse_smtp};

    fn class(c: &Classifier, reply: &str) -> u16 {
        c.smtp(reply, "example.com").class
    }

    #[test]
    fn shipped_rules_classify_the_documented_cases() {
        let c = Classifier::shipped();
        let cases = [
            (
                "550 5.1.1 <x@example.com>: Recipient address rejected: User unknown in local recipient table",
                10,
            ),
            (
                "552 5.2.2 The email account that you tried to reach is over quota.",
                22,
            ),
            ("552 5.3.4 Message size exceeds fixed limit", 23),
            (
                "554 5.4.7 [internal] exceeded max time without delivery",
                24,
            ),
            (
                "421 4.7.0 [TSS04] Messages from 127.0.0.1 temporarily deferred due to unexpected volume or user complaints",
                51,
            ),
            (
                "554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.spamhaus.org",
                51,
            ),
            ("554 5.7.1 <x@example.com>: Relay access denied", 54),
            (
                "550 5.7.26 Unauthenticated email from example.com is not accepted due to domain's DMARC policy",
                50,
            ),
            (
                "550 5.7.1 Our system has detected that this message is likely unsolicited mail",
                52,
            ),
            ("451 4.7.1 Greylisted, please try again later", 70),
            ("550 5.1.2 domain nx.test does not exist (NXDOMAIN)", 21),
            ("556 5.1.10 null.test does not accept mail (null MX)", 21),
            ("554 5.7.0 [internal] Blackholed", 25),
            ("550 5.7.1 Message rejected: virus found", 53),
            ("451 4.3.0 message body unreadable in the spool", 70),
            ("550 who knows", 40),
            ("452 who knows", 70),
            ("nothing at all", 1),
        ];
        for (reply, want) in cases {
            assert_eq!(class(&c, reply), want, "{reply}");
        }
    }

    #[test]
    fn the_verdict_names_its_rule() {
        let c = Classifier::shipped();
        let v = c.smtp("550 5.1.1 no such user", "");
        let o = v.origin().expect("a rule");
        assert_eq!(o.file, "shipped.rules");
        assert!(o.line > 1);
        assert!(
            o.source.as_deref().unwrap_or("").contains("RFC 3463"),
            "{o:?}"
        );
        assert_eq!(c.smtp("xyz", "").origin(), None);
    }

    #[test]
    fn overrides_come_first_domain_before_global() {
        let mut classes = Classes::default();
        classes.register(99, "profanity").unwrap();
        let smtp = parse_smtp(
            "u.ovr",
            "example.com,51,user unknown\n,22,user unknown\n,99,rude|word\n",
            &classes,
        )
        .unwrap();
        let mdn = parse_mdn("m.ovr", "100,click to confirm\n", &classes).unwrap();
        let c = Classifier::new(Sources {
            classes,
            smtp,
            mdn,
            base: crate::rules::shipped(),
        })
        .unwrap();
        assert_eq!(c.smtp("550 5.1.1 User Unknown", "Example.COM").class, 51);
        assert_eq!(c.smtp("550 5.1.1 User Unknown", "other.test").class, 22);
        assert_eq!(c.smtp("550 a rude little word", "").class, 99);
        assert_eq!(c.describe(99).name, "profanity");
        assert_eq!(c.mdn("Please click to confirm").class, 100);
        assert_eq!(
            c.mdn("user unknown").class,
            10,
            "SMTP overrides are not MDN ones"
        );
        assert_eq!(
            c.counts(),
            Counts {
                domain_overrides: 1,
                global_overrides: 2,
                mdn_overrides: 1,
                base: crate::rules::shipped().len()
            }
        );
    }

    #[test]
    fn continuation_codes_are_stripped() {
        let r =
            "550 5.1.1 The email account that you tried to reach does 5.1.1 not exist. Please try";
        assert_eq!(
            normalize(r),
            "550 5.1.1 The email account that you tried to reach does not exist. Please try"
        );
        assert!(matches!(normalize("550 no code here"), Cow::Borrowed(_)));
        assert!(matches!(normalize("550 5.1.1 once"), Cow::Borrowed(_)));
        assert_eq!(Classifier::shipped().smtp(r, "gmail.com").class, 10);
    }

    #[test]
    fn long_and_odd_input_does_not_panic() {
        let c = Classifier::shipped();
        let long = format!("550 5.1.1 {}", "é".repeat(5000));
        assert_eq!(c.smtp(&long, "").class, 10);
        assert_eq!(c.smtp("", "").class, 1);
        assert_eq!(c.smtp("550", "").class, 40);
        assert_eq!(c.smtp("550 5.", "").class, 40);
    }
}
