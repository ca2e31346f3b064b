#!/usr/bin/env bash
# The rollout benchmark: docker-reroll on the real Docker engine, behind the HAProxy example, under
# a steady load, for 1, 4 and 8 replicas; then proxy verification against sleeps, behind HAProxy
# and behind Traefik. Writes docs/benchmarks.md (between its result markers) and
# target/bench/rollout.json. About 15 minutes on 2 cores.
#
#   bash bench/run.sh                                    # as documented in docs/benchmarks.md
#   REROLL_BENCH_REPLICAS=1 REROLL_BENCH_RUNS=1 REROLL_BENCH_OUT=- bash bench/run.sh   # quick look
#   REROLL_BENCH_REPLICAS=none REROLL_BENCH_PROXIES=traefik REROLL_BENCH_OUT=- bash bench/run.sh
#
# Needs what the tests need (tests/setup.sh installs it, as root) plus hyperfine. Removes every
# container and network it created, pass or fail.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { echo "==> $*" >&2; }

step "setup (tests/setup.sh)"
bash tests/setup.sh
if ! command -v hyperfine >/dev/null; then
  step "installing hyperfine"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hyperfine >/dev/null
fi

step "cargo build --release"
cargo build --release --quiet --bin docker-reroll
# A copy: `cargo bench` (and anyone else building meanwhile) may rebuild target/release.
mkdir -p target/bench
cp target/release/docker-reroll target/bench/docker-reroll

# The benchmark's Compose projects are named reroll-e2e-bench<N or proxy>-<pid of the benchmark>.
cleanup() {
  local project pid ids
  for project in $(docker ps --all --filter label=com.docker.compose.project \
    --format '{{.Label "com.docker.compose.project"}}' | sort -u | grep -E '^reroll-e2e-bench[a-z0-9]+-[0-9]+$'); do
    pid=${project##*-}
    [[ -d /proc/$pid ]] && continue # a benchmark that still runs (timeout ends ours with it)
    ids=$(docker ps --all --quiet --filter "label=com.docker.compose.project=$project")
    [[ -z $ids ]] || docker rm --force --volumes $ids >/dev/null 2>&1 || true
  done
  for network in $(docker network ls --format '{{.Name}}' | grep -E '^reroll-e2e-bench[a-z0-9]+-[0-9]+_' || true); do
    pid=${network%%_*}
    pid=${pid##*-}
    [[ -d /proc/$pid ]] || docker network rm "$network" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

step "cargo bench --bench rollout"
REROLL_BENCH_BIN="$PWD/target/bench/docker-reroll" timeout --kill-after 30 2400 \
  cargo bench --quiet --bench rollout
