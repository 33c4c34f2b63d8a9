#!/bin/sh
# Answers one HTTP request on stdin/stdout (started per connection by `nc -ll -e`).
# Routes: /healthz (200 "ok", or 500 for a version built broken; with REQUIRE_SCHEMA=true 503 while
# the database's schema is older than this build needs), /schema (JSON: needs, schema), /products
# (the table as CSV), /version, /metrics, / and 404.
# The version is the one baked into the image (/app/VERSION); X-App-Version carries it too.
# A version built failing (/app/FAILING) passes its health checks and answers every other request
# but /metrics with 500: what a canary analysis must catch and a probe cannot.
# /metrics: Prometheus text format, every request but the scrapes themselves counted by status
# code (http_requests_total) and timed (http_request_duration_seconds histogram), labelled with
# the version. Each handler appends one line to a log; a scrape folds the log into the totals.
now_ms() { # milliseconds: date's nanoseconds where busybox has them, else /proc/uptime (10 ms steps)
  ns=$(date +%s%N 2>/dev/null)
  case "$ns" in
    *[!0-9]*|'') read -r up _ < /proc/uptime; echo $(( ${up%.*} * 1000 + 1${up#*.}0 - 1000 )) ;;
    *) echo $(( ns / 1000000 )) ;;
  esac
}
start=$(now_ms)
cr=$(printf '\r')
VERSION=$(cat /app/VERSION 2>/dev/null || echo unknown)
NAME=${APP_NAME:-$(cat /app/NAME 2>/dev/null || echo app)}
METRICS=${METRICS_DIR:-/tmp/metrics}
BUCKETS="0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10"
read -r method target _proto || exit 0
while IFS= read -r line; do line=${line%"$cr"}; [ -z "$line" ] && break; done
path=${target%%\?*}
respond() { # status body [content-type]
  printf 'HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %s\r\nX-App-Version: %s\r\nX-App-Name: %s\r\nConnection: close\r\n\r\n%s' \
    "$1" "${3:-text/plain}" "${#2}" "$VERSION" "$NAME" "$2"
  code=${1%% *}
}
record() { # one line per request: <code> <milliseconds>
  mkdir -p "$METRICS" 2>/dev/null && echo "$code $(( $(now_ms) - start ))" >> "$METRICS/requests.log"
}
metrics() { # fold the request log into the totals (under a lock), then print them
  mkdir -p "$METRICS"
  tries=0
  until mkdir "$METRICS/lock" 2>/dev/null; do
    tries=$((tries + 1)); [ "$tries" -gt 50 ] && rmdir "$METRICS/lock" 2>/dev/null; sleep 0.1 2>/dev/null || sleep 1
  done
  [ -f "$METRICS/requests.log" ] && mv "$METRICS/requests.log" "$METRICS/folding.log"
  touch "$METRICS/totals" "$METRICS/folding.log"
  # totals lines: "count <code> <n>", "bucket <le> <n>", "sum <seconds>", "observations <n>"
  awk -v buckets="$BUCKETS" '
    FILENAME == ARGV[1] { total[$1 " " $2] += $3; next }
    { total["count " $1] += 1; s = $2 / 1000; total["sum x"] += s; total["observations x"] += 1
      n = split(buckets, le, " "); for (i = 1; i <= n; i++) if (s <= le[i] + 0) total["bucket " le[i]] += 1 }
    END { for (k in total) printf "%s %.6f\n", k, total[k] }' "$METRICS/totals" "$METRICS/folding.log" > "$METRICS/totals.new"
  mv "$METRICS/totals.new" "$METRICS/totals"; rm -f "$METRICS/folding.log"
  rmdir "$METRICS/lock"
  awk -v version="$VERSION" -v buckets="$BUCKETS" '
    { total[$1 " " $2] = $3; if ($1 == "count") codes[$2] = 1 }
    END {
      print "# HELP http_requests_total Requests answered, by HTTP status code."
      print "# TYPE http_requests_total counter"
      for (c in codes) printf "http_requests_total{code=\"%s\",version=\"%s\"} %d\n", c, version, total["count " c]
      print "# HELP http_request_duration_seconds Time from reading a request to having answered it."
      print "# TYPE http_request_duration_seconds histogram"
      n = split(buckets, le, " ")
      for (i = 1; i <= n; i++) printf "http_request_duration_seconds_bucket{le=\"%s\",version=\"%s\"} %d\n", le[i], version, total["bucket " le[i]]
      printf "http_request_duration_seconds_bucket{le=\"+Inf\",version=\"%s\"} %d\n", version, total["observations x"]
      printf "http_request_duration_seconds_sum{version=\"%s\"} %.3f\n", version, total["sum x"]
      printf "http_request_duration_seconds_count{version=\"%s\"} %d\n", version, total["observations x"]
    }' "$METRICS/totals"
}
nl='
'
# The schema this build needs (/app/SCHEMA, written by build.sh) and the one its database has
# (the newest row of schema_migrations that /app/migrate keeps); 0 when there is none yet.
NEEDS=$(cat /app/SCHEMA 2>/dev/null || echo 0)
schema() {
  [ -n "${PGPASSWORD_FILE:-}" ] && [ -z "${PGPASSWORD:-}" ] && PGPASSWORD="$(cat "$PGPASSWORD_FILE")" && export PGPASSWORD
  PGCONNECT_TIMEOUT=2 psql -X -q -t -A -c "select coalesce(max(version), 0) from schema_migrations" 2>/dev/null || echo 0
}
case "$path" in
  /healthz|/readyz|/livez|/metrics) ;;
  *) [ -e /app/FAILING ] && { respond "500 Internal Server Error" "failing $NAME $VERSION$nl"; record; exit 0; } ;;
esac
case "$path" in
  /healthz|/readyz|/livez)
    if [ -e /app/BROKEN ]; then respond "500 Internal Server Error" "unhealthy $NAME $VERSION$nl"
    elif [ "${REQUIRE_SCHEMA:-false}" = true ]; then
      # Ready only once the database has at least the schema this build needs (a newer one is
      # fine: migrations add before they take away); set REQUIRE_SCHEMA where a migration is declared.
      have=$(schema)
      if [ "$have" -ge "$NEEDS" ]; then respond "200 OK" "ok $NAME $VERSION schema $have$nl"
      else respond "503 Service Unavailable" "not ready $NAME $VERSION: schema $have is older than the $NEEDS it needs$nl"; fi
    else respond "200 OK" "ok $NAME $VERSION$nl"; fi ;;
  /schema)
    have=$(schema)
    respond "200 OK" "{\"app\":\"$NAME\",\"version\":\"$VERSION\",\"needs\":$NEEDS,\"schema\":$have}$nl" application/json ;;
  /products)
    # What the shop sells, as the schema this database has: a reader of the data, for the tests.
    [ -n "${PGPASSWORD_FILE:-}" ] && [ -z "${PGPASSWORD:-}" ] && PGPASSWORD="$(cat "$PGPASSWORD_FILE")" && export PGPASSWORD
    if rows=$(PGCONNECT_TIMEOUT=2 psql -X -q -A -F , -c "select * from products order by id" 2>&1); then
      respond "200 OK" "$rows$nl" text/csv
    else respond "503 Service Unavailable" "no products: $rows$nl"; fi ;;
  /version) respond "200 OK" "$VERSION$nl" ;;
  /metrics) respond "200 OK" "$(metrics)$nl" "text/plain; version=0.0.4"; exit 0 ;;  # scrapes are not counted
  /) respond "200 OK" "$NAME $VERSION on $(hostname)$nl" ;;
  *) respond "404 Not Found" "not found: $path$nl" ;;
esac
record
