//! Waiting between reconnection attempts: capped exponential back-off with jitter, shared by
//! every watcher so they all behave alike when a server goes away.

use std::time::Duration;

/// Back-off state of one watcher: call [`Backoff::next_delay`] after each failure and
/// [`Backoff::reset`] after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    /// Starts at `first`, doubles per failure, never exceeds `cap`.
    pub fn new(first: Duration, cap: Duration) -> Backoff {
        Backoff {
            first,
            cap,
            failures: 0,
        }
    }

    /// The delay before the next attempt: `first · 2^failures`, capped, then ±20 % jitter so
    /// several instances that lost the same server do not come back in lockstep.
    pub fn next_delay(&mut self) -> Duration {
        let exponent = self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        let base = self
            .first
            .saturating_mul(1u32 << exponent)
            .min(self.cap)
            .as_secs_f64();
        let jitter = 0.8 + 0.4 * random_unit();
        Duration::from_secs_f64(base * jitter).min(self.cap)
    }

    /// A success: the next failure starts from `first` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

impl Default for Backoff {
    /// 1 s, doubling, at most 60 s.
    fn default() -> Backoff {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(60))
    }
}

/// A number in [0, 1) good enough for jitter (not for anything secret).
fn random_unit() -> f64 {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let first = backoff.next_delay();
        assert!(first >= Duration::from_millis(800) && first <= Duration::from_millis(1200));
        for _ in 0..20 {
            assert!(backoff.next_delay() <= Duration::from_secs(10));
        }
        assert_eq!(backoff.failures(), 21);
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(1200));
    }
}
