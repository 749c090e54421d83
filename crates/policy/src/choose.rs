//! Binding and binding-group assignment: `msg:binding`, `msg:binding_group` and the
//! existence checks in `msys.core`.
//!
//! Within a group, Momentum prefers bindings that are not suspended
//! (`conf-ref-suspend-delivery.md`), and with adaptive delivery it checks each binding for a
//! suspension toward the message's destination (`3-reference-conf-ref-binding-group.md`:
//! "significant CPU time is spent checking for suspended bindings"): a binding the adaptive
//! book holds for one of the message's recipient domains is passed over while another is
//! free.

use std::collections::HashSet;

use bindery_config::Snapshot;
use bindery_config::schema::option_id;
use bindery_config::snapshot::{BindingId, GroupId};
use bindery_config::value::Value;

/// What assignment needs to know of a configuration generation, computed once.
#[derive(Debug)]
pub struct Bindings {
    /// By binding index: is `suspend_delivery` on for it?
    suspended: Vec<bool>,
    /// By group index: its bindings.
    members: Vec<Vec<BindingId>>,
}

impl Bindings {
    pub fn new(snap: &Snapshot) -> Bindings {
        let suspend = option_id("Suspend_Delivery");
        let suspended = snap
            .bindings()
            .map(|b| {
                matches!(
                    snap.chain(Some(b), None, None)
                        .get(suspend)
                        .map(|r| r.value),
                    Some(Value::Bool(true))
                )
            })
            .collect();
        let mut members = vec![Vec::new(); snap.groups().count()];
        for b in snap.bindings() {
            members[snap.group_of(b).0 as usize].push(b);
        }
        Bindings { suspended, members }
    }

    pub fn group_size(&self, g: GroupId) -> usize {
        self.members[g.0 as usize].len()
    }

    /// A binding of group `g`: one at random among those not suspended, or among all of
    /// them when every one is suspended. `None` for a group with no bindings (the message
    /// then stays on the default binding, as Momentum's selection falls back to it).
    pub fn pick(&self, g: GroupId, random: impl FnMut(usize) -> usize) -> Option<BindingId> {
        self.pick_avoiding(g, random, |_| false)
    }

    /// [`Bindings::pick`], passing over the bindings `held` says are held (an adaptive
    /// suspension toward the message's destination) while one that is not remains.
    pub fn pick_avoiding(
        &self,
        g: GroupId,
        mut random: impl FnMut(usize) -> usize,
        held: impl Fn(BindingId) -> bool,
    ) -> Option<BindingId> {
        let all = &self.members[g.0 as usize];
        let on = |b: &BindingId| !self.suspended[b.0 as usize];
        let free: Vec<BindingId> = all.iter().copied().filter(|b| on(b) && !held(*b)).collect();
        let from = if free.is_empty() {
            let live: Vec<BindingId> = all.iter().copied().filter(on).collect();
            if live.is_empty() { all.clone() } else { live }
        } else {
            free
        };
        (!from.is_empty()).then(|| from[random(from.len())])
    }
}

/// The bindings adaptive delivery holds at `now` (seconds since the epoch) for any of
/// `domains`: one look at the book for a whole pick.
pub fn held_bindings<'d>(
    live: &bindery_adaptive::Live,
    domains: impl IntoIterator<Item = &'d str>,
    now: u64,
) -> HashSet<String> {
    let book = live.book();
    let mut held = HashSet::new();
    if book.states().next().is_none() {
        return held;
    }
    let domains: HashSet<String> = domains.into_iter().map(str::to_ascii_lowercase).collect();
    for (key, state) in book.states() {
        if domains.contains(&key.domain) && state.suspended(now).is_some() {
            held.insert(key.binding.clone());
        }
    }
    held
}

/// The domain of an address (`user@example.com` → `example.com`), or the whole text.
pub fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or(address, |(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_prefer_bindings_not_suspended() {
        let snap = bindery_config::snapshot_from_str(
            "t.conf",
            r#"binding_group "g" {
                 binding "a" { suspend_delivery = true }
                 binding "b" { }
                 binding "c" { }
               }
               binding_group "all_down" { binding "d" { suspend_delivery = true } }
               binding_group "empty" { }"#,
        )
        .unwrap();
        let b = Bindings::new(&snap);
        let g = snap.group_id("g").unwrap();
        assert_eq!(b.group_size(g), 3);
        let names: Vec<&str> = (0..3)
            .map(|i| snap.binding_name(b.pick(g, |n| i % n).unwrap()))
            .collect();
        assert_eq!(names, ["b", "c", "b"]);
        let down = snap.group_id("all_down").unwrap();
        assert_eq!(snap.binding_name(b.pick(down, |_| 0).unwrap()), "d");
        assert_eq!(b.pick(snap.group_id("empty").unwrap(), |_| 0), None);
    }

    #[test]
    fn picks_pass_over_bindings_adaptive_delivery_holds_for_the_domain() {
        let snap = bindery_config::snapshot_from_str(
            "t.conf",
            r#"binding_group "g" { binding "a" { } binding "b" { } binding "c" { suspend_delivery = true } }"#,
        )
        .unwrap();
        let b = Bindings::new(&snap);
        let g = snap.group_id("g").unwrap();
        let live = bindery_adaptive::Live::default();
        live.update(|book| {
            let k = bindery_adaptive::Key::new("a", "yahoo.test");
            (book.suspend(&k, 3600, false, "test", 100), true)
        });
        let name = |held: &HashSet<String>, i: usize| {
            snap.binding_name(
                b.pick_avoiding(g, |n| i % n, |x| held.contains(snap.binding_name(x)))
                    .unwrap(),
            )
            .to_string()
        };
        // Toward yahoo.test only b is free; elsewhere a and b share the mail.
        let held = held_bindings(&live, ["Yahoo.test"], 200);
        assert_eq!(held, HashSet::from(["a".to_string()]));
        assert_eq!((name(&held, 0), name(&held, 1)), ("b".into(), "b".into()));
        let other = held_bindings(&live, ["other.test"], 200);
        assert_eq!((name(&other, 0), name(&other, 1)), ("a".into(), "b".into()));
        // Once the suspension ends, a is chosen again.
        assert!(held_bindings(&live, ["yahoo.test"], 3800).is_empty());
        // Every live binding held: the mail still goes to one of them (and waits there).
        let both = HashSet::from(["a".to_string(), "b".to_string()]);
        assert_eq!((name(&both, 0), name(&both, 1)), ("a".into(), "b".into()));
        assert_eq!(domain_of("x@Y.test"), "Y.test");
    }
}
