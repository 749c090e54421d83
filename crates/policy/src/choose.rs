//! Binding and binding-group assignment: `msg:binding`, `msg:binding_group` and the
//! existence checks in `msys.core`.

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
    pub fn pick(&self, g: GroupId, mut random: impl FnMut(usize) -> usize) -> Option<BindingId> {
        let all = &self.members[g.0 as usize];
        let live: Vec<BindingId> = all
            .iter()
            .copied()
            .filter(|b| !self.suspended[b.0 as usize])
            .collect();
        let from = if live.is_empty() {
            all.as_slice()
        } else {
            &live
        };
        (!from.is_empty()).then(|| from[random(from.len())])
    }
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
}
