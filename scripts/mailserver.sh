#!/usr/bin/env bash
# Private, loopback-only mail server for tests and benchmarks.
#
# Copied from the shared harness (harness/mailserver.sh) and extended for postern's outbox
# tests: SMTP AUTH through Dovecot, STARTTLS and implicit TLS on Postfix, one recipient that
# Postfix refuses with a 5xx, and INSTALL=0 to fail instead of installing. Driven from Rust by
# postern-testkit's `mailserver` module, which picks free ports and a temporary BASE.
#
#   mailserver.sh start  [BASE]   install (if missing) and start Dovecot (+ Postfix)
#   mailserver.sh stop   [BASE]   stop everything started from BASE
#   mailserver.sh status [BASE]   show what is running
#   mailserver.sh env    [BASE]   print shell-sourceable connection settings
#   mailserver.sh reset  [BASE]   stop, then delete BASE entirely
#
# BASE defaults to $MAILSERVER_BASE, else /tmp/mailserver. Nothing under /etc is
# read or written by the running servers: every config, socket, log, queue and
# mailbox lives under BASE. The only system-level effect is `apt-get install`
# of missing packages (service auto-start is suppressed by policy-rc.d in
# containers; we never start the system units).
#
# Ports (env overrides):                         defaults
#   IMAP_PORT   plain IMAP, LOGIN/PLAIN allowed    1143
#   IMAPS_PORT  IMAP over TLS, self-signed cert    1993   (IMAPS=0 disables)
#   LMTP_PORT   Dovecot LMTP (inject mail)         1024
#   SMTP_PORT   Postfix smtpd -> Dovecot LMTP      10025   (POSTFIX=0 disables)
#               STARTTLS offered (same self-signed cert), AUTH PLAIN/LOGIN via Dovecot
#   SMTPS_PORT  Postfix smtpd, implicit TLS        10465   (SMTPS=0 disables)
# TLS: BASE/ssl/cert.pem (127.0.0.1, localhost) is signed by a private CA, BASE/ssl/ca.pem.
# Refused recipient: $REJECT_RCPT (default rejected@example.test) gets
#   "550 5.1.1 ..." at RCPT TO, for tests of permanent failures.
# INSTALL=0: missing packages are an error (exit 3) instead of being installed.
# DOVECOT_EXTRA: lines appended to dovecot.conf (e.g. an imap_capability without IDLE, or an
#   extra passdb), for tests of servers that differ from this default one.
# Accounts (passwd-file, PLAIN scheme):
#   incoming / $MAIL_PASSWORD (default "incoming-secret")
#   servicedesk / same password
# Addresses: <user>+<anything>@example.test is delivered to <user>'s INBOX
# (recipient_delimiter "+", lmtp_save_to_detail_mailbox = no).
# Storage: Maildir under BASE/mail/<user>/Maildir, owned by the system user
# "mail" (uid 8) because Dovecot refuses uid 0 for mail access.
#
# Idempotent: `start` on a running instance only re-checks and prints ports;
# `stop` on a stopped instance is a no-op.
set -euo pipefail

CMD="${1:-start}"
BASE="${2:-${MAILSERVER_BASE:-/tmp/mailserver}}"
IMAP_PORT="${IMAP_PORT:-1143}"
IMAPS_PORT="${IMAPS_PORT:-1993}"
LMTP_PORT="${LMTP_PORT:-1024}"
SMTP_PORT="${SMTP_PORT:-10025}"
SMTPS_PORT="${SMTPS_PORT:-10465}"
SMTPS="${SMTPS:-1}"
INSTALL="${INSTALL:-1}"
REJECT_RCPT="${REJECT_RCPT:-rejected@example.test}"
IMAPS="${IMAPS:-1}"
POSTFIX="${POSTFIX:-1}"
MAIL_PASSWORD="${MAIL_PASSWORD:-incoming-secret}"
MAIL_USER_NAME="${MAIL_USER_NAME:-mail}"   # system user owning the Maildirs
DOMAIN="example.test"

log() { echo "[mailserver] $*" >&2; }

