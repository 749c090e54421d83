//! Momentum's `Security` stanza: after every listener is bound, the daemon gives up root and
//! runs as `User` and `Group` (with `Supplemental_Groups`), so a flaw in a session or a
//! script no longer runs as root.
//!
//! Bindery keeps no capability after the drop. Momentum keeps the ones `Capabilities` names
//! (`cap_net_bind_service` to bind port 25 when a reload adds a listener, `cap_net_admin` to
//! plumb binding addresses); bindery binds every listener before it drops and opens a new
//! one only at a restart, and never plumbs addresses, so it needs none.
//!
//! `Chroot`: after the listeners are bound (and before the drop, which takes the right to
//! chroot away), the daemon's root becomes that folder. Everything bindery opens after that
//! is found inside it: `Spoolbase` (made inside it at start), the logs, `TLS_CA` files (and
//! the system's CA bundle, which `TLS_Verify` reads when it first needs it), the
//! console's password and role files, Lua modules a script requires at run time, and the
//! files `config reload` reads. What is read before it (the configuration, the policy
//! scripts, certificates and keys, `Resolv_Conf`, `PidFile`) comes from the real root.
//!
//! glibc's `setgroups`, `setgid` and `setuid` change every thread of the process (the
//! runtime's threads already run), and threads started later inherit the new identity.
//! The drop happens only when `User` is set: Momentum's default (`ecuser`) would make every
//! root test run and every first start on a machine without that user fail.

use bindery_config::schema::{ScopeKind, option_id};
use bindery_config::snapshot::Snapshot;
use bindery_config::tree::{ROOT, Setting};
use bindery_config::value::Value;
use nix::unistd::{Gid, Group, Uid, User};

use bindery_config::span::Span;

use crate::ServerError;
use crate::settings::located;

/// Who the daemon becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub uid: Uid,
    pub gid: Gid,
    /// The primary group first, then `Supplemental_Groups`.
    pub groups: Vec<Gid>,
}

/// A `Security` string option and where it is set (for errors).
/// The setting `name` in the `Security` stanza, if the stanza and the
/// option are there.
fn security_setting<'a>(snap: &'a Snapshot, name: &'static str) -> Option<&'a Setting> {
    let tree = &snap.tree;
    let sec = tree.find(ROOT, ScopeKind::Security, None)?;
    tree.scope(sec).setting(option_id(name))
}

fn security_str(snap: &Snapshot, name: &'static str) -> Option<(String, Span)> {
    let setting = security_setting(snap, name)?;
    match &setting.value {
        Value::Str(s) | Value::Path(s) => Some((s.clone(), setting.span)),
        _ => None,
    }
}

fn security_span(snap: &Snapshot, name: &'static str) -> Option<Span> {
    security_setting(snap, name).map(|s| s.span)
}

fn security_list(snap: &Snapshot, name: &'static str) -> Vec<String> {
    match security_setting(snap, name).map(|s| &s.value) {
        Some(Value::List(l)) => l.clone(),
        _ => Vec::new(),
    }
}

fn group_id(snap: &Snapshot, at: Option<Span>, name: &str) -> Result<Gid, ServerError> {
    match Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(located(
            snap,
            at,
            format!("no group `{name}` on this system"),
            None,
        )),
        Err(e) => Err(located(
            snap,
            at,
            format!("cannot look up group `{name}`: {e}"),
            None,
        )),
    }
}

/// The identity the `Security` stanza asks for; `None` when it names no `User`. Checked
/// by `config check` as well as at start: a user or group missing here is an error then.
pub fn wanted(snap: &Snapshot) -> Result<Option<Identity>, ServerError> {
    let Some((user, at)) = security_str(snap, "User") else {
        return Ok(None);
    };
    let pw = match User::from_name(&user) {
        Ok(Some(pw)) => pw,
        Ok(None) => {
            let help = "create the user, or set `User` to one this system has";
            return Err(located(
                snap,
                Some(at),
                format!("no user `{user}` on this system"),
                Some(help),
            ));
        }
        Err(e) => {
            return Err(located(
                snap,
                Some(at),
                format!("cannot look up user `{user}`: {e}"),
                None,
            ));
        }
    };
    let gid = match security_str(snap, "Group") {
        Some((g, at)) => group_id(snap, Some(at), &g)?,
        None => pw.gid,
    };
    let mut groups = vec![gid];
    let at = security_span(snap, "Supplemental_Groups");
    for g in security_list(snap, "Supplemental_Groups") {
        let id = group_id(snap, at, &g)?;
        if !groups.contains(&id) {
            groups.push(id);
        }
    }
    Ok(Some(Identity {
        user,
        uid: pw.uid,
        gid,
        groups,
    }))
}

/// `Security`'s `Chroot`: an absolute folder that exists, checked by `config check` as well as
/// at start.
pub fn chroot_dir(snap: &Snapshot) -> Result<Option<std::path::PathBuf>, ServerError> {
    let Some((dir, at)) = security_str(snap, "Chroot") else {
        return Ok(None);
    };
    let path = std::path::PathBuf::from(&dir);
    if !path.is_absolute() || !path.is_dir() {
        return Err(located(
            snap,
            Some(at),
            format!("Chroot `{dir}` is not an absolute path to a folder"),
            Some(
                "make the folder, with what bindery opens after the chroot inside it (see the README)",
            ),
        ));
    }
    Ok(Some(path))
}

