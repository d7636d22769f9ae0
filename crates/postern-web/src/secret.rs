//! Random tokens, their stored hashes, and password hashing.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use postern_vocab::random;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::WebError;

/// A fresh random token: 32 bytes as 64 lowercase hex digits.
pub(crate) fn new_token() -> Result<String, WebError> {
    random::hex(32).map_err(|e| WebError::Internal(e.to_string()))
}

/// What the store keeps of a token: hex SHA-256.
pub(crate) fn token_hash(token: &str) -> String {
    random::to_hex(&Sha256::digest(token.as_bytes()))
}

/// Compares two secrets in time independent of where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The argon2id PHC string of `password` with a fresh salt (what `user_passwords` stores).
pub fn hash_password(password: &str) -> Result<String, WebError> {
    let salt = random::bytes::<16>().map_err(|e| WebError::Internal(e.to_string()))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| WebError::Internal(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| WebError::Internal(format!("argon2: {e}")))
}

/// Whether `password` matches the stored PHC string. A malformed hash matches nothing.
pub(crate) fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// The hash unknown usernames are checked against: same algorithm and parameters as every
/// stored hash, so the answer costs as much as for a real account and reveals no names. Made
/// on first use, inside a hashing slot.
fn dummy_hash() -> Option<&'static str> {
    static DUMMY: std::sync::LazyLock<Option<String>> =
        std::sync::LazyLock::new(|| hash_password("not anyone's password").ok());
    DUMMY.as_deref()
}

/// Extra waiting places per CPU in front of the hashing slots. A sign-in waits at most this many
/// hash-times (about 25 ms each) for its turn; beyond that it is refused at once rather than
/// queued, so a burst costs neither memory (argon2 takes 19 MiB while it runs) nor latency for
/// everyone.
pub(crate) const HASHING_QUEUE_PER_CPU: usize = 8;

/// How many password hashes may run at once and how many may wait for a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingLimits {
    /// Hashes running at once (default: the CPU count).
    pub concurrent: usize,
    /// Sign-ins waiting for a slot at most (default: `HASHING_QUEUE_PER_CPU`, 8, per CPU); more
    /// are answered 503 at once.
    pub queue: usize,
}

impl Default for HashingLimits {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        HashingLimits {
            concurrent: cpus,
            queue: cpus.saturating_mul(HASHING_QUEUE_PER_CPU),
        }
    }
}

/// What the hashing gate has done since start (for `/metrics` and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignInStats {
    /// Password hashes and verifications run (dummy ones for unknown names included).
    pub password_checks: u64,
    /// The most that ran at the same time.
    pub peak_concurrent_checks: usize,
    /// Sign-ins refused because every slot and waiting place was taken.
    pub refused_busy: u64,
}

#[derive(Debug)]
struct GateInner {
    /// `None` only if the worker threads could not be started; then the blocking pool serves.
    workers: Option<std::sync::mpsc::Sender<Job>>,
    slots: Arc<Semaphore>,
    capacity: usize,
    admitted: AtomicUsize,
    running: AtomicUsize,
    peak: AtomicUsize,
    checks: AtomicU64,
    refused: AtomicU64,
}

type Job = Box<dyn FnOnce() + Send>;

