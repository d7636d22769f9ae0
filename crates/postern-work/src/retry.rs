//! [`RetryPolicy`]: when an item of queued work that failed for now is tried again, and after
//! which failure it is given up. The one schedule of processing, delivery to GitLab and the
//! outbox; each chooses its own figures.

use std::time::Duration;

use postern_vocab::Backoff;
use postern_vocab::backoff::ceil_seconds;

/// The schedule of attempts for one item: the wait after each failure (doubling from a first
/// wait to a cap, spread by jitter so that work which failed together does not come back
/// together), and the failure after which the item is given up (quarantined, or failed for
/// good).
///
/// What counts as "the n-th failure" is the user's: failed attempts of the item (the outbox),
/// or failures in a row with the same reason (processing, a destination's refusals).
///
/// The default suits work that waits for a service of postern's own to come back (processing):
/// 30 s doubling to 30 min, ±20 %, given up at the 8th failure, about an hour after the first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The wait after failure number n (1 for the first).
    pub backoff: Backoff,
    /// The failure that is final: at this count the item is given up rather than scheduled
    /// again. [`RetryPolicy::NEVER`] (or any count no item reaches) keeps trying for ever.
    pub max_attempts: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::new(
            Backoff::new(Duration::from_secs(30), Duration::from_secs(30 * 60)),
            8,
        )
    }
}

impl RetryPolicy {
    /// A `max_attempts` that no count reaches: retried for ever.
    pub const NEVER: i64 = i64::MAX;

    /// `backoff` between attempts, given up at failure `max_attempts`.
    pub const fn new(backoff: Backoff, max_attempts: i64) -> RetryPolicy {
        RetryPolicy {
            backoff,
            max_attempts,
        }
    }

    /// Whether failure number `failures` (1 for the first) is the last one allowed.
    pub fn gives_up(&self, failures: i64) -> bool {
        failures >= self.max_attempts
    }

    /// The wait after failure number `failures`, at a random place in the jitter band.
    pub fn delay(&self, failures: i64) -> Duration {
        self.backoff.delay(failures)
    }

    /// [`RetryPolicy::delay`] in whole seconds, rounded up: the store keeps times in seconds,
    /// and a retry it schedules must not come early.
    pub fn delay_seconds(&self, failures: i64) -> i64 {
        ceil_seconds(self.delay(failures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_default_waits_30_s_doubling_to_half_an_hour_and_gives_up_at_the_eighth_failure() {
        let policy = RetryPolicy::default();
        let middle = |failures| policy.backoff.delay_at(failures, 0.5).as_secs();
        let waits: Vec<u64> = (1..=8).map(middle).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1800, 1800]);
        assert!(!policy.gives_up(7) && policy.gives_up(8) && policy.gives_up(9));
    }

    #[test]
    fn the_schedule_follows_the_backoff_and_rounds_up_to_whole_seconds() {
        let policy = RetryPolicy::new(Backoff::new(SECOND / 2, 4 * SECOND).with_jitter(0.0), 3);
        let waits: Vec<Duration> = (1..=5).map(|n| policy.delay(n)).collect();
        assert_eq!(
            waits,
            [SECOND / 2, SECOND, 2 * SECOND, 4 * SECOND, 4 * SECOND]
        );
        assert_eq!(
            policy.delay_seconds(1),
            1,
            "half a second is not early by rounding down"
        );
        assert_eq!(policy.delay_seconds(3), 2);
        assert!(!policy.gives_up(2) && policy.gives_up(3));
        let jittered = RetryPolicy::new(Backoff::new(10 * SECOND, 60 * SECOND), 3);
        for _ in 0..100 {
            assert!((8..=12).contains(&jittered.delay_seconds(1)));
        }
    }

    #[test]
    fn never_keeps_trying() {
        let policy = RetryPolicy::new(Backoff::new(SECOND, SECOND), RetryPolicy::NEVER);
        assert!(!policy.gives_up(1_000_000) && !policy.gives_up(i64::MAX - 1));
    }
}
