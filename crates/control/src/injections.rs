//! Who injects: counts per SMTP AUTH user and per HTTP API key (by the key's name, never the
//! key), for the console's `injection summary` and Prometheus.
//!
//! The names come from clients (a failed login may try any user name), so at most
//! [`MAX_NAMES`] are counted by name per kind and the rest under `_other`: a client cycling
//! through names cannot grow this without bound. Counts start at zero with the process.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

/// Distinct names counted per kind.
pub const MAX_NAMES: usize = 10_000;

/// How mail came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// SMTP with AUTH; the name is the login.
    Smtp,
    /// The Transmissions API; the name is the API key's.
    Api,
}

impl Via {
    pub fn word(self) -> &'static str {
        match self {
            Via::Smtp => "smtp",
            Via::Api => "api",
        }
    }
}

/// One user's or key's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Logins (SMTP) or requests (API) that were let in.
    pub logins: u64,
    /// Logins refused: a wrong password, a locked-out address.
    pub failed_logins: u64,
    /// Messages spooled.
    pub messages: u64,
    /// Recipients accepted.
    pub recipients: u64,
    /// Recipients refused (the API's `total_rejected_recipients`).
    pub rejected: u64,
}

#[derive(Debug, Default)]
pub struct Injections {
    inner: Mutex<Named>,
}

/// The counts, and how many names each kind has (SMTP, API), so a new name is not a walk
/// over every other.
#[derive(Debug, Default)]
struct Named {
    counts: BTreeMap<(Via, String), Counts>,
    names: [usize; 2],
}

impl Injections {
    fn with(&self, via: Via, name: &str, f: impl FnOnce(&mut Counts)) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Named { counts, names } = &mut *guard;
        let key = (via, name.to_string());
        if let Some(c) = counts.get_mut(&key) {
            f(c);
            return;
        }
        let known = &mut names[via as usize];
        let key = if *known >= MAX_NAMES {
            (via, "_other".to_string())
        } else {
            *known += 1;
            key
        };
        f(counts.entry(key).or_default());
    }

    /// A login (or an API request's key check) and whether it was let in.
    pub fn login(&self, via: Via, name: &str, ok: bool) {
        self.with(via, name, |c| {
            if ok {
                c.logins += 1
            } else {
                c.failed_logins += 1
            }
        });
    }

    /// A message spooled for `name` with `recipients` accepted and `rejected` refused.
    pub fn message(&self, via: Via, name: &str, recipients: u64, rejected: u64) {
        self.with(via, name, |c| {
            c.messages += 1;
            c.recipients += recipients;
            c.rejected += rejected;
        });
    }

    /// Recipients refused without a message (a request none of whose recipients passed).
    pub fn rejected(&self, via: Via, name: &str, rejected: u64) {
        self.with(via, name, |c| c.rejected += rejected);
    }

    /// Everything, sorted by kind and name.
    pub fn figures(&self) -> Vec<(Via, String, Counts)> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .counts
            .iter()
            .map(|((v, n), c)| (*v, n.clone(), *c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_name_and_bounded() {
        let i = Injections::default();
        i.login(Via::Smtp, "alice", true);
        i.login(Via::Smtp, "alice", false);
        i.message(Via::Smtp, "alice", 3, 0);
        i.message(Via::Api, "platform", 100, 2);
        let f = i.figures();
        assert_eq!(f.len(), 2);
        assert_eq!(
            f[0],
            (
                Via::Smtp,
                "alice".into(),
                Counts {
                    logins: 1,
                    failed_logins: 1,
                    messages: 1,
                    recipients: 3,
                    rejected: 0
                }
            )
        );
        assert_eq!(f[1].2.recipients, 100);
        for n in 0..MAX_NAMES + 5 {
            i.login(Via::Smtp, &format!("u{n}"), false);
        }
        let f = i.figures();
        let smtp: Vec<_> = f.iter().filter(|(v, ..)| *v == Via::Smtp).collect();
        assert_eq!(smtp.len(), MAX_NAMES + 1, "the rest went to _other");
        assert!(
            smtp.iter()
                .any(|(_, n, c)| n == "_other" && c.failed_logins == 6)
        );
    }
}
