#!/bin/sh
# routes.sh ADDRESS: exits 0 while nginx may send a request to ADDRESS or still has one in
# flight there: its loaded configuration routes to it (the `$routed` the current workers
# answer), or workers of an earlier configuration still take or finish requests.
set -u
routed=$(wget -q -O - http://127.0.0.1:8081/routed) || exit 2
case " $routed " in
  *" $1 "*) exit 0 ;;
esac
# A reload starts the new workers, and only 100 ms later (nginx's master sleeps that long) tells
# the old ones to stop: meanwhile both take requests, the old ones by the old configuration, and
# /routed may already be answered by a new one. So: more workers than `worker_processes` (1 in
# nginx.conf), or one shutting down, still finishing its requests, means not yet.
workers=$(ps | grep -c '[w]orker process')
[ "$workers" -gt 1 ] && exit 0
ps | grep -q '[w]orker process is shutting down' && exit 0
exit 1