need_pkgs() {
  local missing=()
  command -v dovecot >/dev/null 2>&1 || missing+=(dovecot-imapd dovecot-lmtpd)
  [ -x /usr/lib/dovecot/imap ] || missing+=(dovecot-imapd)
  [ -x /usr/lib/dovecot/lmtp ] || missing+=(dovecot-lmtpd)
  if [ "$POSTFIX" = 1 ] && ! command -v postfix >/dev/null 2>&1; then
    missing+=(postfix)
  fi
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  if [ ${#missing[@]} -gt 0 ] && [ "$INSTALL" != 1 ]; then
    log "missing packages: ${missing[*]} (apt-get install -y ${missing[*]}, or bash scripts/test.sh)"
    exit 3
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    # "No configuration" keeps the package from writing a system main.cf.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections || true
    if [ ! -e /var/lib/apt/lists/lock ] || [ -z "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v lock | head -1)" ]; then
      apt-get update -q >/dev/null
    fi
    # A stale package list gives 404s: refresh it once and try again.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
      apt-get update -q >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    }
  fi
}

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
dovecot_pid() { cat "$BASE/run/dovecot/master.pid" 2>/dev/null || true; }
postfix_pid() { head -c 64 "$BASE/postfix/spool/pid/master.pid" 2>/dev/null | tr -dc 0-9 || true; }

wait_port() { # host port seconds
  local i
  for i in $(seq 1 $(( $3 * 10 ))); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

write_dovecot_conf() {
  local uid gid
  uid=$(id -u "$MAIL_USER_NAME"); gid=$(id -g "$MAIL_USER_NAME")
  mkdir -p "$BASE"/{run,state,log,mail,ssl}
  chmod 755 "$BASE" "$BASE/run"
  chown "$uid:$gid" "$BASE/mail"
  if [ ! -s "$BASE/ssl/key.pem" ]; then
    # A private CA (ssl/ca.pem, what clients trust) and a server certificate it signs. A single
    # self-signed certificate is marked CA:TRUE by openssl, and rustls/webpki refuse a CA
    # certificate as a server's ("CaUsedAsEndEntity"). EC keys: generated instantly.
    local ssl="$BASE/ssl"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=mailserver.sh test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$ssl/ca.key" -out "$ssl/ca.pem" >/dev/null 2>&1
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/CN=127.0.0.1" -keyout "$ssl/key.pem" -out "$ssl/cert.csr" >/dev/null 2>&1
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" > "$ssl/cert.ext"
    openssl x509 -req -in "$ssl/cert.csr" -CA "$ssl/ca.pem" -CAkey "$ssl/ca.key" \
      -CAcreateserial -days 3650 -extfile "$ssl/cert.ext" -out "$ssl/cert.pem" >/dev/null 2>&1
    chmod 600 "$ssl/key.pem" "$ssl/ca.key"
  fi
  # passwd-file: user:password:uid:gid:gecos:home:shell:extra
  {
    echo "incoming:{PLAIN}${MAIL_PASSWORD}::::::"
    echo "servicedesk:{PLAIN}${MAIL_PASSWORD}::::::"
  } > "$BASE/passwd"
  chmod 640 "$BASE/passwd"; chgrp dovecot "$BASE/passwd" 2>/dev/null || true

  local ssl_block="ssl = no"
  local imaps_listener=""
  if [ "$IMAPS" = 1 ]; then
    ssl_block="ssl = yes
ssl_cert = <$BASE/ssl/cert.pem
ssl_key = <$BASE/ssl/key.pem"
    imaps_listener="  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS_PORT
    ssl = yes
  }"
  fi
  cat > "$BASE/dovecot.conf" <<EOF
# generated by mailserver.sh — private instance, loopback only
instance_name = mailbench-$(echo -n "$BASE" | md5sum | cut -c1-8)
base_dir = $BASE/run/dovecot
state_dir = $BASE/state
log_path = $BASE/log/dovecot.log
info_log_path = $BASE/log/dovecot.log
debug_log_path = $BASE/log/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
shutdown_clients = yes

disable_plaintext_auth = no
auth_mechanisms = plain login
$ssl_block

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $BASE/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%n $BASE/passwd
  default_fields = uid=$uid gid=$gid home=$BASE/mail/%n
}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
mail_max_userip_connections = 200
mailbox_idle_check_interval = 1 secs
imap_idle_notify_interval = 2 mins

namespace inbox {
  inbox = yes
  separator = /
}

recipient_delimiter = +
lmtp_save_to_detail_mailbox = no
postmaster_address = postmaster@$DOMAIN
hostname = mail.$DOMAIN

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
$imaps_listener
  process_min_avail = 1
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $LMTP_PORT
  }
  unix_listener lmtp {
    mode = 0666
  }
}
# SASL for Postfix's smtpd (smtpd_sasl_type = dovecot): same accounts as IMAP.
service auth {
  unix_listener auth-postfix {
    mode = 0666
  }
}
service stats {
  unix_listener stats-reader {
    mode = 0666
  }
  unix_listener stats-writer {
    mode = 0666
  }
}
${DOVECOT_EXTRA:-}
EOF
}

