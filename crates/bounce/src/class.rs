//! Momentum's bounce classification codes (`content/momentum/4/4-bounce-logger-classification-codes.md`
//! in SparkPost/support-docs; 26 from SparkPost's `deliverability/bounce-classification-codes.md`
//! and support-docs PR 235), and the custom classes `bounce_classifier_override` adds.
//!
//! The documentation names three symbols (`BC_UNDETERMINED`, `BC_SOFT_TIMEOUT`,
//! `BC_SUBSCRIBE`, in `lua/ref-msys-bounce-classify.md` and `modules/bounce-logger.md`); the
//! others follow their shape: `BC_` and the category where the name alone is ambiguous.

/// How a class is to be treated: Momentum's "Category" column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    Undetermined,
    Hard,
    Soft,
    Admin,
    Block,
    /// A class an operator registered (`custom_classes`).
    Custom,
}

impl Category {
    pub fn name(self) -> &'static str {
        match self {
            Category::Undetermined => "Undetermined",
            Category::Hard => "Hard",
            Category::Soft => "Soft",
            Category::Admin => "Admin",
            Category::Block => "Block",
            Category::Custom => "Custom",
        }
    }
}

/// One built-in class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Class {
    pub code: u16,
    pub name: &'static str,
    pub symbol: &'static str,
    pub description: &'static str,
    pub category: Category,
}

const fn c(
    code: u16,
    name: &'static str,
    symbol: &'static str,
    description: &'static str,
    category: Category,
) -> Class {
    Class {
        code,
        name,
        symbol,
        description,
        category,
    }
}

use Category::*;

/// Every built-in class, in code order.
pub const CLASSES: &[Class] = &[
    c(
        1,
        "Undetermined",
        "BC_UNDETERMINED",
        "The response text could not be identified.",
        Undetermined,
    ),
    c(
        10,
        "Invalid Recipient",
        "BC_INVALID_RECIPIENT",
        "The recipient is invalid.",
        Hard,
    ),
    c(
        20,
        "Soft Bounce",
        "BC_SOFT_BOUNCE",
        "The message soft bounced.",
        Soft,
    ),
    c(
        21,
        "DNS Failure",
        "BC_SOFT_DNS_FAILURE",
        "The message bounced due to a DNS failure.",
        Soft,
    ),
    c(
        22,
        "Mailbox Full",
        "BC_SOFT_MAILBOX_FULL",
        "The message bounced due to the remote mailbox being over quota.",
        Soft,
    ),
    c(
        23,
        "Too Large",
        "BC_SOFT_TOO_LARGE",
        "The message bounced because it was too large for the recipient.",
        Soft,
    ),
    c(
        24,
        "Timeout",
        "BC_SOFT_TIMEOUT",
        "The message timed out.",
        Soft,
    ),
    c(
        25,
        "Admin Failure",
        "BC_ADMIN_FAILURE",
        "The message was failed by the configured policies.",
        Admin,
    ),
    c(
        26,
        "Smart Send Suppression",
        "BC_SMART_SEND_SUPPRESSION",
        "The message was suppressed by the sender's own rules.",
        Admin,
    ),
    c(
        30,
        "Generic Bounce: No RCPT",
        "BC_NO_RCPT",
        "No recipient could be determined for the message.",
        Hard,
    ),
    c(
        40,
        "Generic Bounce",
        "BC_GENERIC_BOUNCE",
        "The message failed for unspecified reasons.",
        Soft,
    ),
    c(
        50,
        "Mail Block",
        "BC_MAIL_BLOCK",
        "The message was blocked by the receiver.",
        Block,
    ),
    c(
        51,
        "Spam Block",
        "BC_SPAM_BLOCK",
        "The message was blocked by the receiver as coming from a known spam source.",
        Block,
    ),
    c(
        52,
        "Spam Content",
        "BC_SPAM_CONTENT",
        "The message was blocked by the receiver as spam.",
        Block,
    ),
    c(
        53,
        "Prohibited Attachment",
        "BC_PROHIBITED_ATTACHMENT",
        "The message was blocked by the receiver because it contained an attachment.",
        Block,
    ),
    c(
        54,
        "Relaying Denied",
        "BC_RELAYING_DENIED",
        "The message was blocked by the receiver because relaying is not allowed.",
        Block,
    ),
    c(
        60,
        "Auto-Reply",
        "BC_AUTO_REPLY",
        "The message is an auto-reply/vacation mail.",
        Soft,
    ),
    c(
        70,
        "Transient Failure",
        "BC_TRANSIENT_FAILURE",
        "Message transmission has been temporarily delayed.",
        Soft,
    ),
    c(
        80,
        "Subscribe",
        "BC_SUBSCRIBE",
        "The message is a subscribe request.",
        Admin,
    ),
    c(
        90,
        "Unsubscribe",
        "BC_UNSUBSCRIBE",
        "The message is an unsubscribe request.",
        Hard,
    ),
    c(
        100,
        "Challenge-Response",
        "BC_CHALLENGE_RESPONSE",
        "The message is a challenge-response probe.",
        Soft,
    ),
];

