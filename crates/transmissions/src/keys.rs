//! API keys: a file of `NAME:SHA256:PERMISSIONS` lines, so that the file never holds a key
//! (`bindery api-key NAME` makes a key and its line). SparkPost's `Authorization` header is
//! the raw key, or `Basic base64(KEY:)`. A presented key is hashed once and compared with
//! every line in constant time, so neither the answer's timing nor an early exit tells which
//! bytes or which line matched.
//!
//! Permissions are SparkPost's resource words: `transmissions:modify` sends (the "Modify
//! Transmissions" grant of SparkPost/support-docs `content/momentum/4/web-ui-apikeys.md`);
//! `all` grants everything.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// One key's line.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    pub name: String,
    hash: [u8; 32],
    pub permissions: Vec<String>,
}

/// Never prints the hash.
impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name)
            .field("permissions", &self.permissions)
            .finish()
    }
}

impl Key {
    pub fn may(&self, permission: &str) -> bool {
        self.permissions
            .iter()
            .any(|p| p == permission || p == "all")
    }
}

/// The keys of one file.
#[derive(Clone, Debug, Default)]
pub struct Keys {
    keys: Vec<Key>,
}

/// `hex(SHA-256(key))`.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A file line for a new key.
pub fn line(name: &str, key: &str, permissions: &str) -> String {
    format!("{name}:{}:{permissions}", hash(key))
}

impl Keys {
    /// Reads a key file; a malformed line is an error naming its number.
    pub fn parse(text: &str) -> Result<Keys, String> {
        let mut keys = Vec::new();
        for (n, l) in text.lines().enumerate() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let mut parts = l.splitn(3, ':');
            let (Some(name), Some(h), perms) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!("line {}: expected NAME:SHA256:PERMISSIONS", n + 1));
            };
            let mut hash = [0u8; 32];
            if name.is_empty() || hex::decode_to_slice(h, &mut hash).is_err() {
                return Err(format!(
                    "line {}: expected NAME:SHA256:PERMISSIONS with 64 hex digits (bindery api-key NAME makes one)",
                    n + 1
                ));
            }
            keys.push(Key {
                name: name.to_string(),
                hash,
                permissions: perms
                    .unwrap_or("")
                    .split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect(),
            });
        }
        Ok(Keys { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key an `Authorization` header value presents, if it is one of these.
    pub fn check(&self, authorization: &str) -> Option<&Key> {
        let presented = presented_key(authorization)?;
        let given: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for k in &self.keys {
            if bool::from(k.hash.ct_eq(&given)) && found.is_none() {
                found = Some(k);
            }
        }
        found
    }
}

/// The key in an `Authorization` value: the raw key, or `Basic base64(KEY:)`.
fn presented_key(v: &str) -> Option<String> {
    use base64::Engine as _;
    let v = v.trim();
    if let Some(b) = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let key = text.split(':').next()?;
        return (!key.is_empty()).then(|| key.to_string());
    }
    (!v.is_empty()).then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_by_hash_raw_or_basic() {
        let file = format!(
            "# platform keys\n{}\n{}\n",
            line(
                "platform",
                "14ac5499cfdd2bb2859e4476d2e5b1d2bad079bf",
                "transmissions:modify"
            ),
            line("reader", "k2", "metrics:read")
        );
        let keys = Keys::parse(&file).unwrap();
        assert_eq!(keys.len(), 2);
        let k = keys
            .check("14ac5499cfdd2bb2859e4476d2e5b1d2bad079bf")
            .expect("raw key");
        assert_eq!(k.name, "platform");
        assert!(k.may("transmissions:modify"));
        // SparkPost's own Basic example: the key as the user, an empty password.
        let basic = keys
            .check("Basic MTRhYzU0OTljZmRkMmJiMjg1OWU0NDc2ZDJlNWIxZDJiYWQwNzliZjo=")
            .expect("basic");
        assert_eq!(basic.name, "platform");
        assert!(!keys.check("k2").unwrap().may("transmissions:modify"));
        assert!(keys.check("wrong").is_none() && keys.check("").is_none());
        assert!(!format!("{keys:?}").contains(&hash("k2")));
        assert!(
            Keys::parse("name:nothex:all\n")
                .unwrap_err()
                .contains("line 1")
        );
    }
}