write_postfix_conf() {
  local d="$BASE/postfix"
  # config in etc/, queue in spool/: postfix-script's ownership check walks the
  # whole config dir, so the queue must not live inside it.
  mkdir -p "$d/etc" "$d/spool" "$d/data"
  chown root:root "$d/etc" "$d/spool"; chown postfix:postfix "$d/data" 2>/dev/null || true
  cat > "$d/etc/main.cf" <<EOF
# generated by mailserver.sh — private instance, loopback only
compatibility_level = 3.6
queue_directory = $d/spool
data_directory = $d/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $BASE/log/postfix.log
maillog_file_prefixes = $BASE/log
myhostname = mx.$DOMAIN
mydomain = $DOMAIN
myorigin = \$mydomain
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
smtpd_reject_unlisted_recipient = no
smtpd_relay_restrictions = permit_mynetworks, reject
# The refused recipient is checked before permit_mynetworks, so loopback clients get the 5xx.
smtpd_recipient_restrictions = check_recipient_access inline:{ { $REJECT_RCPT = 550 5.1.1 mailbox unavailable } }, permit_mynetworks, reject
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $BASE/run/dovecot/auth-postfix
smtpd_tls_security_level = may
smtpd_tls_cert_file = $BASE/ssl/cert.pem
smtpd_tls_key_file = $BASE/ssl/key.pem
smtpd_tls_auth_only = no
# No postmaster notices: they would be delivered into the test mailboxes' domain.
notify_classes =
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_maps =
virtual_transport = lmtp:inet:127.0.0.1:$LMTP_PORT
recipient_delimiter = +
smtp_host_lookup = native
lmtp_host_lookup = native
smtp_dns_support_level = disabled
biff = no
message_size_limit = 52428800
smtputf8_enable = no
EOF
  cat > "$d/etc/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
$( [ "$SMTPS" = 1 ] && echo "127.0.0.1:$SMTPS_PORT inet n - n - - smtpd -o smtpd_tls_wrappermode=yes" )
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
EOF
}

start_dovecot() {
  if pid_alive "$(dovecot_pid)"; then
    log "dovecot already running (pid $(dovecot_pid))"
    return 0
  fi
  write_dovecot_conf
  # Dovecot's auth (user dovecot) and mail (user $MAIL_USER_NAME) processes open files under BASE; a
  # parent they cannot search (mktemp -d makes 0700 dirs) only shows up later as a failed login.
  local u
  for u in dovecot "$MAIL_USER_NAME"; do
    if ! runuser -u "$u" -- test -x "$BASE/mail" 2>/dev/null; then
      log "user $u cannot reach $BASE: make every parent directory searchable (chmod o+x, e.g. chmod 711)"
      return 1
    fi
  done
  # stdio to a file: a daemon holding the caller's stdout/stderr would hang $(...) and pipes
  if ! dovecot -c "$BASE/dovecot.conf" </dev/null >/dev/null 2>"$BASE/log/dovecot-start.err"; then
    log "dovecot failed to start:"; cat "$BASE/log/dovecot-start.err" >&2
    return 1
  fi
  if ! wait_port 127.0.0.1 "$IMAP_PORT" 15; then
    log "dovecot did not open IMAP port $IMAP_PORT; log tail:"; tail -20 "$BASE/log/dovecot.log" >&2 || true
    return 1
  fi
  wait_port 127.0.0.1 "$LMTP_PORT" 15
}

