#!/bin/sh
# The shop's schema migrations, run once per release by the platform with the NEW image
# (`/app/migrate up`) and, on rollback, with the same newer image (`/app/migrate down`).
#   up      apply every migration this image knows that the database lacks, all in ONE transaction
#           (a failure anywhere rolls all of it back: the database keeps its previous schema)
#   down    undo this image's own migration (/app/SCHEMA), if it is the newest applied; refuses
#           when the migration has no down file (irreversible) or newer ones are applied on top
#   status  print the database's schema version
# Connection: libpq's PG* variables; the password as PGPASSWORD or a file named by PGPASSWORD_FILE.
# Every applied or undone migration is logged in schema_migration_log (what ran, when, by which version).
set -eu
[ -n "${PGPASSWORD_FILE:-}" ] && [ -z "${PGPASSWORD:-}" ] && PGPASSWORD="$(cat "$PGPASSWORD_FILE")" && export PGPASSWORD
APP=${APP_DIR:-/app}
VERSION=$(cat "$APP/VERSION")
WANT=$(cat "$APP/SCHEMA")
DIR=$APP/migrations
sql() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$@"; }
bootstrap() {
  sql -c "set client_min_messages = warning;
          create table if not exists schema_migrations (version int primary key, name text not null,
            applied_at timestamptz not null default now(), app_version text not null);
          create table if not exists schema_migration_log (id serial primary key, version int not null,
            name text not null, direction text not null, app_version text not null,
            at timestamptz not null default clock_timestamp())" >/dev/null
}
current() { sql -c "select coalesce(max(version), 0) from schema_migrations"; }
file_of() { ls "$DIR/$(printf %04d "$1")"-*."$2".sql 2>/dev/null | head -n 1; }
name_of() { basename "$1" | sed -e 's/\.up\.sql$//' -e 's/\.down\.sql$//'; }

case "${1:-}" in
  status) bootstrap; echo "schema $(current) (app $VERSION needs $WANT)" ;;
  up)
    bootstrap; have=$(current)
    if [ "$have" -ge "$WANT" ]; then
      echo "schema $have: nothing to apply (app $VERSION needs $WANT)"; exit 0
    fi
    script=/tmp/migrate-up.sql; : > "$script"; n=$((have + 1)); names=""
    while [ "$n" -le "$WANT" ]; do
      f=$(file_of "$n" up); [ -n "$f" ] || { echo "migration $n missing from this image" >&2; exit 1; }
      name=$(name_of "$f"); names="$names $name"
      { printf '%s\n' "\\echo applying $name"; cat "$f"
        echo "insert into schema_migrations (version, name, app_version) values ($n, '$name', '$VERSION');"
        echo "insert into schema_migration_log (version, name, direction, app_version) values ($n, '$name', 'up', '$VERSION');"
      } >> "$script"
      n=$((n + 1))
    done
    echo "schema $have -> $WANT:$names (one transaction)"
    sql --single-transaction -f "$script"
    echo "schema now $(current)" ;;
  down)
    bootstrap; have=$(current)
    if [ "$have" -lt "$WANT" ]; then echo "schema $have: migration $WANT is not applied, nothing to undo"; exit 0; fi
    if [ "$have" -gt "$WANT" ]; then
      echo "schema $have is newer than $WANT: undo the newer migrations first (with their own images)" >&2; exit 1
    fi
    f=$(file_of "$WANT" down); up=$(file_of "$WANT" up)
    [ -n "$f" ] || { echo "migration $(name_of "$up") is irreversible: no down migration exists" >&2; exit 1; }
    name=$(name_of "$f")
    echo "schema $have -> $((WANT - 1)): undo $name (one transaction)"
    { cat "$f"
      echo "delete from schema_migrations where version = $WANT;"
      echo "insert into schema_migration_log (version, name, direction, app_version) values ($WANT, '$name', 'down', '$VERSION');"
    } | sql --single-transaction
    echo "schema now $(current)" ;;
  *) echo "usage: migrate up|down|status" >&2; exit 2 ;;
esac
