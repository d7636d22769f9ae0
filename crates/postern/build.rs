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
//! It also records what `postern --version` reports beyond the version: the git commit the
//! binary was built from (`POSTERN_GIT_COMMIT` overrides it, for builds from a tarball; without
//! git or a repository it is "unknown") and the Cargo features enabled in this build.

fn main() {
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rustc-env=POSTERN_GIT_COMMIT={}", git_commit());
    println!("cargo:rustc-env=POSTERN_FEATURES={}", features());
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
