#!/usr/bin/env bash
# Builds docker-reroll and installs it as a Docker CLI plugin, so that `docker reroll` works, with
# shell completions (bash, zsh, fish) and a man page for the `docker-reroll` command.
#
#   ./install.sh              installs into ~/.docker/cli-plugins (or $DOCKER_CONFIG/cli-plugins)
#   ./install.sh DIR          installs into DIR (e.g. /usr/local/lib/docker/cli-plugins, for every user)
#
# The completions and the man page go under PREFIX: /usr/local as root, else ~/.local (where
# bash-completion, fish and man look for a user's own):
#   PREFIX/share/bash-completion/completions/docker-reroll
#   PREFIX/share/zsh/site-functions/_docker-reroll
#   PREFIX/share/fish/vendor_completions.d/docker-reroll.fish
#   PREFIX/share/man/man1/docker-reroll.1
# PREFIX=/some/dir ./install.sh puts them elsewhere; PREFIX= (empty) skips them.
# REROLL_BINARY=path installs that binary instead of building one (packagers, tests).
#
# Idempotent: run it again to update. Needs cargo (https://rustup.rs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

target_dir="${1:-${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins}"
if [ "$(id -u)" = 0 ]; then default_prefix=/usr/local; else default_prefix="$HOME/.local"; fi
prefix="${PREFIX-$default_prefix}"

binary="${REROLL_BINARY:-}"
if [ -z "$binary" ]; then
  if ! command -v cargo >/dev/null 2>&1; then
    echo "install.sh: cargo was not found: install Rust (https://rustup.rs), then run ./install.sh again" >&2
    exit 2
  fi
  cargo build --release --locked --quiet --bin docker-reroll
  binary=target/release/docker-reroll
fi

# Copies what `$binary --generate WHAT` prints to FILE, through a temporary name then a rename.
put() {
  local file=$1 what=$2
  mkdir -p "$(dirname "$file")"
  "$binary" --generate "$what" >"$file.new"
  chmod 0644 "$file.new"
  mv -f "$file.new" "$file"
}

mkdir -p "$target_dir"
# Copy to a temporary name, then rename: a running `docker reroll` keeps its binary intact.
install -m 0755 "$binary" "$target_dir/.docker-reroll.new"
mv -f "$target_dir/.docker-reroll.new" "$target_dir/docker-reroll"
echo "installed $target_dir/docker-reroll"

if [ -n "$prefix" ]; then
  put "$prefix/share/bash-completion/completions/docker-reroll" complete-bash
  put "$prefix/share/zsh/site-functions/_docker-reroll" complete-zsh
  put "$prefix/share/fish/vendor_completions.d/docker-reroll.fish" complete-fish
  put "$prefix/share/man/man1/docker-reroll.1" man
  echo "installed completions (bash, zsh, fish) and the man page under $prefix/share"
  if [ "$prefix" != /usr/local ] && [ "$prefix" != /usr ]; then
    echo "  zsh: add $prefix/share/zsh/site-functions to fpath (before compinit) to use them"
  fi
fi

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
echo "try it: examples/demo/run.sh (a rollout under load behind HAProxy, offline, about a minute)"
