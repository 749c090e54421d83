//! Console authentication: a challenge answered with a keyed hash, so that neither the
//! password nor anything replayable crosses the wire.
//!
//! The password file has Apache `htdigest` lines, `USER:REALM:HA1` with
//! `HA1 = hex(MD5(USER:REALM:PASSWORD))` (the digest scheme Momentum's console
//! `AuthDigestMD5Parameters` points at), so the file never holds a password and can be made
//! with the `htdigest` tool or `bindery console passwd`. The server sends `REALM NONCE`
//! (16 random bytes); the client answers `auth USER hex(HMAC-SHA256(key = HA1, NONCE))`.
//! The server checks in constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The realm when the configuration names none.
pub const DEFAULT_REALM: &str = "bindery";

pub use bindery_auth::ha1;

/// A password file line for `user`.
pub fn passwd_line(user: &str, realm: &str, password: &str) -> String {
    format!("{user}:{realm}:{}", ha1(user, realm, password))
}

/// The client's answer to a challenge.
pub fn respond(ha1: &str, nonce: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(ha1.as_bytes()) else {
        return String::new(); // HMAC takes keys of any length; never reached
    };
    mac.update(nonce.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A fresh challenge nonce.
pub fn nonce() -> String {
    let bytes: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
    hex::encode(bytes)
}

/// The users of one realm, read from a password file's text.
#[derive(Clone, Debug, Default)]
pub struct Passwords {
    users: Vec<(String, String)>,
}

impl Passwords {
    /// Reads `USER:REALM:HA1` lines of `realm`; blank lines and `#` comments are skipped.
    /// Lines of other realms are ignored; malformed ones are reported by line number.
    pub fn parse(text: &str, realm: &str) -> Result<Passwords, String> {
        let mut users = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.splitn(3, ':');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(u), Some(r), Some(h))
                    if !u.is_empty()
                        && h.len() == 32
                        && h.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    if r == realm {
                        users.push((u.to_string(), h.to_ascii_lowercase()));
                    }
                }
                _ => {
                    return Err(format!(
                        "line {}: expected USER:REALM:HA1 (32 hex digits)",
                        n + 1
                    ));
                }
            }
        }
        Ok(Passwords { users })
    }

    /// Whether `response` answers `nonce` for `user`. Unknown users cost the same work.
    pub fn verify(&self, user: &str, nonce: &str, response: &str) -> bool {
        let known = self.users.iter().find(|(u, _)| u == user);
        let key = known.map_or("0".repeat(32), |(_, h)| h.clone());
        let Ok(given) = hex::decode(response) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
            return false;
        };
        mac.update(nonce.as_bytes());
        mac.verify_slice(&given).is_ok() && known.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htdigest_lines_and_challenge_responses() {
        // `htdigest -c f bindery admin` with password "secret" writes this line.
        assert_eq!(
            passwd_line("admin", "bindery", "secret"),
            format!("admin:bindery:{}", ha1("admin", "bindery", "secret"))
        );
        assert_eq!(
            ha1("Mufasa", "testrealm@host.com", "Circle Of Life"),
            "939e7578ed9e3c518a452acee763bce9"
        );
        let file = format!(
            "# console users\n{}\nother:elsewhere:{}\n",
            passwd_line("admin", "bindery", "secret"),
            "0".repeat(32)
        );
        let pw = Passwords::parse(&file, "bindery").expect("valid file");
        let n = nonce();
        assert_eq!(n.len(), 32);
        let good = respond(&ha1("admin", "bindery", "secret"), &n);
        assert!(pw.verify("admin", &n, &good));
        assert!(!pw.verify("admin", &nonce(), &good), "bound to its nonce");
        let wrong = respond(&ha1("admin", "bindery", "guess"), &n);
        assert!(!pw.verify("admin", &n, &wrong));
        assert!(
            !pw.verify("other", &n, &respond(&"0".repeat(32), &n)),
            "other realm"
        );
        assert!(!pw.verify("admin", &n, "not-hex"));
        assert!(Passwords::parse("admin:bindery:short\n", "bindery").is_err());
    }
}
