//! How many connections a (binding, domain) queue may have open: slow start toward
//! `max_outbound_connections`, in the spirit of Postfix's destination concurrency slow start
//! and KumoMTA's connection ramp.
//!
//! A queue starts with a target of one connection. Each time one of its connections is made
//! (connected and greeted) while parts still wait, the target grows by a share of the way
//! left to what the queue could use, `min(max_outbound_connections, open + waiting)`:
//!
//! ```text
//! step   = max(1, floor(ramp × (desired − target)))
//! target = min(desired, target + step)
//! ```
//!
//! `ramp` is Momentum's `connection_allocation_aggressiveness`: `normal` is 0.3, `high`
//! 0.75 (the values Momentum's documentation gives for its two settings). With 400 parts
//! waiting and a limit of 32, `normal` goes 1, 10, 16, 20, 23, 25, 27, 28, ... and `high` 1,
//! 24, 30, 31, 32: every new connection is one the remote has just shown it takes. A connect
//! that fails or times out halves the target (never below 1), and a queue whose last
//! connection closes with nothing left to send starts from one again next time, so a queue
//! that wakes up with a backlog does not open its old number of connections at once.

/// `connection_allocation_aggressiveness = normal`.
pub const RAMP_NORMAL: f64 = 0.3;
/// `connection_allocation_aggressiveness = high`.
pub const RAMP_HIGH: f64 = 0.75;

/// The target after a connection was made, with `open` connections and `waiting` parts.
pub fn grow(target: u32, open: u32, waiting: u32, max: u32, ramp: f64) -> u32 {
    let target = target.max(1);
    let desired = max.min(open.saturating_add(waiting)).max(1);
    if desired <= target {
        return target;
    }
    let step = ((f64::from(desired - target) * ramp).floor() as u32).max(1);
    target.saturating_add(step).min(desired)
}

/// The target after a connect failed or timed out.
pub fn shrink(target: u32) -> u32 {
    (target / 2).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Momentum's figure: an active queue of 400 and a limit of 32.
    #[test]
    fn the_ramps_toward_32_with_400_waiting() {
        let walk = |ramp| {
            let mut t = 1;
            let mut seen = vec![t];
            while t < 32 {
                t = grow(t, t, 400, 32, ramp);
                seen.push(t);
            }
            seen
        };
        assert_eq!(walk(RAMP_NORMAL)[..8], [1, 10, 16, 20, 23, 25, 27, 28]);
        assert_eq!(walk(RAMP_HIGH), [1, 24, 30, 31, 32]);
    }

    #[test]
    fn growth_stops_at_what_the_queue_can_use() {
        assert_eq!(
            grow(1, 1, 2, 20, RAMP_HIGH),
            2,
            "one open, two waiting: toward three, a step at a time"
        );
        assert_eq!(grow(2, 2, 2, 20, RAMP_HIGH), 3);
        assert_eq!(grow(3, 3, 2, 20, RAMP_HIGH), 4);
        assert_eq!(
            grow(3, 3, 0, 20, RAMP_HIGH),
            3,
            "nothing waiting: no growth"
        );
        assert_eq!(grow(5, 5, 100, 5, RAMP_HIGH), 5, "at the limit");
        assert_eq!(grow(0, 0, 100, 20, RAMP_NORMAL), 6, "0 counts as the first");
    }

    #[test]
    fn a_failure_halves_but_keeps_one() {
        assert_eq!(shrink(20), 10);
        assert_eq!(shrink(1), 1);
        assert_eq!(shrink(0), 1);
    }
}