/// Where `path`, as the configuration names it for use after the chroot, is seen from the
/// real root now: `root` joined with it (a relative path counts from the chroot's root).
pub fn inside(root: Option<&std::path::Path>, path: &std::path::Path) -> std::path::PathBuf {
    match root {
        None => path.to_path_buf(),
        Some(r) => r.join(path.strip_prefix("/").unwrap_or(path)),
    }
}

/// Changes the process's root to `dir` (every thread: the root is the process's), and its
/// working folder to the new root. Needs root, so it comes before [`drop_to`].
pub fn enter_chroot(dir: &std::path::Path) -> Result<(), ServerError> {
    let fail = |what: &str, e: nix::Error| {
        ServerError::Config(format!(
            "error: Security: cannot {what} {}: {e}",
            dir.display()
        ))
    };
    if !Uid::effective().is_root() {
        return Err(ServerError::Config(format!(
            "error: Security: `Chroot = {}` needs bindery to start as root (it runs as uid {})",
            dir.display(),
            Uid::effective()
        )));
    }
    nix::unistd::chroot(dir).map_err(|e| fail("chroot to", e))?;
    nix::unistd::chdir("/").map_err(|e| fail("enter", e))?;
    Ok(())
}

/// Makes the spool folder when it is not there yet, before the listeners are bound: the
/// default console socket lives in it, and binding comes before the drop. Made by root for a
/// daemon that drops, it is handed to `who`, so the spool made in it after the drop is
/// theirs. A folder that exists is left as it is.
pub fn make_spoolbase(base: &std::path::Path, who: Option<&Identity>) -> Result<(), ServerError> {
    if base.exists() {
        return Ok(());
    }
    let io = |what: &str, e: std::io::Error| ServerError::Io {
        what: format!("cannot {what} the spool folder {}", base.display()),
        source: e,
    };
    std::fs::create_dir_all(base).map_err(|e| io("create", e))?;
    if let Some(who) = who.filter(|w| Uid::effective() != w.uid) {
        nix::unistd::chown(base, Some(who.uid), Some(who.gid))
            .map_err(|e| io("hand over", std::io::Error::from(e)))?;
    }
    Ok(())
}

/// Becomes `who`, for good: groups first (they need root), then the group, then the user.
/// Running as that user already is fine; any other identity without root is an error.
pub fn drop_to(who: &Identity) -> Result<(), ServerError> {
    let fail = |what: &str, e: nix::Error| {
        ServerError::Config(format!(
            "error: Security: cannot {what} for user `{}`: {e}",
            who.user
        ))
    };
    if Uid::effective() == who.uid && Gid::effective() == who.gid {
        return Ok(());
    }
    if !Uid::effective().is_root() {
        return Err(ServerError::Config(format!(
            "error: Security: `User = {}` needs bindery to start as root (it runs as uid {})",
            who.user,
            Uid::effective()
        )));
    }
    nix::unistd::setgroups(&who.groups).map_err(|e| fail("set the groups", e))?;
    nix::unistd::setgid(who.gid).map_err(|e| fail("set the group", e))?;
    nix::unistd::setuid(who.uid).map_err(|e| fail("set the user", e))?;
    // setuid from root to another user clears every capability; check that root cannot
    // be had back, rather than trust it.
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(ServerError::Config(
            "error: Security: root could be regained after the drop".into(),
        ));
    }
    Ok(())
}

/// A file the daemon makes before a `Chroot` (the console socket, `PidFile`) and removes at
/// a clean stop. After the chroot its path names nothing, or another file inside the jail,
/// so the folder is opened beforehand and the file is removed through it (`unlinkat`).
pub struct Leftover {
    /// The folder holding the file; `None` if it could not be opened (then the path is
    /// used, which works when there is no chroot).
    dir: Option<std::fs::File>,
    path: std::path::PathBuf,
}

impl Leftover {
    /// Opens the folder of `path` now, while its path still means what it says.
    pub fn new(path: std::path::PathBuf) -> Leftover {
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => std::path::Path::new("."),
        };
        Leftover {
            dir: std::fs::File::open(folder).ok(),
            path,
        }
    }

    /// Removes the file. After the drop from root the folder may not be ours to change:
    /// then it stays, as after a crash, and the next start replaces it.
    pub fn remove(&self) {
        let removed = match (&self.dir, self.path.file_name()) {
            (Some(dir), Some(name)) => {
                nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir)
                    .map_err(std::io::Error::from)
            }
            _ => std::fs::remove_file(&self.path),
        };
        if let Err(e) = removed {
            tracing::debug!(path = %self.path.display(), error = %e, "left in place at stop");
        }
    }
}

#[cfg(test)]
mod leftover_tests {
    use super::Leftover;

    #[test]
    fn a_leftover_is_removed_through_its_folder_even_after_a_chdir_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bindery.pid");
        std::fs::write(&path, "1\n").unwrap();
        let l = Leftover::new(path.clone());
        // What a chroot does to the path: the folder is reached through the open handle,
        // not the name. Renaming the folder away stands in for it.
        let moved = dir.path().with_extension("moved");
        std::fs::rename(dir.path(), &moved).unwrap();
        l.remove();
        assert!(!moved.join("bindery.pid").exists());
        std::fs::rename(&moved, dir.path()).unwrap();
    }
}