/// One long-lived thread per hashing slot. Argon2 allocates its 19 MiB on the thread that runs
/// it and the allocator keeps it per thread for reuse; on tokio's blocking pool every hash may
/// land on a different one of up to 512 threads, and 200 sign-ins through two slots left
/// 450 MB resident. A fixed set of threads bounds that to one block of memory per slot. The
/// threads end when the gate (the only sender) is dropped.
fn start_workers(count: usize) -> Option<std::sync::mpsc::Sender<Job>> {
    let (sender, receiver) = std::sync::mpsc::channel::<Job>();
    let receiver = Arc::new(std::sync::Mutex::new(receiver));
    for index in 0..count {
        let receiver = receiver.clone();
        let started = std::thread::Builder::new()
            .name(format!("postern-argon2-{index}"))
            .spawn(move || {
                loop {
                    let job = receiver
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .recv();
                    let Ok(job) = job else { break };
                    // A panicking hash answers nothing (its caller sees an error); the thread
                    // lives on for the next one.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            });
        if let Err(error) = started {
            tracing::warn!(error = %error, "password hashing threads: using the blocking pool");
            return None;
        }
    }
    Some(sender)
}

/// Argon2 behind a semaphore sized to the CPU count, with a bounded queue in front.
#[derive(Debug, Clone)]
pub(crate) struct HashingGate {
    inner: Arc<GateInner>,
}

/// A place in the queue (or a slot); given back when dropped.
pub(crate) struct Admission {
    inner: Arc<GateInner>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.inner.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Held by the blocking task for as long as the hash runs, even if the request is gone.
struct Running {
    inner: Arc<GateInner>,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.inner.running.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashingGate {
    pub(crate) fn new(limits: HashingLimits) -> HashingGate {
        let concurrent = limits.concurrent.max(1);
        HashingGate {
            inner: Arc::new(GateInner {
                workers: start_workers(concurrent),
                slots: Arc::new(Semaphore::new(concurrent)),
                capacity: concurrent.saturating_add(limits.queue),
                admitted: AtomicUsize::new(0),
                running: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                checks: AtomicU64::new(0),
                refused: AtomicU64::new(0),
            }),
        }
    }

    /// A place in line, or `None` (and counted as refused) when slots and queue are full.
    pub(crate) fn admit(&self) -> Option<Admission> {
        let inner = &self.inner;
        let taken = inner
            .admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < inner.capacity).then_some(n + 1)
            })
            .is_ok();
        if taken {
            Some(Admission {
                inner: inner.clone(),
            })
        } else {
            inner.refused.fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    /// Hashes a new password in a slot (setting or changing a password); 503 when saturated.
    pub(crate) async fn hash(&self, password: String) -> Result<String, WebError> {
        let admission = self
            .admit()
            .ok_or_else(|| WebError::Unavailable("password hashing is busy".into()))?;
        admission.hash(password).await
    }

    pub(crate) fn stats(&self) -> SignInStats {
        SignInStats {
            password_checks: self.inner.checks.load(Ordering::Relaxed),
            peak_concurrent_checks: self.inner.peak.load(Ordering::Relaxed),
            refused_busy: self.inner.refused.load(Ordering::Relaxed),
        }
    }
}

impl Admission {
    /// Waits for a slot, then runs `work` on the blocking pool while holding it.
    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, WebError> {
        let slot = self
            .inner
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| WebError::Internal(format!("hashing slots: {e}")))?;
        let now_running = self.inner.running.fetch_add(1, Ordering::AcqRel) + 1;
        self.inner.peak.fetch_max(now_running, Ordering::AcqRel);
        self.inner.checks.fetch_add(1, Ordering::Relaxed);
        let running = Running {
            inner: self.inner.clone(),
            _slot: slot,
        };
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _running = running;
            let _ = done.send(work());
        });
        match &self.inner.workers {
            Some(workers) => workers
                .send(job)
                .map_err(|_| WebError::Internal("hashing workers stopped".into()))?,
            None => drop(tokio::task::spawn_blocking(job)),
        }
        result
            .await
            .map_err(|_| WebError::Internal("hashing task ended without an answer".into()))
    }

    /// The argon2id PHC string of `password` (see [`hash_password`]).
    pub(crate) async fn hash(self, password: String) -> Result<String, WebError> {
        self.run(move || hash_password(&password)).await?
    }

    /// Whether `password` matches `stored`; with `None` (no such account, or no password)
    /// checks it against a dummy hash for the same cost and answers `false`.
    pub(crate) async fn verify(self, password: String, stored: Option<String>) -> bool {
        self.run(move || match stored {
            Some(stored) => verify_password(&password, &stored),
            None => {
                if let Some(dummy) = dummy_hash() {
                    verify_password(&password, dummy);
                }
                false
            }
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip_and_refusals() {
        let hash = hash_password("correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horsf", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn tokens_are_random_hex_and_hash_differently() {
        let a = new_token().expect("token");
        let b = new_token().expect("token");
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_ne!(token_hash(&a), a);
        assert!(same_secret(&a, &a.clone()));
        assert!(!same_secret(&a, &b));
        assert!(!same_secret(&a, ""));
    }
}
