//! When to try a mail again after a temporary failure, and when to stop trying.

use std::time::Duration;

use postern_vocab::Backoff;

/// The back-off between attempts, and a limit on them.
///
/// With the defaults the waits are 30 s, 1 min, 2 min, … 32 min, then 1 h, each ±20 % so that
/// mail which failed together (a relay restart) does not come back together; the tenth failure
/// is final, about four and a half hours after the first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The wait after failed attempt number n (1 for the first).
    pub backoff: Backoff,
    /// After this many failed attempts a temporary failure is made permanent.
    pub max_attempts: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            backoff: Backoff::new(Duration::from_secs(30), Duration::from_secs(3600)),
            max_attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// Whether failed attempt number `attempt` (1 for the first) is the last one allowed.
    pub fn gives_up(&self, attempt: i64) -> bool {
        attempt >= self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The figures the crate documents; the arithmetic itself is postern_vocab's, tested there.
    #[test]
    fn the_default_waits_30_s_doubling_to_an_hour_and_gives_up_at_the_tenth_failure() {
        let p = RetryPolicy::default();
        let middle = |attempt| p.backoff.delay_at(attempt, 0.5).as_secs();
        let waits: Vec<u64> = (1..=9).map(middle).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        let band = (p.backoff.delay_at(1, 0.0), p.backoff.delay_at(1, 1.0));
        assert_eq!(band, (Duration::from_secs(24), Duration::from_secs(36)));
        assert!(!p.gives_up(9) && p.gives_up(10));
    }
}
