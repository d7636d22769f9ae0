#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine:
#
#   bash scripts/test.sh
#
# Installs what the tests need from Debian's packages (apt-get update first), then runs every
# test of the workspace. Test servers (PostgreSQL, …) are started privately by the tests
# themselves on loopback ports under a temporary directory, and stopped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: a real PostgreSQL server for the store tests, git for merge
# requests by email, Dovecot + Postfix (+ openssl for their certificates) for the outbox's SMTP
# tests (scripts/mailserver.sh, started by postern-testkit), Redis for GitLab companion mode's
# Sidekiq delivery (postern-testkit's redis.rs starts a private one per test), Chromium with
# its WebDriver for the web UI's browser test (postern-web tests/web/chromium.rs), Knot DNS as
# the private authoritative server of the sender-authentication tests (postern-testkit's dns.rs
# serves their DKIM keys, SPF and DMARC records; openssl makes their RSA keys), nginx as the
# HTTPS reverse proxy in front of `serve` (postern-testkit's nginx.rs, tests/cli/proxy.rs), and
# man-db and binutils for the Debian package test (man pages, objcopy and strip).
PACKAGES=(postgresql git ca-certificates dovecot-imapd dovecot-lmtpd postfix openssl redis-server chromium chromium-driver knot nginx man-db binutils)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[test] installing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -q
  # Keep Debian from starting the system PostgreSQL cluster: the tests run their own.
  echo exit 101 | $SUDO tee /usr/sbin/policy-rc.d >/dev/null && $SUDO chmod +x /usr/sbin/policy-rc.d
  # "No configuration" keeps the postfix package from writing a system main.cf.
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# A one-off build gains nothing from incremental caches, which would double the disk it needs.
export CARGO_INCREMENTAL=0
echo "[test] cargo test --workspace"
# Unit, integration and doc tests of every crate (benchmarks are run by `cargo bench`).
cargo test --workspace --locked
