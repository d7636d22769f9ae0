//! When to try a mail again after a temporary failure, and when to stop trying.

use std::time::Duration;

/// Capped exponential back-off with jitter, and a limit on attempts.
///
/// After the n-th failed attempt (n = 1, 2, …) the next one waits `base · 2^(n-1)`, at most
/// `max`, spread by ±`jitter` so that mail which failed together (a relay restart) does not
/// come back together. With the defaults: 30 s, 1 min, 2 min, … 32 min, then 1 h; the tenth
/// failure is final, about four and a half hours after the first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Wait after the first failure.
    pub base: Duration,
    /// Longest wait.
    pub max: Duration,
    /// Spread of each wait as a fraction of it: 0.2 is ±20 %.
    pub jitter: f64,
    /// After this many failed attempts a temporary failure is made permanent.
    pub max_attempts: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(30),
            max: Duration::from_secs(3600),
            jitter: 0.2,
            max_attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1 for the first), with `unit` a number in
    /// `[0, 1)` choosing where in the jitter band it falls (0.5 is the middle).
    pub fn delay(&self, attempt: i64, unit: f64) -> Duration {
        // 2^20 · base is far beyond any sensible cap; stop doubling there instead of overflowing.
        let doublings = u32::try_from(attempt.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
        let plain = self
            .base
            .saturating_mul(1u32 << doublings)
            .min(self.max)
            .as_secs_f64();
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 + jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        Duration::from_secs_f64((plain * factor).max(0.0))
    }

    /// Whether failed attempt number `attempt` (1 for the first) is the last one allowed.
    pub fn gives_up(&self, attempt: i64) -> bool {
        attempt >= self.max_attempts
    }
}

/// A number in `[0, 1)` from the operating system's generator; 0.5 (no jitter) if it fails,
/// since a retry without jitter is still a retry.
pub(crate) fn random_unit() -> f64 {
    getrandom::u64().map_or(0.5, |n| (n >> 11) as f64 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        let secs = |attempt| p.delay(attempt, 0.5).as_secs();
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
        assert_eq!(p.delay(1, 0.0), Duration::from_secs(24));
        assert_eq!(p.delay(1, 1.0), Duration::from_secs(36));
        for _ in 0..100 {
            let d = p.delay(3, random_unit()).as_secs_f64();
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
