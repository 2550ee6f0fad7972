#!/usr/bin/env bash
# Installs the Debian packages the integration tests run as peers (docs: DEPENDENCIES.md,
# "Test peers"). Run as root on Debian 12; idempotent. No package's service is left running or
# started: the tests start their own instances on free loopback ports.
set -euo pipefail

# One line per peer. Later peers (postgresql, chromium) are one line each here.
# Installed without recommends: for Samba they would pull in libnss-winbind and libpam-winbind
# (which edit nsswitch.conf and PAM) and krb5-config (which writes /etc/krb5.conf);
# samba-ad-provision must then be named explicitly.
PEER_PACKAGES=(
  freeradius freeradius-utils # RADIUS upstream and anchor; radclient/radtest as the NAS
  slapd ldap-utils # OpenLDAP directory; ldapsearch/ldapadd/ldapmodify as clients
  samba-ad-dc samba-ad-provision krb5-user # Samba AD DC (Active Directory upstream); kinit/kpasswd
)
# Daemons those packages may start from their maintainer scripts (pgrep -x names).
PEER_DAEMONS=(freeradius slapd samba smbd nmbd winbindd)
# systemd units those packages enable for the next boot; disabled when this run installed them.
PEER_UNITS=(freeradius.service slapd.service samba-ad-dc.service smbd.service nmbd.service winbind.service)

log() { printf 'install-test-peers: %s\n' "$*"; }
die() { printf 'install-test-peers: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (e.g. sudo $0)"
command -v apt-get >/dev/null || die "apt-get not found: this script is for Debian 12"
if [ -r /etc/os-release ]; then
  # shellcheck disable=SC1091
  . /etc/os-release
  [ "${ID:-}" = debian ] && [ "${VERSION_ID:-}" = 12 ] || log "warning: written for Debian 12, this is ${PRETTY_NAME:-unknown}"
fi

daemon_pids() {
  local name
  for name in "${PEER_DAEMONS[@]}"; do pgrep -x "$name" || true; done | sort -n
}

missing=()
for pkg in "${PEER_PACKAGES[@]}"; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null | grep -q '^ii' || missing+=("$pkg")
done

pids_before=$(daemon_pids)

# Maintainer scripts start services through invoke-rc.d / deb-systemd-invoke, which ask
# policy-rc.d first: exit 101 = "not allowed". Only ours is removed afterwards.
policy=/usr/sbin/policy-rc.d
created_policy=0
cleanup() {
  if [ "$created_policy" = 1 ]; then
    rm -f "$policy"
    log "removed the temporary $policy"
  fi
}
trap cleanup EXIT
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# temporary, from mfa-gateway scripts/install-test-peers.sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  created_policy=1
  log "created a temporary $policy (exit 101) so no service starts during the install"
else
  log "$policy exists already; leaving it as it is"
fi

# slapd's postinst would otherwise build a system directory (dc=nodomain, /var/lib/ldap) and
# start it on port 389: "omit configuration" leaves /etc/ldap/slapd.d and /var/lib/ldap empty,
# so there is nothing a boot or a stray invoke-rc.d could start. The tests generate their own.
# Only preseeded while slapd is not installed, so an admin's existing answers are kept.
if ! dpkg-query -W -f='${db:Status-Abbrev}' slapd 2>/dev/null | grep -q '^ii'; then
  printf 'slapd slapd/no_configuration boolean true\n' | debconf-set-selections
  log "preseeded debconf: slapd/no_configuration = true (no system directory is created)"
fi

log "apt-get update"
apt-get update -qq
log "installing: ${PEER_PACKAGES[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PEER_PACKAGES[@]}"

if [ "${#missing[@]}" -gt 0 ]; then
  log "newly installed: ${missing[*]}"
  if command -v systemctl >/dev/null; then
    for unit in "${PEER_UNITS[@]}"; do
      if systemctl disable "$unit" >/dev/null 2>&1; then log "disabled $unit for the next boot (tests run their own instances)"; fi
    done
  fi
else
  log "all packages were already installed"
fi

# Anything a maintainer script started despite the policy: stop it by PID.
pids_after=$(daemon_pids)
stopped=0
for pid in $pids_after; do
  if grep -qx "$pid" <<<"$pids_before"; then continue; fi
  log "stopping $(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null || echo "process") (PID $pid), started by the install"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  stopped=$((stopped + 1))
done
if [ "$stopped" -eq 0 ]; then log "no service process was started by the install"; fi

# The tests bind 127.0.0.1 free ports (slapd) and 389 on their own loopback aliases (Samba AD);
# a system directory listening on 389 of every address or of 127.0.0.1 would be in the way.
if command -v ss >/dev/null; then
  listeners=$(ss -Hltnp 'sport = :389' 2>/dev/null | awk '{print $4, $6}' | grep -E '^(0\.0\.0\.0|127\.0\.0\.1|\*|\[::\]):389 ' || true)
  if [ -n "$listeners" ]; then
    log "warning: something listens on port 389 of 127.0.0.1 or every address (not started by this run): $listeners"
  fi
fi
if [ -n "$pids_before" ]; then
  log "note: already running before this script (left alone): $(tr '\n' ' ' <<<"$pids_before")"
fi

for pkg in "${PEER_PACKAGES[@]}"; do
  log "$(dpkg-query -W -f='${Package} ${Version}' "$pkg")"
done
log "done"
