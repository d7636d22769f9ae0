//! [`Worker`]: the loop itself.

use std::sync::Arc;
use std::time::Duration;

use postern_vocab::{Backoff, Shutdown};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::{Queue, Ran, StoreFailure, Tally};

/// How a [`Worker`] paces its queue.
#[derive(Debug, Clone)]
pub struct Pace {
    /// Items listed per key and round.
    pub page: i64,
    /// Items per job: 1, or a chunk claimed and recorded together.
    pub chunk: usize,
    /// Jobs running at once (at least 1).
    pub jobs: usize,
    /// The total weight ([`Queue::weight`]) of the jobs running at once, if bounded. A job
    /// heavier than the budget runs alone.
    pub budget: Option<u32>,
    /// The wait after a round with nothing more to do, unless woken first.
    pub poll: Duration,
    /// The waits after rounds in a row that failed in the store.
    pub store_backoff: Backoff,
    /// When the next round starts at once.
    pub again: Again,
}

/// When a round is followed by the next at once rather than by a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Again {
    /// After any round that recorded something: the page is read again until it is empty.
    AfterProgress,
    /// After a round that ran a full page (of the sum over the keys).
    WhenFull,
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round<T> {
    /// Items in the jobs started.
    pub looked_at: usize,
    /// Of those, items whose job ended [`Ran::Unrecorded`].
    pub unrecorded: usize,
    /// What the jobs reported.
    pub tally: T,
    /// Whether a stop ended the round early.
    pub stopped: bool,
}

/// Drives one [`Queue`]: rounds, waits, back-off and shutdown.
#[derive(Debug)]
pub struct Worker<Q> {
    queue: Arc<Q>,
    pace: Pace,
}

/// A job's result as it comes back from its task: how many items, and how it ended.
type Joined<Q> = (usize, Result<Ran<<Q as Queue>::Tally>, <Q as Queue>::Error>);

impl<Q: Queue> Worker<Q> {
    /// A worker over `queue`.
    pub fn new(queue: Arc<Q>, pace: Pace) -> Worker<Q> {
        Worker { queue, pace }
    }

    /// The queue worked off.
    pub fn queue(&self) -> &Arc<Q> {
        &self.queue
    }

    /// Runs rounds until `shutdown` stops it; the jobs in hand are finished first. `wake`,
    /// if given, ends a wait early (a wake-up during a round is kept for after it). Store
    /// failures back the queue off; they never end the loop.
    pub async fn run(&self, shutdown: Shutdown, wake: Option<&Notify>) {
        let mut store_failures = self.pace.store_backoff.streak();
        loop {
            if shutdown.is_stopping() {
                return;
            }
            let pause = match self.round(&shutdown).await {
                Ok(round) if round.stopped => return,
                Ok(round) if round.looked_at > 0 && round.unrecorded == round.looked_at => {
                    let pause = store_failures.next_delay();
                    let failure = StoreFailure::EveryJob {
                        unrecorded: round.unrecorded,
                    };
                    self.queue.store_failed(failure, pause);
                    pause
                }
                Ok(round) => {
                    store_failures.reset();
                    if self.again(&round) {
                        continue;
                    }
                    self.idle_pause()
                }
                Err(error) => {
                    let pause = store_failures.next_delay();
                    self.queue.store_failed(StoreFailure::Round(&error), pause);
                    pause
                }
            };
            let woken = async {
                match wake {
                    Some(wake) => wake.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = shutdown.stopped() => return,
                () = woken => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One round over every key that is not paused. `stop` is looked at between jobs: once it
    /// is stopping, the jobs in flight are finished and the round ends with `stopped`.
    pub async fn round(&self, stop: &Shutdown) -> Result<Round<Q::Tally>, Q::Error> {
        let mut round = Round::<Q::Tally>::default();
        let budget = self.pace.budget.map(|units| {
            (
                units.max(1),
                Arc::new(Semaphore::new(units.max(1) as usize)),
            )
        });
        let jobs = self.pace.jobs.max(1);
        let chunk = self.pace.chunk.max(1);
        let mut tasks = JoinSet::new();
        let mut failure = None;
        for &key in self.queue.keys() {
            if stop.is_stopping() {
                round.stopped = true;
                break;
            }
            if self.is_paused(key) {
                continue;
            }
            let due = match self.queue.due(key, self.pace.page).await {
                Ok(due) => due,
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            };
            let mut due = due.into_iter().peekable();
            while due.peek().is_some() {
                while tasks.len() >= jobs {
                    let Some(joined) = tasks.join_next().await else {
                        break;
                    };
                    take::<Q>(joined, &mut round, &mut failure);
                }
                if failure.is_some() {
                    break;
                }
                if stop.is_stopping() {
                    round.stopped = true;
                    break;
                }
                if self.is_paused(key) {
                    break;
                }
                let job: Vec<Q::Item> = due.by_ref().take(chunk).collect();
                let permit = match &budget {
                    Some((units, semaphore)) => {
                        let weight = job
                            .iter()
                            .fold(0u32, |sum, item| {
                                sum.saturating_add(self.queue.weight(item))
                            })
                            .clamp(1, *units);
                        // Never closed: the semaphore is this round's own.
                        semaphore.clone().acquire_many_owned(weight).await.ok()
                    }
                    None => None,
                };
                round.looked_at += job.len();
                tasks.spawn(run_job(self.queue.clone(), key, job, permit));
            }
            // A key's jobs are finished before the next key is listed, so that keys are served
            // one after the other, as listed.
            while let Some(joined) = tasks.join_next().await {
                take::<Q>(joined, &mut round, &mut failure);
            }
            if failure.is_some() || round.stopped {
                break;
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(round),
        }
    }

    fn is_paused(&self, key: Q::Key) -> bool {
        self.queue.pauses().is_some_and(|p| p.is_paused(key))
    }

    fn again(&self, round: &Round<Q::Tally>) -> bool {
        match self.pace.again {
            Again::AfterProgress => round.looked_at > 0,
            Again::WhenFull => {
                round.looked_at > 0
                    && i64::try_from(round.looked_at).is_ok_and(|n| n >= self.pace.page)
            }
        }
    }

    /// The poll interval, or less if a paused key resumes sooner.
    fn idle_pause(&self) -> Duration {
        let resume = self.queue.pauses().and_then(|p| p.next_resume());
        resume.map_or(self.pace.poll, |left| left.min(self.pace.poll))
    }
}

async fn run_job<Q: Queue>(
    queue: Arc<Q>,
    key: Q::Key,
    job: Vec<Q::Item>,
    permit: Option<OwnedSemaphorePermit>,
) -> Joined<Q> {
    let items = job.len();
    let ran = queue.run(key, job).await;
    drop(permit);
    (items, ran)
}

/// Adds a finished job to the round. A job whose task panicked counts as looked at and nothing
/// more: its items stay due, and the round goes on.
fn take<Q: Queue>(
    joined: Result<Joined<Q>, tokio::task::JoinError>,
    round: &mut Round<Q::Tally>,
    failure: &mut Option<Q::Error>,
) {
    match joined {
        Ok((_, Ok(Ran::Done(tally)))) => round.tally.add(tally),
        Ok((items, Ok(Ran::Unrecorded))) => round.unrecorded += items,
        Ok((_, Err(error))) => {
            if failure.is_none() {
                *failure = Some(error);
            }
        }
        Err(_) => {}
    }
}
