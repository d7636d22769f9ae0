//! One stop signal for every loop of a process: the listener and its sessions, the mailbox
//! watchers, the processing queue, the outbox sender, the GitLab deliverer, the web server.
//!
//! A loop holds a [`Shutdown`] and looks at it where stopping is safe (between messages,
//! between commands); whoever started the loops keeps the [`Stopper`]. Once stopped it stays
//! stopped, and a `Stopper` that is dropped counts as a stop, so a loop never outlives the
//! one who could have stopped it.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// The side that stops: [`Stopper::stop`], or dropping it.
#[derive(Debug)]
pub struct Stopper(watch::Sender<bool>);

impl Stopper {
    /// Asks every [`Shutdown`] of this pair to stop.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// The side a loop watches. Cheap to clone; every clone sees the same stop.
#[derive(Debug, Clone)]
pub struct Shutdown(Option<watch::Receiver<bool>>);

impl Shutdown {
    /// A new pair: the [`Stopper`] to keep, the [`Shutdown`] to hand to loops.
    pub fn new() -> (Stopper, Shutdown) {
        let (sender, receiver) = watch::channel(false);
        (Stopper(sender), Shutdown(Some(receiver)))
    }

    /// A signal that never stops (a loop whose end is its input's end: a stream, a test).
    pub fn never() -> Shutdown {
        Shutdown(None)
    }

    /// Whether a stop was asked for (or the [`Stopper`] is gone).
    pub fn is_stopping(&self) -> bool {
        match &self.0 {
            Some(receiver) => *receiver.borrow() || receiver.has_changed().is_err(),
            None => false,
        }
    }

    /// Returns once a stop is asked for (or the [`Stopper`] is gone).
    pub async fn stopped(&self) {
        match &self.0 {
            Some(receiver) => {
                // An error means the stopper is gone: a stop, too.
                let _ = receiver.clone().wait_for(|stop| *stop).await;
            }
            None => std::future::pending().await,
        }
    }

    /// [`Shutdown::stopped`] as a future that owns its signal (for APIs that take a
    /// `'static` future, such as a server's graceful shutdown).
    pub async fn into_stopped(self) {
        self.stopped().await;
    }

    /// Sleeps `delay`; `true` if a stop came first.
    pub async fn sleep(&self, delay: Duration) -> bool {
        tokio::select! {
            () = self.stopped() => true,
            () = tokio::time::sleep(delay) => false,
        }
    }

    /// `future`'s output, or `None` if a stop comes first (the future is then dropped; after
    /// a stop it is not started at all).
    pub async fn until<T>(&self, future: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            () = self.stopped() => None,
            output = future => Some(output),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stop_reaches_every_clone_and_stays() {
        let (stopper, shutdown) = Shutdown::new();
        let other = shutdown.clone();
        assert!(!shutdown.is_stopping());
        stopper.stop();
        assert!(shutdown.is_stopping() && other.is_stopping());
        other.stopped().await;
        assert!(shutdown.sleep(Duration::from_secs(60)).await);
        assert_eq!(shutdown.until(std::future::pending::<()>()).await, None);
    }

    #[tokio::test]
    async fn a_dropped_stopper_is_a_stop_and_never_is_not() {
        let (stopper, shutdown) = Shutdown::new();
        drop(stopper);
        assert!(shutdown.is_stopping());
        shutdown.stopped().await;
        let never = Shutdown::never();
        assert!(!never.is_stopping());
        assert!(!never.sleep(Duration::from_millis(1)).await);
        assert_eq!(never.until(async { 7 }).await, Some(7));
    }
}
