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
//! No crate wraps `mallopt`, and an environment variable (`MALLOC_ARENA_MAX`) would have to be
//! set by whoever starts postern; hence this one `unsafe` call.

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
