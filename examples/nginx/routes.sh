#!/bin/sh
# routes.sh ADDRESS: exits 0 while nginx may send a request to ADDRESS or still has one in
# flight there: its loaded configuration routes to it (the `$routed` the current workers
# answer), or workers of an earlier configuration are still finishing their requests.
set -u
routed=$(wget -q -O - http://127.0.0.1:8081/routed) || exit 2
case " $routed " in
  *" $1 "*) exit 0 ;;
esac
ps | grep -q '[w]orker process is shutting down' && exit 0
exit 1
