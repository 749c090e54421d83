//! Momentum callouts bindery does not run. A module that defines one is loaded, and
//! `config check` warns, naming the callout, where it is defined and what Momentum does with
//! it: a policy that silently does nothing is the worst outcome (the operator believes it is
//! in force).
//!
//! A module's function counts as a callout when its name is one of Momentum's (below), or
//! looks like one (`validate_*`, `core_*`): a misspelt callout is the same silence, and gets
//! a "did you mean" when it is close to one bindery runs.

use bindery_config::diag::did_you_mean;

use crate::Callout;

/// Momentum's callouts bindery does not run, with what Momentum does with each
/// (SparkPost/support-docs `4-implementing-policy-scriptlets.md` and the 3.x hook pages).
const UNRUN: &[(&str, &str)] = &[
    (
        "deinit",
        "Momentum calls it when the script is unloaded, to free what init set up; bindery drops the whole Lua state instead",
    ),
    (
        "core_log_reception_v1",
        "Momentum calls it after each reception is logged",
    ),
    (
        "core_log_rejection",
        "Momentum calls it after each rejection is logged",
    ),
    (
        "core_log_attempt_v1",
        "Momentum calls it after each delivery attempt",
    ),
    (
        "msg_gen_rcpt_to",
        "Momentum's msg_gen module calls it for messages injected over HTTP (issue 21)",
    ),
    (
        "smpp_submit_response",
        "Momentum's SMPP module calls it (bindery does not deliver SMS)",
    ),
];

/// Why a module function called `name` will never run, if it is a callout bindery does not
/// run; `None` for a callout bindery runs or a helper function of the script's own.
pub fn why(name: &str) -> Option<String> {
    if name == "init" || Callout::ALL.iter().any(|c| c.name() == name) {
        return None;
    }
    if let Some((_, what)) = UNRUN.iter().find(|(n, _)| *n == name) {
        return Some(format!("{what}; bindery does not run it"));
    }
    if name.starts_with("validate_") || name.starts_with("core_") {
        let mut text = String::from(
            "it is named like a Momentum callout, but bindery knows no callout by that name and never calls it",
        );
        if let Some(near) = did_you_mean(name, Callout::ALL.iter().map(|c| c.name())) {
            text.push_str(&format!("; did you mean `{near}`?"));
        }
        return Some(text);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::why;

    #[test]
    fn callouts_bindery_runs_and_helpers_get_no_warning() {
        assert_eq!(why("validate_set_binding"), None);
        assert_eq!(why("init"), None);
        assert_eq!(why("get_binding"), None);
        assert_eq!(why("core_log_delivery_v1"), None);
        assert_eq!(why("core_pre_mailq_message_requeue"), None);
        assert_eq!(why("validate_rcptto_list"), None);
        assert_eq!(why("msg_gen_data_spool"), None);
        assert!(why("msg_gen_rcpt_to").unwrap().contains("HTTP"));
        assert!(
            why("validate_set_bindings")
                .unwrap()
                .ends_with("did you mean `validate_set_binding`?")
        );
    }
}
