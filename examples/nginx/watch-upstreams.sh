#!/bin/sh
# nginx's health watcher: every half second, asks Docker's DNS for the `app` containers, keeps
# those whose /cgi-bin/health answers 200, and when that set changes writes upstream.conf and
# reloads nginx (graceful: the old workers finish the requests they hold). With `once`, writes
# the file and exits (before nginx starts: it needs the file).
set -u
conf=/etc/nginx/reroll/upstream.conf
mkdir -p /etc/nginx/reroll

render() {
  servers=""
  for ip in $(nslookup app 2>/dev/null | awk '/^Name:/ { named = 1 } named && /^Address/ { print $NF }' | sort -u); do
    # The same check Docker runs; `timeout`, because busybox wget -T crashes in some builds.
    if timeout 1 wget -q -O /dev/null "http://$ip/cgi-bin/health" 2>/dev/null; then
      servers="$servers $ip"
    fi
  done
  echo "upstream app {"
  if [ -z "$servers" ]; then
    # nginx refuses an upstream without servers; this one answers nothing (502).
    echo "    server 127.0.0.1:9 down;"
  fi
  for ip in $servers; do
    echo "    server $ip:80;"
  done
  echo "}"
  echo "map \$host \$routed {"
  echo "    default \"${servers# }\";"
  echo "}"
}

# Written aside and moved: nginx must never read a half-written file.
render >"$conf.new" && mv "$conf.new" "$conf"
[ "${1:-}" = once ] && exit 0

# `loaded` is what nginx was last told to load. A reload can fail: the watcher starts before
# nginx, which may have read the first file but not yet written its pid when the set first
# changes. The file is then newer than nginx's configuration, so the reload is tried again
# every round until nginx takes it, instead of waiting for the next change.
loaded=yes
while :; do
  sleep 0.5
  render >"$conf.new"
  if ! cmp -s "$conf.new" "$conf"; then
    mv "$conf.new" "$conf"
    loaded=""
  fi
  if [ -z "$loaded" ] && [ -s /run/nginx.pid ] && nginx -s reload; then
    loaded=yes
  fi
done
