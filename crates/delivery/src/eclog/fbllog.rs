//! Momentum's fbllog records (`content/momentum/4/log-formats-fbllog.md` in
//! SparkPost/support-docs), written by the `fbl` module for every feedback report received:
//! `time@msgid@F@rcptlocal@rcptdomain@binding@bindinggroup@feedbacktype@fbldomain@userstring`.

use super::fields::{line, split_address};

pub struct Feedback<'a> {
    pub time: u64,
    /// The original message's id where the report names it, else the report's own.
    pub id: &'a str,
    /// The original recipient (the one who complained).
    pub rcpt: &'a str,
    pub binding: &'a str,
    pub binding_group: &'a str,
    pub feedback_type: &'a str,
    /// The domain the report was sent to (the FBL address's).
    pub fbl_domain: &'a str,
    pub user_string: &'a str,
}

pub fn feedback(f: &Feedback) -> String {
    let (rl, rd) = split_address(f.rcpt);
    line(&[
        &f.time.to_string(),
        f.id,
        "F",
        rl,
        rd,
        f.binding,
        f.binding_group,
        f.feedback_type,
        f.fbl_domain,
        f.user_string,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_matches_the_documented_example() {
        let l = feedback(&Feedback {
            time: 1224699438,
            id: "18/00-02937-E2E6FF84",
            rcpt: "someone@test.com",
            binding: "default",
            binding_group: "default",
            feedback_type: "abuse",
            fbl_domain: "yahoo.com",
            user_string: "true",
        });
        assert_eq!(
            l,
            "1224699438@18/00-02937-E2E6FF84@F@someone@test.com@default@default@abuse@yahoo.com@true\n"
        );
    }
}
