//! [`PatchLimits`]: every cap on what one mail's patches may make postern (and git) do, in one
//! place.
//!
//! A patch is small on the wire and can be huge once applied: a `GIT binary patch` hunk is
//! zlib-compressed, so 1.35 MB of mail declaring `literal 1073741824` made `git am` write 1 GiB
//! with 2 GB of memory. So the limits are of two kinds: what the patch text *declares*, read by
//! [`check_patches`](crate::check_patches) in one linear pass before git runs, and what the `git am`
//! process may do whatever the text says (operating-system resource limits), for what a
//! declaration does not reveal (a `delta` hunk's result size, a copy of a large file).

/// The limit on the total size of a mail's patches: GitLab's
/// `Gitlab::Git::Patches::Collection::MAX_PATCH_SIZE` (2 MiB). The sum of the patches' sizes
/// must be *below* it.
pub const MAX_PATCHES_SIZE: usize = 2 * 1024 * 1024;

/// Lines in all of a mail's patches together ([`PatchLimits::max_lines`]). 2 MiB of patches
/// with ordinary lines is 50 000 lines; short generated lines can make more.
pub const MAX_PATCH_LINES: usize = 200_000;

/// Files changed by all of a mail's patches together, counted by their `diff --git` headers
/// ([`PatchLimits::max_files`]). Each may be a copy or a rename of an existing file, which
/// costs a header line in the patch and a whole file on disk.
pub const MAX_PATCH_FILES: usize = 1_000;

/// The largest size one binary hunk may declare (`literal N` / `delta N`), in bytes
/// ([`PatchLimits::max_binary_bytes`]). git allocates the declared size before it inflates.
pub const MAX_BINARY_HUNK_BYTES: u64 = 32 * 1024 * 1024;

/// The largest sum of the sizes all binary hunks of a mail declare, in bytes
/// ([`PatchLimits::max_total_binary_bytes`]).
pub const MAX_BINARY_TOTAL_BYTES: u64 = 64 * 1024 * 1024;

/// The largest file `git am` may write (`RLIMIT_FSIZE`; [`PatchLimits::max_written_file_bytes`]).
/// Above the binary caps, so that a file a patch may legitimately produce fits, plus room for
/// an existing large file that a text patch changes.
pub const MAX_WRITTEN_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// The most heap `git am` may use (`RLIMIT_DATA`, which counts private writable memory but not
/// the read-only mappings of pack files; [`PatchLimits::max_memory_bytes`]). Applying a patch
/// holds the patch, each changed file and its result in memory at once.
pub const MAX_GIT_MEMORY_BYTES: u64 = 512 * 1024 * 1024;

/// The caps applied to the patches of one mail and to the `git am` that applies them.
///
/// [`PatchLimits::default`] holds the constants above; [`crate::Repositories::with_patch_limits`]
/// replaces them (tests lower them to reach git's own limits cheaply). A patch set over a cap is
/// refused with [`crate::PatchError::LimitExceeded`], which names the limit, before git runs;
/// a `git am` that hits an operating-system limit fails the same way, with the refs unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchLimits {
    /// The total encoded size must be below this ([`MAX_PATCHES_SIZE`]).
    pub max_encoded_bytes: usize,
    /// Most lines in all patches ([`MAX_PATCH_LINES`]).
    pub max_lines: usize,
    /// Most `diff --git` file headers in all patches ([`MAX_PATCH_FILES`]).
    pub max_files: usize,
    /// Largest declared size of one binary hunk ([`MAX_BINARY_HUNK_BYTES`]).
    pub max_binary_bytes: u64,
    /// Largest sum of declared binary hunk sizes ([`MAX_BINARY_TOTAL_BYTES`]).
    pub max_total_binary_bytes: u64,
    /// `RLIMIT_FSIZE` of `git am` ([`MAX_WRITTEN_FILE_BYTES`]).
    pub max_written_file_bytes: u64,
    /// `RLIMIT_DATA` of `git am` ([`MAX_GIT_MEMORY_BYTES`]).
    pub max_memory_bytes: u64,
}

impl Default for PatchLimits {
    fn default() -> Self {
        PatchLimits {
            max_encoded_bytes: MAX_PATCHES_SIZE,
            max_lines: MAX_PATCH_LINES,
            max_files: MAX_PATCH_FILES,
            max_binary_bytes: MAX_BINARY_HUNK_BYTES,
            max_total_binary_bytes: MAX_BINARY_TOTAL_BYTES,
            max_written_file_bytes: MAX_WRITTEN_FILE_BYTES,
            max_memory_bytes: MAX_GIT_MEMORY_BYTES,
        }
    }
}

/// Which cap a patch set (or the `git am` applying it) went over; carried by
/// [`crate::PatchError::LimitExceeded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PatchLimit {
    /// [`PatchLimits::max_lines`].
    Lines,
    /// [`PatchLimits::max_files`].
    Files,
    /// [`PatchLimits::max_binary_bytes`].
    BinaryHunk,
    /// [`PatchLimits::max_total_binary_bytes`].
    BinaryTotal,
    /// [`PatchLimits::max_written_file_bytes`], hit by `git am` itself.
    WrittenFile,
    /// [`PatchLimits::max_memory_bytes`], hit by `git am` itself.
    Memory,
}

impl PatchLimit {
    /// What the limit is about, for the sender: `"lines in the patches"`, ….
    pub fn describe(self) -> &'static str {
        match self {
            PatchLimit::Lines => "lines in the patches",
            PatchLimit::Files => "files changed by the patches",
            PatchLimit::BinaryHunk => "bytes declared by one binary patch",
            PatchLimit::BinaryTotal => "bytes declared by all binary patches together",
            PatchLimit::WrittenFile => "bytes in one file written while applying the patches",
            PatchLimit::Memory => "bytes of memory used while applying the patches",
        }
    }

    /// The value of this limit in `limits`.
    pub fn value(self, limits: &PatchLimits) -> u64 {
        let widen = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        match self {
            PatchLimit::Lines => widen(limits.max_lines),
            PatchLimit::Files => widen(limits.max_files),
            PatchLimit::BinaryHunk => limits.max_binary_bytes,
            PatchLimit::BinaryTotal => limits.max_total_binary_bytes,
            PatchLimit::WrittenFile => limits.max_written_file_bytes,
            PatchLimit::Memory => limits.max_memory_bytes,
        }
    }
}