pub const UNDETERMINED: u16 = 1;
pub const INVALID_RECIPIENT: u16 = 10;
pub const DNS_FAILURE: u16 = 21;
pub const TIMEOUT: u16 = 24;
pub const ADMIN_FAILURE: u16 = 25;
pub const GENERIC_BOUNCE: u16 = 40;
pub const AUTO_REPLY: u16 = 60;
pub const TRANSIENT_FAILURE: u16 = 70;

/// The built-in class with `code`.
pub fn builtin(code: u16) -> Option<&'static Class> {
    CLASSES.iter().find(|c| c.code == code)
}

/// The built-in class named by `word`: a code, a symbol (`BC_SOFT_TIMEOUT`) or a name
/// ("Mailbox Full", case and spaces ignored).
pub fn lookup(word: &str) -> Option<&'static Class> {
    if let Ok(n) = word.parse::<u16>() {
        return builtin(n);
    }
    let squash = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect::<String>()
    };
    let w = squash(word);
    CLASSES
        .iter()
        .find(|c| c.symbol.eq_ignore_ascii_case(word) || squash(c.name) == w)
}

/// The class table in force: the built-in classes and the `custom_classes` an operator
/// registered (codes under 100 that are not built in).
#[derive(Clone, Debug, Default)]
pub struct Classes {
    custom: Vec<(u16, String)>,
}

/// What [`Classes`] says of a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Described<'a> {
    pub code: u16,
    pub name: &'a str,
    pub symbol: &'a str,
    pub description: &'a str,
    pub category: Category,
}

impl Classes {
    /// Registers `code` as `description`: refused when the code is built in or not under 100,
    /// as the module page requires.
    pub fn register(&mut self, code: u16, description: &str) -> Result<(), String> {
        if code >= 100 {
            return Err(format!("custom class {code} is not under 100"));
        }
        if let Some(b) = builtin(code) {
            return Err(format!("class {code} is built in ({})", b.name));
        }
        if code == 0 {
            return Err("class 0 is not a class".into());
        }
        self.custom.retain(|(c, _)| *c != code);
        self.custom.push((code, description.to_string()));
        Ok(())
    }

    pub fn is_known(&self, code: u16) -> bool {
        builtin(code).is_some() || self.custom.iter().any(|(c, _)| *c == code)
    }

    pub fn describe(&self, code: u16) -> Described<'_> {
        if let Some(b) = builtin(code) {
            return Described {
                code,
                name: b.name,
                symbol: b.symbol,
                description: b.description,
                category: b.category,
            };
        }
        match self.custom.iter().find(|(c, _)| *c == code) {
            Some((_, d)) => Described {
                code,
                name: d,
                symbol: "BC_CUSTOM",
                description: d,
                category: Category::Custom,
            },
            None => self.describe(UNDETERMINED),
        }
    }

    pub fn custom(&self) -> &[(u16, String)] {
        &self.custom
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_code_order_and_names_are_unique() {
        for w in CLASSES.windows(2) {
            assert!(w[0].code < w[1].code);
            assert_ne!(w[0].symbol, w[1].symbol);
        }
        assert_eq!(builtin(24).map(|c| c.symbol), Some("BC_SOFT_TIMEOUT"));
        assert_eq!(builtin(80).map(|c| c.symbol), Some("BC_SUBSCRIBE"));
        assert_eq!(builtin(1).map(|c| c.symbol), Some("BC_UNDETERMINED"));
    }

    #[test]
    fn lookup_takes_codes_symbols_and_names() {
        assert_eq!(lookup("22").map(|c| c.code), Some(22));
        assert_eq!(lookup("bc_soft_timeout").map(|c| c.code), Some(24));
        assert_eq!(lookup("mailbox full").map(|c| c.code), Some(22));
        assert_eq!(lookup("Auto-Reply").map(|c| c.code), Some(60));
        assert_eq!(lookup("nothing"), None);
    }

    #[test]
    fn custom_classes_are_under_100_and_new() {
        let mut c = Classes::default();
        assert!(c.register(99, "profanity").is_ok());
        assert!(c.register(10, "x").is_err());
        assert!(c.register(100, "x").is_err());
        assert!(c.register(150, "x").is_err());
        assert_eq!(c.describe(99).name, "profanity");
        assert_eq!(c.describe(99).category, Category::Custom);
        assert_eq!(c.describe(22).name, "Mailbox Full");
        assert_eq!(c.describe(77).code, 1);
        assert!(c.is_known(99) && c.is_known(10) && !c.is_known(98));
    }
}
