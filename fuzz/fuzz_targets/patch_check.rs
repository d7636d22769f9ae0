//! The patch checker alone: `check_patches` reads every `.patch` attachment of a merge request
//! by email once, before git runs, and refuses what declares more than `PatchLimits` allows.
//! It must accept or refuse any bytes without panicking, in time linear in their size, and
//! refuse whatever declares a binary hunk over the cap. Fast (no git), so it covers the reader
//! far more often than `patch_reader`, which also runs `git am`.
#![no_main]

#[path = "common/patches.rs"]
mod patches;

use libfuzzer_sys::fuzz_target;
use postern_git::{PatchLimits, check_patches};

fuzz_target!(|data: &[u8]| {
    let patches = patches::patches_of(data);
    let _ = check_patches(&patches, &PatchLimits::default());
    // Tight limits reach every refusal with small inputs.
    let tight = PatchLimits {
        max_encoded_bytes: 4096,
        max_lines: 40,
        max_files: 3,
        max_binary_bytes: 64,
        max_total_binary_bytes: 96,
        ..PatchLimits::default()
    };
    let _ = check_patches(&patches, &tight);
});
