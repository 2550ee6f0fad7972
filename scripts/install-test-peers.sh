#!/usr/bin/env bash
# Installs the Debian packages the integration tests run as peers (docs: DEPENDENCIES.md,
# "Test peers"). Run as root on Debian 12; idempotent. No package's service is left running or
# started: the tests start their own instances on free loopback ports.
set -euo pipefail

# One line per peer. Later peers (slapd, samba, postgresql, chromium) are one line each here.
PEER_PACKAGES=(
  freeradius freeradius-utils # RADIUS upstream and anchor; radclient/radtest as the NAS
)
# Daemons those packages may start from their maintainer scripts (pgrep -x names).
PEER_DAEMONS=(freeradius)
# systemd units those packages enable for the next boot; disabled when this run installed them.
PEER_UNITS=(freeradius.service)

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
if [ -n "$pids_before" ]; then
  log "note: already running before this script (left alone): $(tr '\n' ' ' <<<"$pids_before")"
fi

for pkg in "${PEER_PACKAGES[@]}"; do
  log "$(dpkg-query -W -f='${Package} ${Version}' "$pkg")"
done
log "done"
