#!/usr/bin/env bash
# Podman for the end-to-end tests (tests/podman.rs), as root, called by tests/setup.sh (which
# installs it) after tests/images/build.sh. Idempotent and quiet on success:
#   - writes /etc/containers/containers.conf.d/docker-reroll.conf: runc (crun refuses this
#     machine's hybrid cgroups), ulimits no higher than the machine's with soft = hard (Podman's
#     defaults fail with "setrlimit RLIMIT_NOFILE: Operation not permitted", soft < hard through
#     the API socket with "setting rlimit type 7: invalid argument"), and unprivileged ports from 0
#     as Docker sets them (the HAProxy image binds :80 as user haproxy);
#   - runs Podman's Docker-compatible API, `podman system service`, on $REROLL_PODMAN_SOCKET in
#     the background unless something answers there already (restarted when this script started
#     it and the configuration changed since: the service reads it once);
#   - copies the test images from Docker's store into Podman's (`docker save | podman load`) unless
#     Podman has the same image id already.
# See docs/podman.md for what was measured.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SOCKET_DIR=/run/reroll-podman
SOCKET=${REROLL_PODMAN_SOCKET:-$SOCKET_DIR/podman.sock}
PIDFILE=$SOCKET_DIR/service.pid
CONF=/etc/containers/containers.conf.d/docker-reroll.conf
IMAGES=(busybox:1.36 haproxy:2.6)

log=$(mktemp)
trap 'rm -f "$log"' EXIT
fail() {
  echo "tests/setup-podman.sh: FAILED: $*" >&2
  if [[ -s $log ]]; then sed 's/^/  | /' "$log" >&2; fi
  exit 1
}
quietly() { "$@" >>"$log" 2>&1 || fail "$*"; }

command -v podman >/dev/null || fail "podman is not installed (tests/setup.sh installs it)"

# The machine's hard limit, capped (a container needs no more); "unlimited" counts as the cap.
limit() {
  local hard=$1 cap=$2
  if [[ $hard == unlimited ]] || ((hard > cap)); then echo "$cap"; else echo "$hard"; fi
}
nofile=$(limit "$(ulimit -Hn)" 65536)
nproc=$(limit "$(ulimit -Hu)" 8192)
conf="# Written by docker-reroll's tests/setup-podman.sh.
[containers]
default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]
default_sysctls = [\"net.ipv4.ping_group_range=0 0\", \"net.ipv4.ip_unprivileged_port_start=0\"]

[engine]
runtime = \"runc\"
"
changed=false
if [[ ! -f $CONF || "$(cat "$CONF")"$'\n' != "$conf" ]]; then
  quietly mkdir -p "${CONF%/*}"
  printf '%s' "$conf" >"$CONF"
  changed=true
fi

answers() { DOCKER_HOST="unix://$SOCKET" timeout 10 docker version --format '{{.Server.Version}}' >>"$log" 2>&1; }
ours() {
  [[ -f $PIDFILE ]] && tr '\0' ' ' <"/proc/$(cat "$PIDFILE")/cmdline" 2>/dev/null | grep -q '^podman system service '
}

if $changed && ours; then
  kill "$(cat "$PIDFILE")"
  for _ in $(seq 50); do ours || break; sleep 0.1; done
fi
if ! answers; then
  ours && fail "podman system service (pid $(cat "$PIDFILE")) runs but does not answer on $SOCKET"
  quietly mkdir -p "$SOCKET_DIR" "${SOCKET%/*}"
  rm -f "$SOCKET"
  # Its own session, so that it outlives this script and the test run; --time=0: no idle exit.
  setsid podman system service --time=0 "unix://$SOCKET" >"$SOCKET_DIR/service.log" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  for _ in $(seq 100); do answers && break; sleep 0.2; done
  answers || fail "podman system service does not answer on $SOCKET (log: $SOCKET_DIR/service.log)"
fi

for image in "${IMAGES[@]}"; do
  want=$(docker image inspect -f '{{.Id}}' "$image" 2>>"$log") || fail "no $image in Docker's store (tests/images/build.sh)"
  have=$(podman image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
  if [[ sha256:$have != "$want" ]]; then
    docker save "$image" | podman load >>"$log" 2>&1 || fail "docker save $image | podman load"
  fi
done
