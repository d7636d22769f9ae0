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

    #[test]
    fn doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        let secs = |attempt| p.backoff.delay_at(attempt, 0.5).as_secs();
        assert_eq!(
            (1..=9).map(secs).collect::<Vec<_>>(),
            [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
        );
        assert_eq!(secs(0), 30);
        assert_eq!(secs(i64::MAX), 3600);
    }

    #[test]
    fn jitter_stays_in_its_band() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff.delay_at(1, 0.0), Duration::from_secs(24));
        assert_eq!(p.backoff.delay_at(1, 1.0), Duration::from_secs(36));
        for _ in 0..100 {
            let d = p.backoff.delay(3).as_secs_f64();
            assert!((96.0..=144.0).contains(&d), "{d}");
        }
    }

    #[test]
    fn gives_up_at_the_limit() {
        let p = RetryPolicy::default();
        assert!(!p.gives_up(9));
        assert!(p.gives_up(10));
    }
}
