#!/usr/bin/env bash
# Builds docker-reroll and installs it as a Docker CLI plugin, so that `docker reroll` works.
#
#   ./install.sh              installs into ~/.docker/cli-plugins (or $DOCKER_CONFIG/cli-plugins)
#   ./install.sh DIR          installs into DIR (e.g. /usr/local/lib/docker/cli-plugins, for every user)
#
# Idempotent: run it again to update. Needs cargo (https://rustup.rs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

target_dir="${1:-${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins}"

if ! command -v cargo >/dev/null 2>&1; then
  echo "install.sh: cargo was not found: install Rust (https://rustup.rs), then run ./install.sh again" >&2
  exit 2
fi

cargo build --release --locked --quiet --bin docker-reroll
mkdir -p "$target_dir"
# Copy to a temporary name, then rename: a running `docker reroll` keeps its binary intact.
install -m 0755 target/release/docker-reroll "$target_dir/.docker-reroll.new"
mv -f "$target_dir/.docker-reroll.new" "$target_dir/docker-reroll"

echo "installed $target_dir/docker-reroll"
if command -v docker >/dev/null 2>&1; then
  if [ "${1:-}" = "" ] || [ "$target_dir" = "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins" ]; then
    echo "check: docker reroll --version"
    docker reroll --version
  else
    echo "check: docker reroll --version (if docker looks for plugins in $target_dir)"
  fi
else
  echo "docker was not found; the binary works standalone too: $target_dir/docker-reroll --help"
fi
