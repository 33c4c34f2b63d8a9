#!/bin/sh
# Entrypoint: a persistent busybox nc listener that forks handler.sh per connection.
# As PID 1 it must handle SIGTERM itself, or pods would wait out the grace period.
echo "$(cat /app/NAME) $(cat /app/VERSION) listening on :${PORT:-8080}"
trap 'echo "stopping"; kill $pid 2>/dev/null; exit 0' TERM INT
nc -ll -p "${PORT:-8080}" -e /app/handler.sh &
pid=$!
wait $pid
