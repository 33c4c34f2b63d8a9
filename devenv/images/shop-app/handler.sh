#!/bin/sh
# Answers one HTTP request on stdin/stdout (started per connection by `nc -ll -e`).
# Routes: /healthz (200 "ok", or 500 for a version built broken), /version, / and 404.
# The version is the one baked into the image (/app/VERSION); X-App-Version carries it too.
cr=$(printf '\r')
VERSION=$(cat /app/VERSION 2>/dev/null || echo unknown)
NAME=${APP_NAME:-$(cat /app/NAME 2>/dev/null || echo app)}
read -r method target _proto || exit 0
while IFS= read -r line; do line=${line%"$cr"}; [ -z "$line" ] && break; done
path=${target%%\?*}
respond() { # status body
  printf 'HTTP/1.0 %s\r\nContent-Type: text/plain\r\nContent-Length: %s\r\nX-App-Version: %s\r\nX-App-Name: %s\r\nConnection: close\r\n\r\n%s' \
    "$1" "${#2}" "$VERSION" "$NAME" "$2"
}
nl='
'
case "$path" in
  /healthz|/readyz|/livez)
    if [ -e /app/BROKEN ]; then respond "500 Internal Server Error" "unhealthy $NAME $VERSION$nl"
    else respond "200 OK" "ok $NAME $VERSION$nl"; fi ;;
  /version) respond "200 OK" "$VERSION$nl" ;;
  /) respond "200 OK" "$NAME $VERSION on $(hostname)$nl" ;;
  *) respond "404 Not Found" "not found: $path$nl" ;;
esac
