//! The patch checker alone: `check_patches` reads every `.patch` attachment of a merge request
//! by email once, before git runs, and refuses what declares more than `PatchLimits` allows.
//! It must accept or refuse any bytes without panicking, in time linear in their size, and
//! refuse whatever declares a binary hunk over the cap. Fast (no git), so it covers the reader
//! far more often than `patch_reader`, which also runs `git am`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_git::{Patch, PatchLimits, check_patches};

fuzz_target!(|data: &[u8]| {
    // Two patches when the input holds a separator line, as a mail with two attachments.
    let patches: Vec<Patch> = match data.windows(4).position(|w| w == b"\n--\n") {
        Some(at) => vec![
            Patch {
                filename: "0001.patch".to_owned(),
                content: data[..at + 1].to_vec(),
            },
            Patch {
                filename: "0002.patch".to_owned(),
                content: data[at + 4..].to_vec(),
            },
        ],
        None => vec![Patch {
            filename: "0001.patch".to_owned(),
            content: data.to_vec(),
        }],
    };
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
