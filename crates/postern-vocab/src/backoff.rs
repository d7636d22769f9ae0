//! How long to wait before trying again after a failure: one capped, jittered exponential
//! back-off for every retry postern makes — a watcher reconnecting to its mailbox, a throttled
//! Graph request, a stored message whose processing failed for now, a delivery to GitLab, a
//! mail to the SMTP relay.
//!
//! The wait doubles with each failure in a row, never exceeds a cap (so an outage of a day is
//! noticed within one cap of its end), and is spread by a random fraction so that work which
//! failed together (a relay restart, a database failover) does not come back together.

use std::time::Duration;

use crate::random;

/// The spread of a wait unless a caller chooses another: ±20 %.
pub const DEFAULT_JITTER: f64 = 0.2;

/// Doublings beyond this change nothing (`2^31` times even a millisecond exceeds any cap worth
/// having) and would overflow the multiplier.
const MAX_DOUBLINGS: i64 = 31;

/// A capped exponential back-off with jitter: after the n-th failure in a row (n = 1, 2, …) the
/// wait is `first · 2^(n-1)`, at most `max`, spread by ±`jitter` of itself and never above
/// `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The wait after the first failure (before jitter).
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Spread of each wait as a fraction of it: 0.2 is ±20 %, 0 waits exactly.
    pub jitter: f64,
}

impl Backoff {
    /// From `first` doubling to `max`, with the default jitter.
    pub const fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            jitter: DEFAULT_JITTER,
        }
    }

    /// The same back-off spread by `jitter` (a fraction, clamped to `[0, 1]`) instead.
    pub const fn with_jitter(self, jitter: f64) -> Backoff {
        Backoff { jitter, ..self }
    }

    /// The wait after `failures` failures in a row (1 for the first; less counts as 1), at a
    /// random place in the jitter band.
    pub fn delay(&self, failures: i64) -> Duration {
        self.delay_at(failures, random::unit())
    }

    /// The wait after `failures` failures in a row, with `unit` in `[0, 1]` choosing where in
    /// the jitter band it falls: 0 the shortest, 0.5 the middle (no jitter), 1 the longest.
    pub fn delay_at(&self, failures: i64, unit: f64) -> Duration {
        let doublings =
            u32::try_from(failures.saturating_sub(1).clamp(0, MAX_DOUBLINGS)).unwrap_or(31);
        let plain = self.first.saturating_mul(1u32 << doublings).min(self.max);
        // NaN from a careless caller counts as no jitter rather than poisoning the wait.
        let jitter = if self.jitter.is_nan() {
            0.0
        } else {
            self.jitter.clamp(0.0, 1.0)
        };
        let unit = if unit.is_nan() {
            0.5
        } else {
            unit.clamp(0.0, 1.0)
        };
        let factor = 1.0 + jitter * (2.0 * unit - 1.0);
        // `mul_f64` would panic on a product past `Duration::MAX`; the cap is the answer then.
        Duration::try_from_secs_f64(plain.as_secs_f64() * factor)
            .map_or(self.max, |wait| wait.min(self.max))
    }

    /// A fresh [`Streak`] over this back-off, for a loop that keeps its own count.
    pub const fn streak(self) -> Streak {
        Streak {
            backoff: self,
            failures: 0,
        }
    }
}

/// A count of failures in a row over a [`Backoff`], for a loop that retries in memory (a
/// watcher reconnecting): call [`Streak::next_delay`] after each failure and
/// [`Streak::reset`] after a success.
#[derive(Debug, Clone)]
pub struct Streak {
    backoff: Backoff,
    failures: i64,
}

impl Streak {
    /// Counts one more failure and returns the wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.backoff.delay(self.failures)
    }

    /// A success: the next failure waits `first` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> i64 {
        self.failures
    }
}

/// `duration` in whole seconds, rounded up: the store keeps times in seconds, and a retry
/// scheduled by it must not come early.
pub fn ceil_seconds(duration: Duration) -> i64 {
    let whole = duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0));
    i64::try_from(whole).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn doubles_from_first_to_the_cap() {
        let backoff = Backoff::new(30 * SECOND, 3600 * SECOND);
        let secs = |failures| backoff.delay_at(failures, 0.5).as_secs();
        assert_eq!(
            (1..=9).map(secs).collect::<Vec<_>>(),
            [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
        );
        // Nonsense counts neither panic nor overflow.
        assert_eq!(secs(0), 30);
        assert_eq!(secs(-5), 30);
        assert_eq!(secs(64), 3600);
        assert_eq!(secs(i64::MAX), 3600);
    }

    #[test]
    fn jitter_spreads_within_its_band_and_never_past_the_cap() {
        let backoff = Backoff::new(30 * SECOND, 3600 * SECOND);
        assert_eq!(backoff.delay_at(1, 0.0), 24 * SECOND);
        assert_eq!(backoff.delay_at(1, 1.0), 36 * SECOND);
        assert_eq!(
            backoff.delay_at(20, 1.0),
            3600 * SECOND,
            "capped after jitter"
        );
        assert_eq!(backoff.delay_at(20, 0.0), 2880 * SECOND);
        for _ in 0..200 {
            let d = backoff.delay(3).as_secs_f64();
            assert!((96.0..=144.0).contains(&d), "{d}");
        }
        let exact = backoff.with_jitter(0.0);
        assert_eq!(exact.delay(2), 60 * SECOND);
        let wild = backoff.with_jitter(f64::NAN);
        assert_eq!(wild.delay(1), 30 * SECOND);
        assert_eq!(backoff.with_jitter(7.0).delay_at(1, 0.0), Duration::ZERO);
    }

    #[test]
    fn zero_waits_stay_zero_and_huge_ones_stay_capped() {
        let none = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(none.delay(1), Duration::ZERO);
        assert_eq!(none.delay(100), Duration::ZERO);
        let huge = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(huge.delay_at(3, 1.0), Duration::MAX);
    }

    #[test]
    fn a_streak_grows_to_the_cap_and_resets() {
        let mut streak = Backoff::new(SECOND, 10 * SECOND).streak();
        let first = streak.next_delay();
        assert!((800..=1200).contains(&first.as_millis()), "{first:?}");
        for _ in 0..20 {
            assert!(streak.next_delay() <= 10 * SECOND);
        }
        assert_eq!(streak.failures(), 21);
        streak.reset();
        assert_eq!(streak.failures(), 0);
        assert!(streak.next_delay() <= Duration::from_millis(1200));
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(ceil_seconds(Duration::ZERO), 0);
        assert_eq!(ceil_seconds(Duration::from_millis(1)), 1);
        assert_eq!(ceil_seconds(30 * SECOND), 30);
        assert_eq!(ceil_seconds(Duration::from_millis(30_001)), 31);
        assert_eq!(ceil_seconds(Duration::MAX), i64::MAX);
    }
}
