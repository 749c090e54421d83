//! The retry schedule after a transient failure.

/// `max_retries`: `auto` and `none` put no limit on the count (the message lives until
/// `message_expiration`); a number caps the retries after the first attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxRetries {
    Auto,
    None,
    Count(u32),
}

/// The options that decide what happens after a transient failure, resolved for one
/// (binding, domain) through the fallback chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Seconds before the first retry; doubled for each further one.
    pub retry_interval: u64,
    /// Cap on the interval, in seconds.
    pub max_retry_interval: u64,
    pub max_retries: MaxRetries,
    /// Seconds after reception when the message fails.
    pub message_expiration: u64,
    pub never_retry: bool,
}

/// The text Momentum logs and bounces with when a message runs out of time.
pub const EXPIRED: &str = "554 5.4.7 [internal] exceeded max time without delivery";
/// The text for `never_retry` and an exhausted `max_retries`.
pub const NO_MORE_RETRIES: &str = "554 5.4.7 [internal] exceeded max retries without delivery";

/// What to do with a part after a transient failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Try again at this time (seconds since the epoch).
    RetryAt(u64),
    /// Give up: fail the recipients with this reply (and bounce them).
    Fail(&'static str),
}

impl RetryPolicy {
    /// The interval before retry number `n` (1 for the first retry): `retry_interval` ×
    /// 2^(n-1), at most `max_retry_interval`.
    pub fn interval(&self, n: u32) -> u64 {
        let doubled = self
            .retry_interval
            .checked_shl(n.saturating_sub(1).min(63))
            .filter(|&v| v >> n.saturating_sub(1).min(63) == self.retry_interval)
            .unwrap_or(u64::MAX);
        doubled.min(self.max_retry_interval.max(1)).max(1)
    }

    /// The time a message received at `received` expires.
    pub fn expires_at(&self, received: u64) -> u64 {
        received.saturating_add(self.message_expiration)
    }

    /// After attempt number `attempts` (1 for the first) failed transiently at `now`.
    /// The last retry is moved up to the expiry time, so a message gets one more try before
    /// it expires rather than waiting past its lifetime.
    pub fn after_transient(&self, attempts: u32, received: u64, now: u64) -> Next {
        if self.never_retry {
            return Next::Fail(NO_MORE_RETRIES);
        }
        if let MaxRetries::Count(max) = self.max_retries
            && attempts > max
        {
            return Next::Fail(NO_MORE_RETRIES);
        }
        let expires = self.expires_at(received);
        if now >= expires {
            return Next::Fail(EXPIRED);
        }
        Next::RetryAt(now.saturating_add(self.interval(attempts)).min(expires))
    }
}

/// When the delay notice after `sent` others is due (Momentum's `delay_dsn` module): the first
/// `interval` seconds after reception, each next one twice the previous gap after it, no gap
/// longer than `max_interval` (0: no cap). With `interval` 3 hours and `max_interval` 24:
/// 3 h, 9 h, 21 h, 45 h, then every 24 h (the module's documented example). `None` when
/// `interval` is 0.
pub fn delay_notice_due(received: u64, interval: u64, max_interval: u64, sent: u32) -> Option<u64> {
    if interval == 0 {
        return None;
    }
    let mut at = received;
    let mut gap = interval;
    for _ in 0..=sent {
        let step = if max_interval > 0 {
            gap.min(max_interval)
        } else {
            gap
        };
        at = at.saturating_add(step);
        gap = gap.saturating_mul(2);
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            retry_interval: 1200,
            max_retry_interval: 43200,
            max_retries: MaxRetries::Auto,
            message_expiration: 86400,
            never_retry: false,
        }
    }

    #[test]
    fn interval_doubles_up_to_the_cap() {
        let p = policy();
        let got: Vec<u64> = (1..=8).map(|n| p.interval(n)).collect();
        assert_eq!(got, [1200, 2400, 4800, 9600, 19200, 38400, 43200, 43200]);
        assert_eq!(p.interval(200), 43200);
    }

    /// Momentum's documented example: retry_interval = max_retry_interval = 1200 and
    /// max_retries = 5 retries every 1200 s and fails after 6000 s.
    #[test]
    fn max_retries_example_from_the_documentation() {
        let p = RetryPolicy {
            max_retry_interval: 1200,
            max_retries: MaxRetries::Count(5),
            ..policy()
        };
        let mut now = 0;
        let mut attempts = 1;
        loop {
            match p.after_transient(attempts, 0, now) {
                Next::RetryAt(t) => {
                    assert_eq!(t - now, 1200);
                    now = t;
                    attempts += 1;
                }
                Next::Fail(why) => {
                    assert_eq!(why, NO_MORE_RETRIES);
                    break;
                }
            }
        }
        assert_eq!((attempts, now), (6, 6000));
    }

    #[test]
    fn expiry_gets_one_last_try_then_fails() {
        let p = RetryPolicy {
            message_expiration: 3000,
            ..policy()
        };
        assert_eq!(p.after_transient(1, 0, 0), Next::RetryAt(1200));
        assert_eq!(p.after_transient(2, 0, 1200), Next::RetryAt(3000));
        assert_eq!(p.after_transient(3, 0, 3000), Next::Fail(EXPIRED));
        let never = RetryPolicy {
            never_retry: true,
            ..policy()
        };
        assert_eq!(never.after_transient(1, 0, 0), Next::Fail(NO_MORE_RETRIES));
    }

    #[test]
    fn delay_notices_follow_the_documented_schedule() {
        let h = 3600;
        let due: Vec<u64> = (0..6)
            .map(|n| super::delay_notice_due(0, 3 * h, 24 * h, n).expect("on") / h)
            .collect();
        assert_eq!(due, [3, 9, 21, 45, 69, 93]);
        // Momentum's defaults: every 3600 s doubling, no cap.
        assert_eq!(
            super::delay_notice_due(100, 3600, 0, 2),
            Some(100 + 3600 * 7)
        );
        assert_eq!(super::delay_notice_due(0, 0, 0, 0), None);
        assert!(
            super::delay_notice_due(0, u64::MAX / 2, 0, 40).is_some(),
            "no overflow"
        );
    }
}
