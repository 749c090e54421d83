//! Momentum's console authorization: which commands a console user may run.
//!
//! The rules are the global `Authorization` stanza (`content/momentum/4/control-authz.md` and
//! `config/ref-authorization.md` in SparkPost/support-docs):
//!
//! ```text
//! Authorization {
//!   Role "root"  { allow = ( ".*" ) }
//!   Role "admin" { allow = ( "^config" "^summary$" ) }
//! }
//! ```
//!
//! They apply on a `Control_Listener` `Listen` (or `Peer`) where `Enable_Authorization` is
//! true. A user's roles come from `AuthorizationParameters = [ uri = "groups:///path" ]`, a
//! file of `group:user1,user2` lines (the `/etc/group` and htgroup shapes are read too). The
//! user name and each of its roles are compared with the `Role` names; the `allow` patterns of
//! every `Role` that names one of them are tried in the order written, and the first that
//! matches the command line allows it. Nothing matching is a refusal: the default is deny.
//!
//! Sans-IO: the server reads the group file and passes its text in.

use std::collections::HashMap;

use bindery_config::Snapshot;
use bindery_config::schema::{ScopeKind, option_id};
use bindery_config::tree::ROOT;
use bindery_config::value::Value;
use regex::Regex;

/// The `Authorization` stanza, compiled.
#[derive(Debug, Default)]
pub struct Rules {
    /// In file order.
    roles: Vec<Role>,
}

#[derive(Debug)]
struct Role {
    name: String,
    allow: Vec<Regex>,
}

/// The answer to one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by a pattern of this `Role` (the role the acctlog names).
    Allowed {
        role: String,
    },
    Denied,
}

impl Rules {
    /// The rules of a configuration: every `Role` of its `Authorization` stanza. The
    /// configuration check has compiled every pattern already; one that fails here anyway
    /// allows nothing.
    pub fn from_snapshot(snap: &Snapshot) -> Rules {
        let tree = &snap.tree;
        let allow = option_id("allow");
        let mut roles = Vec::new();
        for a in tree.children_of(ROOT, ScopeKind::Authorization) {
            for r in tree.children_of(a, ScopeKind::Role) {
                let scope = tree.scope(r);
                let patterns = match scope.setting(allow).map(|s| &s.value) {
                    Some(Value::List(items)) => items.as_slice(),
                    _ => &[],
                };
                roles.push(Role {
                    name: scope.name.clone().unwrap_or_default(),
                    allow: patterns.iter().filter_map(|p| Regex::new(p).ok()).collect(),
                });
            }
        }
        Rules { roles }
    }

    /// Rules from `(role, patterns)` pairs, for tests and tools.
    pub fn new(roles: &[(&str, &[&str])]) -> Result<Rules, regex::Error> {
        let roles = roles
            .iter()
            .map(|(name, pats)| {
                Ok(Role {
                    name: (*name).to_string(),
                    allow: pats
                        .iter()
                        .map(|p| Regex::new(p))
                        .collect::<Result<_, _>>()?,
                })
            })
            .collect::<Result<_, regex::Error>>()?;
        Ok(Rules { roles })
    }

    /// May `user`, with the roles `groups` gives it, run `command` (the line as typed,
    /// without a `json` prefix)?
    pub fn decide(&self, user: &str, groups: &Groups, command: &str) -> Decision {
        let theirs = groups.roles_of(user);
        for role in &self.roles {
            if role.name != user && !theirs.contains(&role.name) {
                continue;
            }
            if role.allow.iter().any(|re| re.is_match(command)) {
                return Decision::Allowed {
                    role: role.name.clone(),
                };
            }
        }
        Decision::Denied
    }
}

/// Role membership: `group:user1,user2`, `group:unused:user1,user2` or `/etc/group`'s
/// `group:x:GID:user1,user2`; the members are the last field, separated by commas or spaces
/// (Apache's htgroup). `#` starts a comment line.
#[derive(Clone, Debug, Default)]
pub struct Groups {
    by_user: HashMap<String, Vec<String>>,
}

