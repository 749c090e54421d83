//! Password files, in the three formats a login can be checked against.
//!
//! - `file:///path`: Momentum's clear-text file, `USER:PASSWORD` lines. Every mechanism can
//!   use it, CRAM-MD5 included (it needs the password itself), and that is its only merit.
//! - `digest:///path`: Momentum's digest file, `USER:REALM:HA1` lines with
//!   `HA1 = hex(MD5(USER:REALM:PASSWORD))`, as `ec_md5passwd` and Apache's `htdigest` write
//!   them (the console's file is the same). PLAIN and LOGIN check a password against it;
//!   CRAM-MD5 cannot.
//! - `crypt:///path`, bindery's addition for new installations: `USER:HASH` lines where HASH
//!   is bcrypt (`$2a$`, `$2b$`, `$2y$`: `htpasswd -B`) or SHA-crypt (`$5$`, `$6$`:
//!   `openssl passwd -6`, `mkpasswd -m sha-512`). Salted and slow, so a stolen file gives
//!   up nothing quickly. PLAIN and LOGIN only.
//!
//! Lines starting with `#` and blank lines are skipped; a malformed line is an error that
//! names its number. The passwords are never part of an error or a `Debug` output.

use std::collections::HashMap;
use std::fmt;

use subtle::ConstantTimeEq;

use crate::StoreError;

/// How a password file stores its secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `file://`
    Cleartext,
    /// `digest://`
    Digest,
    /// `crypt://`
    Crypt,
}

impl Scheme {
    pub fn prefix(self) -> &'static str {
        match self {
            Scheme::Cleartext => "file://",
            Scheme::Digest => "digest://",
            Scheme::Crypt => "crypt://",
        }
    }

    /// Whether CRAM-MD5 can be checked against it (it needs the password in clear).
    pub fn has_cleartext(self) -> bool {
        self == Scheme::Cleartext
    }
}

/// One user's stored secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Cleartext(String),
    /// Lower-case hex HA1.
    Ha1(String),
    /// A bcrypt or SHA-crypt hash string.
    Crypt(String),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Secret::Cleartext(_) => "Cleartext(<redacted>)",
            Secret::Ha1(_) => "Ha1(<redacted>)",
            Secret::Crypt(_) => "Crypt(<redacted>)",
        })
    }
}

/// What a client proved, as the checker sees it.
#[derive(Clone, Copy)]
pub enum Proof<'a> {
    Password(&'a str),
    /// CRAM-MD5: the challenge and the client's lower-case hex HMAC-MD5 of it.
    CramMd5 {
        challenge: &'a str,
        digest: &'a str,
    },
}

/// `hex(MD5(user:realm:password))`.
pub fn ha1(user: &str, realm: &str, password: &str) -> String {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    h.update(format!("{user}:{realm}:{password}").as_bytes());
    hex::encode(h.finalize())
}

/// The users of one password file (of one realm, for a digest file).
#[derive(Clone, Debug, Default)]
pub struct Table {
    users: HashMap<String, Secret>,
}

impl Table {
    /// Reads a file's text. `realm` selects the lines of a digest file.
    pub fn parse(text: &str, scheme: Scheme, realm: &str) -> Result<Table, StoreError> {
        let mut users = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let bad = |why: &str| StoreError::Line {
                line: n + 1,
                why: why.to_string(),
            };
            let Some((user, rest)) = line.split_once(':') else {
                return Err(bad("expected USER:SECRET"));
            };
            if user.is_empty() {
                return Err(bad("the user name is empty"));
            }
            let secret = match scheme {
                Scheme::Cleartext => Secret::Cleartext(rest.to_string()),
                Scheme::Digest => {
                    let Some((r, h)) = rest.split_once(':') else {
                        return Err(bad("expected USER:REALM:HA1"));
                    };
                    if h.len() != 32 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(bad(
                            "HA1 must be 32 hex digits (MD5 of USER:REALM:PASSWORD)",
                        ));
                    }
                    if r != realm {
                        continue;
                    }
                    Secret::Ha1(h.to_ascii_lowercase())
                }
                Scheme::Crypt => {
                    if !crypt_kind_known(rest) {
                        return Err(bad(
                            "the hash is neither bcrypt ($2a$, $2b$, $2y$) nor SHA-crypt ($5$, $6$); \
                             make one with `htpasswd -B` or `openssl passwd -6`",
                        ));
                    }
                    Secret::Crypt(rest.to_string())
                }
            };
            users.insert(user.to_string(), secret);
        }
        Ok(Table { users })
    }

    /// A table from (user, secret) pairs: the in-memory store of tests.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, Secret)>) -> Table {
        Table {
            users: pairs.into_iter().collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `proof` is right for `user`. An unknown user costs about what a known one
    /// does, so the answer's timing does not tell which names exist; byte comparisons are
    /// constant-time.
    pub fn check(&self, user: &str, realm: &str, proof: Proof<'_>) -> bool {
        let Some(secret) = self.users.get(user) else {
            // The same work against a secret that cannot match.
            let dummy = match self.users.values().next() {
                Some(Secret::Crypt(h)) => Secret::Crypt(h.clone()),
                Some(Secret::Ha1(_)) => Secret::Ha1(String::new()),
                _ => Secret::Cleartext(String::new()),
            };
            let _ = check_secret(&dummy, user, realm, proof);
            return false;
        };
        check_secret(secret, user, realm, proof)
    }
}

