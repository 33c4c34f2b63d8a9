#!/bin/sh
# Entrypoint of 127.0.0.1:5000/shop/postgres (Debian's postgresql-15 binaries).
# Follows the official image's contract for the variables this project uses:
# POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required unless
# POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB (default = user), PGDATA, and like the
# official image any of them as <NAME>_FILE: the value is read from that file (Docker secrets).
set -e
for name in POSTGRES_USER POSTGRES_PASSWORD POSTGRES_DB; do
  eval "file=\${${name}_FILE:-}"
  if [ -n "$file" ]; then
    [ -r "$file" ] || { echo "entrypoint: ${name}_FILE=$file is not readable" >&2; exit 1; }
    eval "export $name=\"\$(cat \"\$file\")\""
    unset "${name}_FILE"
  fi
done
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
export PGDATA

if [ "$(id -u)" = 0 ]; then
  # started as root: fix ownership of the data volume, then drop to postgres. A volume's
  # root can come as root 0750 (e.g. hostPath), so the mount point is handed over too.
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres /var/lib/postgresql/data "$(dirname "$PGDATA")"
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec su -p -s /bin/sh postgres -- "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$auth" != trust ]; then
    echo "entrypoint: POSTGRES_PASSWORD is required (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2; exit 1
  fi
  pwfile=$(mktemp); printf '%s\n' "${POSTGRES_PASSWORD:-unused}" > "$pwfile"
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host="$auth" \
    --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA"
  rm -f "$pwfile"
  printf "listen_addresses = '*'\njit = off\nunix_socket_directories = '/var/run/postgresql'\n" >> "$PGDATA/postgresql.conf"
  printf 'host all all 0.0.0.0/0 %s\nhost all all ::/0 %s\n' "$auth" "$auth" >> "$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    postgres -D "$PGDATA" -c listen_addresses='' &
    pid=$!
    i=0; until pg_isready -q -h /var/run/postgresql; do i=$((i+1)); [ $i -lt 60 ] || exit 1; sleep 0.5; done
    psql -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$POSTGRES_USER" -d postgres \
      -c "CREATE DATABASE \"$POSTGRES_DB\""
    kill -INT $pid; wait $pid || true
  fi
  echo "entrypoint: initialized $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
fi
exec postgres -D "$PGDATA" "$@"
