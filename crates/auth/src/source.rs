//! Momentum's authentication parameters: `AuthPlainParameters = [ uri = "file:///path"
//! log_authentication = "true" ]`, and the same for LOGIN, CRAM-MD5 and DIGEST-MD5.

use std::path::PathBuf;

use crate::store::Scheme;

/// Where one mechanism's users are, and what to record about their logins.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Source {
    pub scheme: Scheme,
    pub path: PathBuf,
    /// The realm of a `digest://` file's lines (Momentum: the server's host name unless set).
    pub realm: String,
    /// `log_authentication`: every login also goes to the acctlog.
    pub log: bool,
}

/// The keys a parameter dictionary may hold.
const KEYS: [&str; 3] = ["uri", "realm", "log_authentication"];

impl Source {
    /// Reads one dictionary. `default_realm` is the host name. The error is one sentence
    /// for the caller to place at the option's line.
    pub fn parse(entries: &[(String, String)], default_realm: &str) -> Result<Source, String> {
        let mut uri = None;
        let mut realm = None;
        let mut log = false;
        for (k, v) in entries {
            match k.to_ascii_lowercase().as_str() {
                "uri" => uri = Some(v.as_str()),
                "realm" => realm = Some(v.clone()),
                "log_authentication" => {
                    log = match v.to_ascii_lowercase().as_str() {
                        "true" | "yes" | "on" | "1" => true,
                        "false" | "no" | "off" | "0" => false,
                        _ => {
                            return Err(format!("log_authentication = {v:?} is not true or false"));
                        }
                    }
                }
                other => {
                    let hint = KEYS
                        .iter()
                        .map(|k| (strsim::jaro_winkler(k, other), k))
                        .filter(|(s, _)| *s > 0.8)
                        .max_by(|a, b| a.0.total_cmp(&b.0))
                        .map(|(_, k)| format!("; did you mean `{k}`?"))
                        .unwrap_or_default();
                    return Err(format!(
                        "unknown key `{k}` (the keys are uri, realm and log_authentication){hint}"
                    ));
                }
            }
        }
        let Some(uri) = uri else {
            return Err("no `uri`: name the password file, as uri = \"file:///path\"".into());
        };
        let (scheme, path) = [Scheme::Cleartext, Scheme::Digest, Scheme::Crypt]
            .into_iter()
            .find_map(|s| uri.strip_prefix(s.prefix()).map(|p| (s, p)))
            .ok_or_else(|| {
                format!(
                    "uri {uri:?} is not a password file bindery reads: use file:// (USER:PASSWORD), \
                     digest:// (USER:REALM:HA1, as ec_md5passwd writes) or crypt:// (bcrypt or \
                     SHA-crypt hashes); Momentum's datasource schemes (auth_ds) are not built"
                )
            })?;
        if path.is_empty() {
            return Err(format!("uri {uri:?} names no file"));
        }
        Ok(Source {
            scheme,
            path: PathBuf::from(path),
            realm: realm.unwrap_or_else(|| default_realm.to_string()),
            log,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_three_schemes_and_their_errors() {
        let s = Source::parse(
            &entries(&[
                ("uri", "digest:///opt/msys/ecelerity/etc/smtp_passwd"),
                ("realm", "my choice of realm"),
            ]),
            "mx.example",
        )
        .unwrap();
        assert_eq!(s.scheme, Scheme::Digest);
        assert_eq!(s.path, PathBuf::from("/opt/msys/ecelerity/etc/smtp_passwd"));
        assert_eq!(s.realm, "my choice of realm");
        let s = Source::parse(
            &entries(&[("uri", "file:///etc/p"), ("log_authentication", "true")]),
            "mx.example",
        )
        .unwrap();
        assert_eq!(
            (s.scheme, s.realm.as_str(), s.log),
            (Scheme::Cleartext, "mx.example", true)
        );
        let s = Source::parse(&entries(&[("uri", "crypt:///etc/p")]), "h").unwrap();
        assert_eq!(s.scheme, Scheme::Crypt);
        let e = Source::parse(&entries(&[("url", "file:///p")]), "h").unwrap_err();
        assert!(e.contains("did you mean `uri`"), "{e}");
        let e = Source::parse(&entries(&[("uri", "ds://ecdb")]), "h").unwrap_err();
        assert!(e.contains("not a password file"), "{e}");
        assert!(
            Source::parse(&entries(&[]), "h")
                .unwrap_err()
                .contains("no `uri`")
        );
    }
}
