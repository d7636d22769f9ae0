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

fn main() {
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
