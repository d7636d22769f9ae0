#!/bin/sh
# Builds the Debian package of postern with dpkg-deb alone (no debhelper, no cargo-deb).
#
#   scripts/package-deb.sh [--binary PATH] [--version VERSION] [--out DIR]
#
# --binary: the postern executable to ship (default: target/release/postern, built with
#   `cargo build --release -p postern`). Its symbol table is split off into
#   OUT/postern_VERSION_ARCH.debug (linked with a GNU debuglink) and the shipped copy stripped.
#   It is the release build itself, not one with line tables: the names of its functions carry a
#   hash of the build's profile, and crates/postern/postern.order, which lays out the code an
#   idle server runs, is made from and matches the release build.
# --version: the package version (default: $POSTERN_DEB_VERSION, else the workspace version in
#   Cargo.toml); a higher one makes an upgrade package.
# --out: where the .deb goes (default: target/debian).
# POSTERN_MAINTAINER: the Maintainer field and changelog signature (default a placeholder at
#   example.org; lintian rejects localhost).
# --compression: dpkg-deb's -Z (default xz; the test uses none, xz of an unoptimised binary takes
#   a minute).
#
# Man pages and completions come from the binary itself (`postern manpages`, `postern
# completions`), the configuration from dist/postern.example.yml with safe defaults: no mailbox
# enabled, outgoing mail written to files, everything on loopback.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
binary=""
version=${POSTERN_DEB_VERSION:-}
out="$root/target/debian"
compression=xz
maintainer=${POSTERN_MAINTAINER:-postern maintainers <postern@example.org>}
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary=$2; shift 2 ;;
        --version) version=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --compression) compression=$2; shift 2 ;;
        *) echo "package-deb.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
for tool in dpkg-deb dpkg objcopy strip gzip; do
    command -v "$tool" >/dev/null || { echo "package-deb.sh: $tool is missing" >&2; exit 69; }
done
if [ -z "$version" ]; then
    version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$root/Cargo.toml")
fi
if [ -z "$binary" ]; then
    binary="${CARGO_TARGET_DIR:-$root/target}/release/postern"
    (cd "$root" && cargo build --locked --release -p postern)
fi
arch=$(dpkg --print-architecture)
mkdir -p "$out"
stage=$(mktemp -d "$out/stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
# Files in the package are root's, whatever the builder's umask.
umask 022

# The binary: its symbols to a companion file, the shipped copy stripped.
install -d "$stage/usr/bin"
debug="$out/postern_${version}_${arch}.debug"
objcopy --only-keep-debug "$binary" "$debug"
strip --strip-unneeded --remove-section=.comment --remove-section=.note -o "$stage/usr/bin/postern" "$binary"
objcopy --add-gnu-debuglink="$debug" "$stage/usr/bin/postern"
chmod 0755 "$stage/usr/bin/postern"
bin="$stage/usr/bin/postern"

# The configuration, a conffile: the example with nothing reaching out. The IMAP mailbox and the
# SMTP relay are commented out (mail comes from the local MTA over LMTP on loopback, with the
# default address incoming+%{key}@localhost; outgoing mail is written to files) until the
# administrator fills them in.
install -d "$stage/etc/postern"
awk '
    /^[a-z_]+:/ { section = $1 }
    section == "incoming_email:" || section == "smtp:" { print ($0 == "" ? "" : "# " $0); next }
    { print }
' "$root/dist/postern.example.yml" >"$stage/etc/postern/postern.yml"
chmod 0644 "$stage/etc/postern/postern.yml"
# GitLab companion mode's own file: read by the `git` user, nothing secret in it.
install -m 0644 "$root/dist/postern-gitlab.yml" "$stage/etc/postern/postern-gitlab.yml"

# The units, with the packaged binary's path.
install -d "$stage/lib/systemd/system"
for unit in postern.service postern-gitlab.service; do
    sed 's#/usr/local/bin/postern#/usr/bin/postern#g' "$root/dist/$unit" >"$stage/lib/systemd/system/$unit"
    chmod 0644 "$stage/lib/systemd/system/$unit"
done

# Man pages and completions, generated from the clap definitions.
pages=$(mktemp -d "$out/pages.XXXXXX")
"$bin" manpages "$pages"
install -d "$stage/usr/share/man/man1" "$stage/usr/share/man/man5"
for page in "$pages"/*.1; do gzip -9n <"$page" >"$stage/usr/share/man/man1/$(basename "$page").gz"; done
gzip -9n <"$pages/postern.yml.5" >"$stage/usr/share/man/man5/postern.yml.5.gz"
rm -rf "$pages"
install -d "$stage/usr/share/bash-completion/completions" \
    "$stage/usr/share/zsh/vendor-completions" "$stage/usr/share/fish/vendor_completions.d"
"$bin" completions bash >"$stage/usr/share/bash-completion/completions/postern"
"$bin" completions zsh >"$stage/usr/share/zsh/vendor-completions/_postern"
"$bin" completions fish >"$stage/usr/share/fish/vendor_completions.d/postern.fish"

# Documentation: README, changelog, copyright with the test data's notices.
doc="$stage/usr/share/doc/postern"
install -d "$doc"
gzip -9n <"$root/README.md" >"$doc/README.md.gz"
gzip -9n <"$root/ARCHITECTURE.md" >"$doc/ARCHITECTURE.md.gz"
install -m 0644 "$root/dist/postern.example.yml" "$doc/postern.example.yml"
{
    printf 'postern (%s) unstable; urgency=medium\n\n' "$version"
    printf '  * Release %s.\n\n' "$version"
    printf ' -- %s  %s\n' "$maintainer" \
        "$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}")"
} | gzip -9n >"$doc/changelog.gz"
{
    cat "$root/dist/debian/copyright.in"
    printf '\nFiles: testdata/*\nCopyright: 2011-present GitLab B.V.\n Discourse\n Stalwart Labs LLC\n 2026 postern contributors\nLicense: see-testdata-notice\n'
    printf '\nLicense: see-testdata-notice\n'
    sed -e 's/^$/./' -e 's/^/ /' "$root/testdata/NOTICE"
} >"$doc/copyright"
install -D -m 0644 "$root/dist/debian/lintian-overrides" "$stage/usr/share/lintian/overrides/postern"
chmod -R u+rwX,go+rX,go-w "$stage"

# Control files.
install -d "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    -e "s/@DEPENDS@/libc6 (>= 2.36), libgcc-s1/" -e "s|@MAINTAINER@|$maintainer|" \
    "$root/dist/debian/control.in" >"$stage/DEBIAN/control"
printf '%s\n' /etc/postern/postern.yml /etc/postern/postern-gitlab.yml >"$stage/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    install -m 0755 "$root/dist/debian/$script" "$stage/DEBIAN/$script"
done
(cd "$stage" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\0' | sort -z \
    | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

deb="$out/postern_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"$compression" --build "$stage" "$deb" >/dev/null
echo "$deb"
