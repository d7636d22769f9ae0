//! [`Pauses`]: per-key pauses of a queue whose work goes to several destinations (GitLab's two
//! mailboxes), so that an outage of one costs one attempt per back-off step rather than one per
//! item, and the others go on.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use postern_vocab::Backoff;
use tokio::time::Instant;

/// Which keys are paused, since how many failures in a row, and until when. The loop skips a
/// paused key and launches no more of its work in the current round; the work itself says when
/// its destination failed ([`Pauses::pause`]) or answered ([`Pauses::resume`]).
#[derive(Debug)]
pub struct Pauses<K> {
    backoff: Backoff,
    /// Per key: consecutive failures and the end of the current pause.
    paused: Mutex<HashMap<K, (i64, Instant)>>,
}

impl<K: Copy + Eq + Hash> Pauses<K> {
    /// No key paused; a key that fails is paused for `backoff` of its failures in a row.
    pub fn new(backoff: Backoff) -> Pauses<K> {
        Pauses {
            backoff,
            paused: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` is paused now.
    pub fn is_paused(&self, key: K) -> bool {
        let now = Instant::now();
        self.paused
            .lock()
            .ok()
            .and_then(|paused| paused.get(&key).copied())
            .is_some_and(|(_, until)| now < until)
    }

    /// `key`'s destination failed: pauses it for the next step of the back-off, and returns
    /// the failures in a row so far.
    pub fn pause(&self, key: K) -> i64 {
        let Ok(mut paused) = self.paused.lock() else {
            return 1;
        };
        let now = Instant::now();
        // The other items in flight when the destination went away fail with it: one outage,
        // not several failures in a row.
        if let Some((failures, until)) = paused.get(&key).copied()
            && now < until
        {
            return failures;
        }
        let failures = paused.get(&key).map_or(0, |(n, _)| *n) + 1;
        paused.insert(key, (failures, now + self.backoff.delay(failures)));
        failures
    }

    /// `key`'s destination answered: no pause, and the next failure starts the back-off over.
    pub fn resume(&self, key: K) {
        if let Ok(mut paused) = self.paused.lock() {
            paused.remove(&key);
        }
    }

    /// How long until the first paused key resumes; `None` when none is paused.
    pub fn next_resume(&self) -> Option<Duration> {
        let now = Instant::now();
        let paused = self.paused.lock().ok()?;
        paused
            .values()
            .map(|(_, until)| until.saturating_duration_since(now))
            .filter(|left| !left.is_zero())
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn a_pause_grows_with_failures_in_a_row_and_ends_on_its_own_or_on_resume() {
        let pauses = Pauses::new(Backoff::new(SECOND, 4 * SECOND).with_jitter(0.0));
        assert!(!pauses.is_paused("a") && pauses.next_resume().is_none());
        assert_eq!(pauses.pause("a"), 1);
        assert!(pauses.is_paused("a") && !pauses.is_paused("b"));
        assert_eq!(
            pauses.pause("a"),
            1,
            "a failure during the pause is the same outage"
        );
        assert_eq!(pauses.next_resume(), Some(SECOND));
        tokio::time::advance(SECOND).await;
        assert!(!pauses.is_paused("a") && pauses.next_resume().is_none());
        assert_eq!(pauses.pause("a"), 2);
        assert_eq!(pauses.next_resume(), Some(2 * SECOND));
        assert_eq!(pauses.pause("b"), 1);
        assert_eq!(
            pauses.next_resume(),
            Some(SECOND),
            "the first key to resume counts"
        );
        pauses.resume("a");
        assert!(!pauses.is_paused("a") && pauses.is_paused("b"));
        assert_eq!(pauses.pause("a"), 1, "a resume starts the back-off over");
    }
}
