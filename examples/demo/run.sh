#!/usr/bin/env bash
# What docker-reroll is for, in about a minute, offline: two replicas of a tiny web app behind
# HAProxy (retries off) under a steady load, rolled once with plain `docker compose up -d` and once
# with `docker reroll app`; then every failed request of each, side by side, and which version
# answered when during the reroll. Cleans up after itself, also on Ctrl-C.
#
#   ./install.sh && examples/demo/run.sh
#
# Needs: a Docker engine with Compose v2 (2.24 or later), docker-reroll installed (./install.sh), and the two
# binaries the images are made of: apt-get install busybox-static haproxy
# Settings (environment): DEMO_PROJECT (reroll-demo), DEMO_CLIENTS (4 request loops),
# DEMO_KEEP_IMAGES=1 (keep the images it built), REROLL (the command, default `docker reroll`).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
example="$here/../haproxy"
project=${DEMO_PROJECT:-reroll-demo}
read -r -a reroll <<<"${REROLL:-docker reroll}"
busybox_image=docker-reroll-demo/busybox:1
haproxy_image=docker-reroll-demo/haproxy:1
export DOCKER_BUILDKIT=0 # the legacy builder needs no buildx plugin
export COMPOSE_PROJECT_NAME=$project COMPOSE_FILE="$example/compose.yaml:$here/compose.yaml"
export DEMO_BUSYBOX=$busybox_image DEMO_HAPROXY=$haproxy_image

