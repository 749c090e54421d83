//! The delivery side's records in the JSON-lines log: one per recipient and outcome, and one
//! per generated report. Every record names the binding and the source address used, because
//! that is what operators grep when a provider complains about an IP.

use serde::Serialize;

/// The connection an attempt went over: `source_ip`, `remote_host`, `remote_ip` in the
/// record, each absent when no connection got that far (expiry before a connection, a
/// failure from the console, a refused route).
#[derive(Serialize)]
pub struct Conn<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_ip: Option<String>,
}

/// `delivery`, `transient` or `permanent`: what happened to one recipient in one attempt.
#[derive(Serialize)]
pub struct Attempt<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'a str,
    /// Seconds since the Unix epoch.
    pub time: u64,
    pub sender: &'a str,
    pub rcpt: &'a str,
    pub binding_group: &'a str,
    pub binding: &'a str,
    #[serde(flatten)]
    pub conn: Conn<'a>,
    /// The reply that decided it, as one line.
    pub reply: String,
    /// Which attempt this was (1 for the first).
    pub attempt: u32,
    /// For `transient`: when the next attempt is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<u64>,
    pub tls: bool,
    /// For `transient` and `permanent`: the reply's bounce class (Momentum's code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounce_class: Option<u16>,
}

/// `bounce` (failure report) or `success_dsn`: a report was generated and queued.
///
/// It speaks of the original message's attempt, like the `permanent` records it follows:
/// the binding that sent it, the source address, the remote host and the replies. The report
/// itself is queued on `report_binding` and gets records of its own under its `id`.
#[derive(Serialize)]
pub struct ReportMade<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The report's own message id.
    pub id: &'a str,
    pub original_id: &'a str,
    pub time: u64,
    /// The original sender, who receives the report.
    pub to: &'a str,
    pub rcpts: Vec<&'a str>,
    /// The reply that decided each of `rcpts`, in the same order, as one line.
    pub replies: Vec<String>,
    pub binding_group: &'a str,
    pub binding: &'a str,
    /// The connection of the attempt that decided it.
    #[serde(flatten)]
    pub conn: Conn<'a>,
    /// Where the report itself is queued.
    pub report_binding: &'a str,
}

/// `adaptive`: a response rule changed what a binding x domain may do (issue 22).
#[derive(Serialize)]
pub struct Adaptive<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub time: u64,
    pub binding: &'a str,
    pub domain: &'a str,
    /// What changed: `suspended until 1765000000 by rule yahoo.com#1`.
    pub action: &'a str,
    /// The reply that fired the rule.
    pub reply: &'a str,
}
