//! The seam through which delivery tells a policy what happened to each recipient:
//! Momentum's `core_log_delivery_v1`, `core_log_transient_failure_v1` and
//! `core_log_permanent_failure_v1` callouts, run by the server with the policy in force.
//!
//! Called once per recipient, after the outcome is decided and before it is logged: a
//! script may rewrite the reply that the logs and the bounce then carry (Momentum's sample
//! `log_reason_form_perm_fail.lua` does, with `msg:set_code`).

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Delivery,
    Transient,
    Permanent,
    /// The deferred message goes back to the delayed queue (after `Transient`).
    Requeue,
}

/// One recipient's outcome.
#[derive(Debug)]
pub struct Event<'a> {
    pub kind: EventKind,
    pub id: &'a str,
    pub sender: &'a str,
    pub rcpt: &'a str,
    pub binding_group: &'a str,
    pub binding: &'a str,
    /// The recipient's domain (Momentum's `domain_record`).
    pub domain: &'a str,
    /// The reply that decided it: code and text (`250 2.0.0 OK`).
    pub code: u16,
    pub text: &'a str,
    /// Seconds since the Unix epoch.
    pub time: u64,
}

/// A message's recipients of one domain about to be queued, for Momentum's
/// `outbound_smtp_auth_config` hook: the message as the hook sees it.
#[derive(Debug)]
pub struct LoginQuery<'a> {
    pub id: &'a str,
    pub sender: &'a str,
    pub rcpts: Vec<&'a str>,
    pub binding_group: &'a str,
    pub binding: &'a str,
    pub domain: &'a str,
    /// The message context the hook starts from: what the policy kept at reception, and
    /// `outbound_smtp_auth_key` from the options where neither set it.
    pub context: Vec<(String, String)>,
}

/// Receives every outcome; implemented by the server with the policy in force.
pub trait Events: Send + Sync {
    /// Whether `kind` has anything to run: outcomes are not built for nobody.
    fn wants(&self, kind: EventKind) -> bool;
    /// Runs the callouts for `e`; the reply a script set instead, if it did.
    fn record(&self, e: &Event<'_>) -> Option<(u16, String)>;
    /// Whether the policy has an `outbound_smtp_auth_config` hook.
    fn wants_login(&self) -> bool {
        false
    }
    /// Runs the hook on `q`; the message context as it left it.
    fn login(&self, q: LoginQuery<'_>) -> Vec<(String, String)> {
        q.context
    }
}
