//! Link settings of the `postern` binary.
//!
//! Its relative relocations are packed as RELR (`-z pack-relative-relocs`): a position-
//! independent executable of this size carries about 37 000 of them, 880 KB as classic `RELA`
//! entries that the dynamic loader reads at every start, so they stayed resident for the life
//! of the process — 6 % of an idle `postern serve`. As RELR they take a few kilobytes, and the
//! executable keeps its address randomisation (a non-PIE build would have saved the same by
//! giving that up). Takes effect with binutils ≥ 2.38 and glibc ≥ 2.36 (Debian 12 and later): GNU
//! ld only emits RELR when the C library it links against supports it, and an older ld ignores
//! an unknown `-z` keyword with a warning. Other targets and linkers do not get the flag.
//!
//! In a release build on x86_64 Linux, where rustc links with its own lld, the functions an idle
//! server runs (`postern.order`, written by `bench/symbol-order.sh`) are placed together at the
//! front of `.text` (`--symbol-ordering-file`). The code touched by starting and by one message is
//! about 2.7 MB of the 13 MB of `.text`, but spread over all of it, and every touched page (with
//! the kernel's fault-around, 64 KB around it) stays resident; packed together it fills few
//! pages. Names the list has and the build lacks are skipped without a warning, so an old list
//! only costs locality. `POSTERN_NO_SYMBOL_ORDER=1`, or a linker chosen in `RUSTFLAGS`, leaves
//! the flag out (GNU ld does not know it).
//!
//! It also records what `postern --version` reports beyond the version: the git commit the
//! binary was built from (`POSTERN_GIT_COMMIT` overrides it, for builds from a tarball; without
//! git or a repository it is "unknown") and the Cargo features enabled in this build.

fn main() {
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    if linux_gnu && links_with_rust_lld() {
        order_symbols();
    }
    println!("cargo:rustc-env=POSTERN_GIT_COMMIT={}", git_commit());
    println!("cargo:rustc-env=POSTERN_FEATURES={}", features());
}

/// Whether the binary is linked by rustc's own lld: the default on x86_64 Linux (since Rust
/// 1.90), unless the build chooses its linker in `RUSTFLAGS`.
fn links_with_rust_lld() -> bool {
    println!("cargo:rerun-if-env-changed=POSTERN_NO_SYMBOL_ORDER");
    let rustflags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64")
        && std::env::var("PROFILE").as_deref() == Ok("release")
        && std::env::var_os("POSTERN_NO_SYMBOL_ORDER").is_none()
        && !rustflags.contains("linker")
        && !rustflags.contains("link-self-contained")
}

/// Places the functions of `postern.order` first, in its order.
fn order_symbols() {
    let Ok(directory) = std::env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let order = std::path::Path::new(&directory).join("postern.order");
    println!("cargo:rerun-if-changed={}", order.display());
    if order.is_file() {
        println!(
            "cargo:rustc-link-arg-bin=postern=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bin=postern=-Wl,--no-warn-symbol-ordering");
    }
}

/// The commit of the checkout. No `-dirty` mark: noticing every edit would mean rerunning this
/// script, and relinking postern, at every change of any file.
fn git_commit() -> String {
    println!("cargo:rerun-if-env-changed=POSTERN_GIT_COMMIT");
    if let Ok(commit) = std::env::var("POSTERN_GIT_COMMIT") {
        return commit;
    }
    // Rebuild when HEAD moves (a commit, a checkout): git writes both files then.
    for file in ["HEAD", "logs/HEAD"] {
        if let Some(path) = git(&["rev-parse", "--git-path", file]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned())
}

/// One line of git's output, or None when git is missing or fails.
fn git(args: &[&str]) -> Option<String> {
    let output = std::process::Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let line = text.trim();
    (!line.is_empty()).then(|| line.to_owned())
}

/// The enabled Cargo features, comma-separated, or "none".
fn features() -> String {
    let mut names: Vec<String> = std::env::vars()
        .filter_map(|(key, _)| {
            key.strip_prefix("CARGO_FEATURE_")
                .map(|name| name.to_ascii_lowercase().replace('_', "-"))
        })
        .collect();
    names.sort();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(",")
    }
}