say() { printf '%s\n' "$*" >&2; }
die() { say "demo: $*"; exit 2; }
if [[ -t 2 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain" >&2; }

# --- what it needs, checked before anything starts --------------------------------------------
command -v docker >/dev/null || die "no docker CLI: install Docker first"
docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info failed): start it, or set DOCKER_HOST"
docker compose version >/dev/null 2>&1 || die "no Docker Compose v2 (docker compose): install it"
"${reroll[@]}" --version >/dev/null 2>&1 ||
  die "\`${reroll[*]}\` does not run: run ./install.sh first (or set REROLL to the docker-reroll binary)"
[[ -x /bin/busybox && $(ldd /bin/busybox 2>&1 || true) == *"not a dynamic"* ]] ||
  die "no static /bin/busybox for the app's image: apt-get install busybox-static"
command -v haproxy >/dev/null || die "no haproxy binary for the proxy's image: apt-get install haproxy"
if docker compose ps --all --quiet 2>/dev/null | grep -q .; then
  die "project $project already has containers: docker compose -p $project down, or set DEMO_PROJECT"
fi

work=$(mktemp -d)
built=()
cleanup() {
  trap - EXIT INT TERM
  say ""
  say "demo: cleaning up (project $project)"
  docker compose --profile load down --volumes --remove-orphans --timeout 1 >/dev/null 2>&1 || true
  if [[ ${DEMO_KEEP_IMAGES:-} != 1 ]] && ((${#built[@]})); then
    docker rmi "${built[@]}" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
# A Ctrl-C reaches the foreground command too (docker reroll rolls back): bash runs this once it
# has returned, and the EXIT trap cleans up.
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the images, from the machine's own binaries (no registry) ---------------------------------
# build TAG DIR: DIR/Dockerfile as TAG, unless TAG exists already.
build() {
  if docker image inspect "$1" >/dev/null 2>&1; then return 0; fi
  docker build --quiet --tag "$1" "$2" >"$2.log" 2>&1 || { cat "$2.log" >&2; die "docker build of $1 failed"; }
  built+=("$1")
}
step "building the images (busybox and HAProxy from this machine's binaries, FROM scratch)"
# No RUN step (it would need a network for the build): the applets' links are made here.
mkdir -p "$work/busybox/rootfs/bin" "$work/busybox/rootfs/tmp"
chmod 1777 "$work/busybox/rootfs/tmp"
cp /bin/busybox "$work/busybox/rootfs/bin/"
for applet in $(/bin/busybox --list); do
  [[ $applet == busybox ]] || ln -s busybox "$work/busybox/rootfs/bin/$applet"
done
printf 'FROM scratch\nCOPY rootfs/ /\nCMD ["sh"]\n' >"$work/busybox/Dockerfile"
build "$busybox_image" "$work/busybox"
mkdir -p "$work/haproxy/rootfs/etc" "$work/haproxy/rootfs/usr/local/etc/haproxy"
haproxy_bin=$(command -v haproxy)
for file in "$haproxy_bin" $(ldd "$haproxy_bin" | grep -o '/[^ ]*'); do
  install -D -m 0755 "$(readlink -f "$file")" "$work/haproxy/rootfs$file"
done
printf 'root:x:0:0:root:/root:/bin/false\nhaproxy:x:99:99::/:/bin/false\n' >"$work/haproxy/rootfs/etc/passwd"
printf 'root:x:0:\nhaproxy:x:99:\n' >"$work/haproxy/rootfs/etc/group"
# SIGUSR1: HAProxy's graceful stop, as in the official image.
printf 'FROM scratch\nCOPY rootfs/ /\nUSER haproxy\nSTOPSIGNAL SIGUSR1\nENV PATH=%s\n' "$(dirname "$haproxy_bin")" \
  >"$work/haproxy/Dockerfile"
build "$haproxy_image" "$work/haproxy"

# --- the stack, the load, the measurements ------------------------------------------------------
step "starting 2 replicas of app (version a) behind HAProxy"
APP_VERSION=a docker compose up --detach --wait --quiet-pull >/dev/null 2>"$work/up.log" ||
  { cat "$work/up.log" >&2; die "the stack did not start"; }

# Seconds since midnight UTC, as the engine's log timestamps are read below.
now() { date -u +%H:%M:%S.%N | awk -F: '{ printf "%.3f\n", $1 * 3600 + $2 * 60 + $3 }'; }

start_load() {
  docker compose --profile load up --detach --force-recreate load >/dev/null 2>&1
  sleep 2 # a baseline: the load runs before the rollout starts
}

# stop_load FILE: ends the load and writes each answer as `SECONDS ANSWER` to FILE.
stop_load() {
  sleep 2 # and after it ends
  docker compose --profile load kill load >/dev/null 2>&1
  docker compose --profile load logs --no-color --no-log-prefix --timestamps load |
    awk '{ split(substr($1, 12), t, ":"); $1 = sprintf("%.3f", t[1] * 3600 + t[2] * 60 + t[3]); print }' >"$1"
  docker compose --profile load rm --force --stop load >/dev/null 2>&1
}

count() { awk '$2 == "FAIL" { f++ } END { printf "%d %d\n", f, NR }' "$1"; }

# failures FILE START: when the failed requests came, in seconds after START.
failures() {
  awk -v start="$2" '$2 == "FAIL" { if (!n++) first = $1; last = $1 }
    END { if (n) printf "from %.1fs to %.1fs after it started", first - start, last - start }' "$1"
}

step "1/2  plain \`docker compose up -d\` (a -> b) under load"
start_load
compose_started=$(now)
APP_VERSION=b docker compose up --detach 2>&1 | sed 's/^/     /' >&2
# Not measured as part of the rollout, but the load goes on until the new version serves.
APP_VERSION=b docker compose up --detach --wait app >/dev/null 2>&1 || true
stop_load "$work/compose.answers"
read -r compose_failed compose_total < <(count "$work/compose.answers")

step "2/2  \`${reroll[*]} app\` (b -> c) under load"
start_load
reroll_started=$(now)
reroll_status=0
APP_VERSION=c "${reroll[@]}" app || reroll_status=$?
reroll_ended=$(now)
stop_load "$work/reroll.answers"
read -r reroll_failed reroll_total < <(count "$work/reroll.answers")

# --- the result ---------------------------------------------------------------------------------
step "failed requests (${DEMO_CLIENTS:-4} clients, one request after another, HAProxy retries off)"
printf '     %-24s %8s %8s\n' "" failed total >&2
printf '     %-24s %8d %8d   %s\n' "docker compose up -d" "$compose_failed" "$compose_total" \
  "$(failures "$work/compose.answers" "$compose_started")" >&2
printf '     %-24s %8d %8d   %s\n' "docker reroll" "$reroll_failed" "$reroll_total" \
  "$(failures "$work/reroll.answers" "$reroll_started")" >&2

step "docker reroll, second by second: which version answered (0 = when it started)"
awk -v start="$reroll_started" -v end="$reroll_ended" '
  { s = int($1 - start + 1000) - 1000; answered[s, $2]++; if (s < lo || NR == 1) lo = s; if (s > hi || NR == 1) hi = s }
  END {
    printf "     %6s %6s %6s %6s\n", "second", "b", "c", "failed"
    for (s = lo; s <= hi; s++)
      printf "     %6s %6d %6d %6d%s\n", s, answered[s, "b"], answered[s, "c"], answered[s, "FAIL"],
        (s == int(end - start) ? "   <- docker reroll returned" : "")
  }' "$work/reroll.answers" >&2

say ""
say "demo: plain Compose failed $compose_failed of $compose_total requests; docker reroll failed $reroll_failed of $reroll_total."
if ((reroll_status != 0)); then
  say "demo: docker reroll exited with $reroll_status"
  exit "$reroll_status"
fi
# Not what it is for: say so in the exit code too.
((reroll_failed == 0)) || exit 1