start_postfix() {
  [ "$POSTFIX" = 1 ] || return 0
  if pid_alive "$(postfix_pid)"; then
    log "postfix already running (pid $(postfix_pid))"
    return 0
  fi
  write_postfix_conf
  # postfix only reports fatal errors to syslog/tty; script(1) gives it a tty
  # so the reason lands in our log when there is no /dev/log.
  if ! script -qec "postfix -c '$BASE/postfix/etc' start" /dev/null >>"$BASE/log/postfix-start.err" 2>&1; then
    log "postfix failed to start (see $BASE/log/postfix-start.err); continuing without SMTP"
    return 0
  fi
  if ! wait_port 127.0.0.1 "$SMTP_PORT" 15; then
    log "postfix did not open SMTP port $SMTP_PORT"
  fi
}

stop_all() {
  if [ -f "$BASE/postfix/etc/main.cf" ] && pid_alive "$(postfix_pid)"; then
    postfix -c "$BASE/postfix/etc" stop >/dev/null 2>&1 || true
    local p; p=$(postfix_pid)
    for _ in $(seq 1 50); do pid_alive "$p" || break; sleep 0.1; done
    log "postfix stopped"
  fi
  local dp; dp=$(dovecot_pid)
  if pid_alive "$dp"; then
    doveadm -c "$BASE/dovecot.conf" stop >/dev/null 2>&1 || kill -TERM "$dp" 2>/dev/null || true
    for _ in $(seq 1 50); do pid_alive "$dp" || break; sleep 0.1; done
    pid_alive "$dp" && kill -KILL "$dp" 2>/dev/null || true
    log "dovecot stopped"
  fi
}

print_env() {
  cat <<EOF
MAILSERVER_BASE=$BASE
IMAP_HOST=127.0.0.1
IMAP_PORT=$IMAP_PORT
IMAPS_PORT=$( [ "$IMAPS" = 1 ] && echo "$IMAPS_PORT" )
LMTP_PORT=$LMTP_PORT
SMTP_PORT=$( [ "$POSTFIX" = 1 ] && pid_alive "$(postfix_pid)" && echo "$SMTP_PORT" )
SMTPS_PORT=$( [ "$POSTFIX" = 1 ] && [ "$SMTPS" = 1 ] && pid_alive "$(postfix_pid)" && echo "$SMTPS_PORT" )
REJECT_RCPT=$REJECT_RCPT
POSTFIX_CONF=$BASE/postfix/etc
IMAP_USER=incoming
IMAP_PASSWORD=$MAIL_PASSWORD
MAIL_DOMAIN=$DOMAIN
IMAPS_CA=$BASE/ssl/ca.pem
DOVECOT_CONF=$BASE/dovecot.conf
MAILDIR=$BASE/mail/incoming/Maildir
EOF
}

case "$CMD" in
  start)
    need_pkgs
    mkdir -p "$BASE"
    start_dovecot
    start_postfix
    print_env
    ;;
  stop)
    stop_all
    ;;
  status)
    dp=$(dovecot_pid); pp=$(postfix_pid)
    if pid_alive "$dp"; then echo "dovecot: running pid $dp"; else echo "dovecot: stopped"; fi
    if pid_alive "$pp"; then echo "postfix: running pid $pp"; else echo "postfix: stopped"; fi
    ;;
  env)
    print_env
    ;;
  reset)
    stop_all
    case "$BASE" in /|/etc*|/usr*|/var|/root|"") log "refusing to delete $BASE"; exit 1;; esac
    rm -rf "$BASE"
    log "removed $BASE"
    ;;
  *)
    echo "usage: $0 {start|stop|status|env|reset} [BASE]" >&2; exit 2;;
esac
