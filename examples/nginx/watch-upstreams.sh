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

# A reload nginx missed is sent again: every round also asks nginx (its internal /routed, which
# the current workers answer) whether its loaded configuration routes where the file says. Two
# ways to miss one, both at start, as the watcher begins before nginx: `nginx -s reload` fails
# while nginx has no pid file yet; and a SIGHUP that lands after the pid file is written but
# before nginx's master first waits for signals only sets a flag the master reads after its next
# signal, so nginx went on serving the empty first upstream (seen: "no live upstreams", 502 for
# good, in about one start in five on a busy host).
while :; do
  sleep 0.5
  render >"$conf.new"
  if ! cmp -s "$conf.new" "$conf"; then
    mv "$conf.new" "$conf"
    nginx -s reload
    continue
  fi
  wanted=$(sed -n 's/^ *default "\(.*\)";$/\1/p' "$conf")
  routed=$(wget -q -O - http://127.0.0.1:8081/routed 2>/dev/null) || continue
  if [ "$routed" != "$wanted" ]; then
    nginx -s reload
  fi
done