impl Groups {
    pub fn parse(text: &str) -> Groups {
        let mut by_user: HashMap<String, Vec<String>> = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((group, rest)) = line.split_once(':') else {
                continue;
            };
            let group = group.trim();
            let members = rest.rsplit(':').next().unwrap_or("");
            for user in members
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|u| !u.is_empty())
            {
                let roles = by_user.entry(user.to_string()).or_default();
                if !roles.iter().any(|r| r == group) {
                    roles.push(group.to_string());
                }
            }
        }
        Groups { by_user }
    }

    /// The roles `user` holds, in file order.
    pub fn roles_of(&self, user: &str) -> &[String] {
        self.by_user.get(user).map_or(&[], Vec::as_slice)
    }
}

/// Where the roles of a listener's users come from: the `uri` of `AuthorizationParameters`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleSource {
    /// `groups:///path`: a group file.
    Groups(std::path::PathBuf),
}

/// Reads `AuthorizationParameters`' entries. Only `groups://` is bindery's: `ecauth://` and
/// the other `auth_ds` schemes need the `auth_ds` module, which bindery refuses.
pub fn role_source(entries: &[(String, String)]) -> Result<RoleSource, String> {
    let Some((_, uri)) = entries.iter().find(|(k, _)| k.eq_ignore_ascii_case("uri")) else {
        return Err("AuthorizationParameters needs a `uri`".into());
    };
    match uri.split_once("://") {
        Some((scheme, path)) if scheme.eq_ignore_ascii_case("groups") && !path.is_empty() => {
            Ok(RoleSource::Groups(path.into()))
        }
        Some((scheme, _)) if !scheme.eq_ignore_ascii_case("groups") => Err(format!(
            "authorization scheme `{scheme}://` needs Momentum's auth_ds module, which bindery \
             does not implement; use uri = \"groups:///path/to/roles\""
        )),
        _ => Err(format!(
            "`{uri}` is not a role source; use uri = \"groups:///path/to/roles\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        // The example of control-authz.md.
        Rules::new(&[
            ("root", &[".*"]),
            ("admin", &["^config", "^summary$"]),
            ("ec", &["^flush"]),
        ])
        .expect("patterns")
    }

    #[test]
    fn the_documented_example() {
        let groups = Groups::parse("root:root\nadmin:serv,ec\n");
        let r = rules();
        let allowed = |role: &str| Decision::Allowed { role: role.into() };
        assert_eq!(r.decide("root", &groups, "shutdown"), allowed("root"));
        assert_eq!(r.decide("serv", &groups, "summary"), allowed("admin"));
        assert_eq!(r.decide("serv", &groups, "summary reset"), Decision::Denied);
        assert_eq!(r.decide("serv", &groups, "config reload"), allowed("admin"));
        // `ec` is a member of admin, and a role of its own name.
        assert_eq!(r.decide("ec", &groups, "flush"), allowed("ec"));
        assert_eq!(r.decide("ec", &groups, "summary"), allowed("admin"));
        assert_eq!(r.decide("nobody", &groups, "summary"), Decision::Denied);
    }

    #[test]
    fn john_of_the_ecauth_example() {
        let r = Rules::new(&[("john", &["^config"]), ("admin", &["^config", "^summary$"])])
            .expect("patterns");
        let none = Groups::default();
        assert_eq!(
            r.decide("john", &none, "config eval binding b ehlo_hostname"),
            Decision::Allowed {
                role: "john".into()
            }
        );
        assert_eq!(r.decide("john", &none, "summary"), Decision::Denied);
    }

    #[test]
    fn group_file_shapes() {
        let g = Groups::parse(
            "# roles\n\nops:alice,bob\nadmin:unused:carol\nwheel:x:10:alice,dave\nhtg: erin frank\nbroken line\n",
        );
        assert_eq!(g.roles_of("alice"), ["ops", "wheel"]);
        assert_eq!(g.roles_of("carol"), ["admin"]);
        assert_eq!(g.roles_of("dave"), ["wheel"]);
        assert_eq!(g.roles_of("frank"), ["htg"]);
        assert!(g.roles_of("mallory").is_empty());
    }

    #[test]
    fn role_sources() {
        let uri = |u: &str| vec![("uri".to_string(), u.to_string())];
        assert_eq!(
            role_source(&uri("groups:///etc/roles")),
            Ok(RoleSource::Groups("/etc/roles".into()))
        );
        assert!(
            role_source(&uri("ecauth://"))
                .unwrap_err()
                .contains("auth_ds")
        );
        assert!(role_source(&uri("/etc/roles")).is_err());
        assert!(role_source(&[]).is_err());
    }
}
