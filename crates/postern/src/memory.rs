//! Allocator settings for a long-running server with a small, steady footprint.
//!
//! glibc's malloc gives each thread that allocates concurrently an arena of its own, up to
//! eight per core, and keeps what was freed in each one. postern's threads (the runtime's
//! workers, one per SQLite connection, the blocking pool) all pass large message buffers
//! around, so after a drain of 1 MB messages each arena held several megabytes it no longer
//! used: the peak RSS was half arena slack. Two arenas, and buffers from 256 KiB up served by
//! `mmap` (returned to the system as soon as they are freed, instead of glibc raising that
//! threshold to the largest buffer seen), keep the resident size close to what is in use.
//! Measured with `bench/intake.sh`: peak RSS of the 1 MB drain 54 → 37 MB.
//!
//! Even so, messages leave free memory behind inside the heaps: free chunks between ones still
//! in use, which glibc returns to the system only when they reach the top of a heap. Once `serve`
//! has been quiet for [`QUIET`] after finishing messages, [`trim_when_idle`] asks glibc to give
//! back every free page (`malloc_trim`). After a single small message that is little (about
//! 0.1 MB of the 0.3 MB of heap it added, measured with `bench/idle-rss.sh`): most of what an
//! idle server gains from its first message is the processing code it paged in, which only a
//! smaller binary reduces.
//!
//! No crate wraps `mallopt` or `malloc_trim`, and an environment variable (`MALLOC_ARENA_MAX`)
//! would have to be set by whoever starts postern; hence these two `unsafe` calls.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// How long `serve` must have finished no message before the freed memory goes back.
pub const QUIET: Duration = Duration::from_secs(2);

/// Messages finished since start: the trimmer waits until this stops moving.
static FINISHED: AtomicU64 = AtomicU64::new(0);
/// Wakes the trimmer after work; between messages it sleeps without a timer.
static WORKED: Notify = Notify::const_new();

/// Called when a message is finished (stored, processed or refused).
pub fn message_finished() {
    FINISHED.fetch_add(1, Ordering::Relaxed);
    WORKED.notify_one();
}

/// Until `shutdown` stops it: after each run of work, once no message was finished for [`QUIET`], the
/// memory freed meanwhile goes back to the system, and `store`'s idle connections give back
/// their page caches. An idle server wakes for nothing.
pub async fn trim_when_idle(store: postern_store::Store, shutdown: postern_vocab::Shutdown) {
    loop {
        tokio::select! {
            () = shutdown.stopped() => return,
            () = WORKED.notified() => {}
        }
        let mut seen = FINISHED.load(Ordering::Relaxed);
        loop {
            if shutdown.sleep(QUIET).await {
                return;
            }
            let now = FINISHED.load(Ordering::Relaxed);
            if now == seen {
                break;
            }
            seen = now;
        }
        store.release_idle_memory().await;
        release_free_memory();
    }
}

/// Applies the settings. Call first in `main`, before any thread exists.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn tune_allocator() {
    const ARENAS: libc::c_int = 2;
    const MMAP_FROM_BYTES: libc::c_int = 256 * 1024;
    // SAFETY: `mallopt` only changes allocator parameters and is safe to call at any time; it
    // is called before other threads start, and a refused setting (return value 0) simply
    // leaves glibc's default in place.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_FROM_BYTES);
    }
}

/// Other allocators manage their own memory.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_allocator() {}

/// Returns the free pages of every heap to the system: `malloc_trim(0)` walks the arenas and
/// unmaps (`MADV_DONTNEED`) whole free pages anywhere in them, not only at the top. It takes each
/// arena's lock in turn for a moment: cheap once, after work, never in a loop.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_free_memory() {
    // SAFETY: `malloc_trim` is thread-safe (it locks each arena) and only releases pages that
    // hold no allocation; its return value (whether anything was released) is not needed.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators return memory their own way.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}