fn crypt_kind_known(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$", "$5$", "$6$"]
        .iter()
        .any(|p| hash.starts_with(p))
}

fn eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn check_secret(secret: &Secret, user: &str, realm: &str, proof: Proof<'_>) -> bool {
    match (secret, proof) {
        (Secret::Cleartext(s), Proof::Password(p)) => eq(s.as_bytes(), p.as_bytes()),
        (Secret::Cleartext(s), Proof::CramMd5 { challenge, digest }) => {
            use hmac::{Hmac, KeyInit, Mac};
            let Ok(mut mac) = Hmac::<md5::Md5>::new_from_slice(s.as_bytes()) else {
                return false;
            };
            mac.update(challenge.as_bytes());
            let Ok(given) = hex::decode(digest) else {
                return false;
            };
            mac.verify_slice(&given).is_ok()
        }
        (Secret::Ha1(h), Proof::Password(p)) => {
            eq(h.as_bytes(), ha1(user, realm, p).as_bytes()) && !h.is_empty()
        }
        (Secret::Crypt(h), Proof::Password(p)) => {
            if h.starts_with("$2") {
                bcrypt::verify(p, h).unwrap_or(false)
            } else {
                use sha_crypt::{PasswordVerifier, ShaCrypt};
                ShaCrypt::default()
                    .verify_password(p.as_bytes(), h.as_str())
                    .is_ok()
            }
        }
        (Secret::Ha1(_) | Secret::Crypt(_), Proof::CramMd5 { .. }) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleartext_files_check_passwords_and_cram_md5() {
        let t = Table::parse(
            "# users\nalice:secret\n\nbob:pa:ss\n",
            Scheme::Cleartext,
            "",
        )
        .expect("valid");
        assert_eq!(t.len(), 2);
        assert!(t.check("alice", "", Proof::Password("secret")));
        assert!(!t.check("alice", "", Proof::Password("secre")));
        assert!(
            t.check("bob", "", Proof::Password("pa:ss")),
            "split at the first colon"
        );
        assert!(!t.check("carol", "", Proof::Password("")));
        // RFC 2195's example: tim / tanstaaftanstaaf.
        let t = Table::parse("tim:tanstaaftanstaaf\n", Scheme::Cleartext, "").unwrap();
        let challenge = "<1896.697170952@postoffice.reston.mci.net>";
        let digest = "b913a602c7eda7a495b4e6e7334d3890";
        assert!(t.check("tim", "", Proof::CramMd5 { challenge, digest }));
        let other = "<1897.697170952@postoffice.reston.mci.net>";
        assert!(!t.check(
            "tim",
            "",
            Proof::CramMd5 {
                challenge: other,
                digest
            }
        ));
    }

    #[test]
    fn digest_files_take_their_realm_and_refuse_cram_md5() {
        let text = format!(
            "alice:mail:{}\nalice:other:{}\n",
            ha1("alice", "mail", "secret"),
            ha1("alice", "other", "x")
        );
        let t = Table::parse(&text, Scheme::Digest, "mail").unwrap();
        assert!(t.check("alice", "mail", Proof::Password("secret")));
        assert!(!t.check("alice", "mail", Proof::Password("x")));
        assert!(!t.check(
            "alice",
            "mail",
            Proof::CramMd5 {
                challenge: "<1@h>",
                digest: "00"
            }
        ));
        let err = Table::parse("alice:mail:short\n", Scheme::Digest, "mail").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn crypt_files_take_bcrypt_and_sha_crypt() {
        // `htpasswd -nbB -C 4 alice secret` and `openssl passwd -6 -salt saltsalt secret`.
        let b = bcrypt::hash_with_salt("secret", 4, [7u8; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        let s6 = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
        let text = format!("alice:{b}\nbob:{s6}\n");
        let t = Table::parse(&text, Scheme::Crypt, "").unwrap();
        assert!(t.check("alice", "", Proof::Password("secret")));
        assert!(!t.check("alice", "", Proof::Password("Secret")));
        assert!(t.check("bob", "", Proof::Password("secret")));
        assert!(!t.check("bob", "", Proof::Password("secrets")));
        assert!(!t.check("nobody", "", Proof::Password("secret")));
        let err = Table::parse("carol:$apr1$abc$def\n", Scheme::Crypt, "").unwrap_err();
        assert!(err.to_string().contains("htpasswd -B"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let t = Table::parse("alice:hunter2\n", Scheme::Cleartext, "").unwrap();
        assert!(!format!("{t:?}").contains("hunter2"));
    }
}
