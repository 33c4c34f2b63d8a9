#!/bin/sh
# The worker: `worker --queue NAME` works (here: a heartbeat every 5 s) until SIGTERM;
# `worker --check` is its health probe: healthy while the heartbeat is fresh (<= 30 s).
# A *-broken version never beats, so its probe fails like the broken HTTP services.
beat=/tmp/worker-heartbeat
case "${1:-}" in
  --check)
    [ -f "$beat" ] || { echo "no heartbeat yet"; exit 1; }
    age=$(( $(date +%s) - $(cat "$beat") ))
    [ "$age" -le 30 ] || { echo "heartbeat ${age}s old"; exit 1; }
    echo "ok $(cat /app/NAME) $(cat /app/VERSION)"; exit 0 ;;
  --queue)
    echo "$(cat /app/NAME) $(cat /app/VERSION) working on queue ${2:-default}"
    trap 'echo "stopping"; exit 0' TERM INT
    while :; do
      [ -f /app/BROKEN ] || date +%s > "$beat"
      sleep 5 & wait $!
    done ;;
  *) echo "usage: worker --queue NAME | --check" >&2; exit 2 ;;
esac
