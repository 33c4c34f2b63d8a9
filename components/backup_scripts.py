"""The shell the backup and restore jobs run in the PostgreSQL image (busybox sh, pg_dump, tar).

One backup *set* per run, all named after the run's UTC time `<ts>` in `$BACKUP_DIR`:
`<ts>.dump` (+ `.sha256`) and, per declared volume (components/config/volumes.py), `<ts>.<volume>.tar`
(+ `.sha256`) and `<ts>.<volume>.files.sha256` (every file's sha256). Each file is written under a
`.partial` name first; the dump is renamed last, so a set is good exactly when its `<ts>.dump` exists.

Rules the runbook asks for (docs/runbooks/backups.md):
- Before writing, the job compares the backup volume's free space with what the set will need (the
  last dump and the volumes' current size, plus 10 % and 1 MiB). Short of space, it
  refuses: exit 1 with a message saying so. It never deletes an older good backup to make room:
  retention runs only after a new set is complete. A write that still runs out of space removes
  only this run's own files and fails the same way.
- Every run, whatever its end, writes the metrics BackupStale/BackupFailed read
  (`platform_backup_last_success_timestamp_seconds`, `platform_backup_last_run_status`,
  `platform_backup_space_short`), in place if the full volume has no room for a new file.
- Retention by age (`RETENTION_DAYS`) and by count (`RETENTION_COUNT`, empty: no limit); the newest
  good set is never deleted, however old.

The restore script restores one set (`RESTORE_BACKUP`, default the newest good one) either into a
scratch database and directory (`RESTORE_INTO=scratch`, the drill) or over the live database and
volumes (`RESTORE_INTO=live`), verifying every checksum, and prints one JSON report line.
"""

from __future__ import annotations

# On Docker the password arrives as a file (docs/conventions.md); libpq reads PGPASSWORD.
LOAD_PASSWORD = '[ -n "${PGPASSWORD_FILE:-}" ] && PGPASSWORD="$(cat "$PGPASSWORD_FILE")" && export PGPASSWORD'

# Where the backup job mounts each declared volume (its name is `<service>-<volume>`).
VOLUMES_ROOT = "/volumes"

_METRICS = r'''
metrics() { # status space_short: written on every exit; in place when the volume has no room for a new file
  mkdir -p "$BACKUP_DIR/.metrics" 2>/dev/null || true
  last=$(cat "$BACKUP_DIR/last_success" 2>/dev/null || echo 0)
  text=$(printf 'platform_backup_last_success_timestamp_seconds{database="%s"} %s\nplatform_backup_last_run_status{database="%s"} %s\nplatform_backup_space_short{database="%s"} %s\n' \
    "$DATABASE" "$last" "$DATABASE" "$1" "$DATABASE" "$2")
  if ! { printf '%s\n' "$text" > "$BACKUP_DIR/.metrics/metrics.tmp" && mv "$BACKUP_DIR/.metrics/metrics.tmp" "$BACKUP_DIR/.metrics/metrics"; } 2>/dev/null; then
    rm -f "$BACKUP_DIR/.metrics/metrics.tmp"
    printf '%s\n' "$text" > "$BACKUP_DIR/.metrics/metrics" || echo "backup of $DATABASE: could not even write its metrics" >&2
  fi
}
'''

_ROOT = f'VOLUMES_ROOT="${{VOLUMES_ROOT:-{VOLUMES_ROOT}}}"\n'

BACKUP = LOAD_PASSWORD + "\n" + _ROOT + _METRICS + r'''
set -u
short=0 committed=0
finish() {
  code=$?
  # A failed run leaves nothing of its own set behind (unless its dump, the commit point, made it good).
  if [ $code -eq 0 ]; then metrics 1 0
  else [ "$committed" = 1 ] || rm -f "$BACKUP_DIR/$ts".* 2>/dev/null; metrics 0 "$short"; fi
  exit $code
}
ts=$(date -u +%Y%m%dT%H%M%SZ)
trap finish EXIT
mkdir -p "$BACKUP_DIR" && cd "$BACKUP_DIR" || exit 1
# The restore job may run as the services' user in this group (a live restore writes their
# volumes; Kubernetes): its drill needs room here too.
chmod g+w "$BACKUP_DIR" 2>/dev/null || true
# One set per second: a second run within the same second waits, never writes over a good set's files.
while [ -e "$ts.dump" ] || [ -n "$(ls -1 | grep -F "$ts." | head -n 1)" ]; do sleep 1; ts=$(date -u +%Y%m%dT%H%M%SZ); done
if command -v flock >/dev/null 2>&1; then
  exec 9>>"$BACKUP_DIR/.lock"
  flock -n 9 || { echo "backup of $DATABASE: another backup run holds $BACKUP_DIR/.lock; not starting a second" >&2; exit 1; }
fi
kib() { du -sk "$@" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
free_kib() { df -Pk "$BACKUP_DIR" | awk 'NR == 2 {print $4}'; }
out_of_space() { grep -qi 'no space' /tmp/backup.err 2>/dev/null || [ "$(free_kib)" -lt 1024 ]; }
refuse() { # what failed
  short=1
  echo "backup of $DATABASE REFUSED: $1. The backup volume $BACKUP_DIR has $(free_kib) KiB free. Older good backups are kept (none is deleted to make room); free space on the backup volume or make it bigger (docs/runbooks/backups.md)." >&2
  exit 1
}
newest=$(ls -1 | grep -E '^[0-9]{8}T[0-9]{6}Z\.dump$' | sort | tail -n 1)
# What this set will take: the last dump (the database rarely shrinks) and the volumes as they are now.
need=$([ -n "$newest" ] && kib "$newest" || echo 0)
for v in ${VOLUMES:-}; do need=$((need + $(kib "$VOLUMES_ROOT/$v"))); done
need=$((need + need / 10 + 1024))
have=$(free_kib)
[ "$have" -ge "$need" ] || refuse "this backup needs about $need KiB (the last dump and the volumes now, plus 10 % and 1 MiB), only $have KiB are free"
for v in ${VOLUMES:-}; do
  [ -d "$VOLUMES_ROOT/$v" ] || { echo "backup of $DATABASE: volume $v is not mounted at $VOLUMES_ROOT/$v" >&2; exit 1; }
  # Every file's checksum first, then the archive: the drill checks each restored file against it.
  (cd "$VOLUMES_ROOT/$v" && find . -type f -exec sha256sum {} \; ) > "$ts.$v.files.sha256.partial" 2>"/tmp/backup.err" \
    || { cat /tmp/backup.err >&2; out_of_space && refuse "writing the file list of volume $v ran out of space"; exit 1; }
  tar -cf "$ts.$v.tar.partial" -C "$VOLUMES_ROOT/$v" . 2>"/tmp/backup.err" \
    || { cat /tmp/backup.err >&2; out_of_space && refuse "archiving volume $v ran out of space"; exit 1; }
  mv "$ts.$v.files.sha256.partial" "$ts.$v.files.sha256"
  mv "$ts.$v.tar.partial" "$ts.$v.tar"
  sha256sum "$ts.$v.tar" > "$ts.$v.tar.sha256.partial" && mv "$ts.$v.tar.sha256.partial" "$ts.$v.tar.sha256" \
    || refuse "writing the checksum of volume $v ran out of space"
done
pg_dump --format=custom --file="$ts.dump.partial" 2>"/tmp/backup.err" \
  || { cat /tmp/backup.err >&2; out_of_space && refuse "pg_dump ran out of space"; exit 1; }
sha256sum "$ts.dump.partial" | sed 's/\.partial$//' > "$ts.dump.sha256.partial" || refuse "writing the dump's checksum ran out of space"
mv "$ts.dump.sha256.partial" "$ts.dump.sha256"
# The commit point: only now is this set a good backup that retention and restores may use.
mv "$ts.dump.partial" "$ts.dump" && committed=1
date -u +%s > last_success.partial && mv last_success.partial last_success || refuse "recording the success ran out of space"
# Retention, newest first: the newest good set always stays; older ones go by count or by age.
now=$(date +%s) index=0
for dump in $(ls -1 | grep -E '^[0-9]{8}T[0-9]{6}Z\.dump$' | sort -r); do
  index=$((index + 1))
  [ $index -eq 1 ] && continue
  age=$((now - $(stat -c %Y "$dump")))
  if [ $age -ge $((RETENTION_DAYS * 86400)) ] || { [ -n "${RETENTION_COUNT:-}" ] && [ $index -gt "$RETENTION_COUNT" ]; }; then
    rm -f "${dump%.dump}".*
    echo "retention: deleted backup set ${dump%.dump} (number $index, $((age / 3600)) h old)"
  fi
done
echo "backup $ts ok: $(kib "$ts".*) KiB (dump $(wc -c < "$ts.dump") bytes; volumes: ${VOLUMES:-none})"
'''

RESTORE = LOAD_PASSWORD + "\n" + _ROOT + r'''
set -eu
cd "$BACKUP_DIR"
into=${RESTORE_INTO:-scratch}
case $into in scratch|live) ;; *) echo "restore: RESTORE_INTO is '$into', expected scratch or live" >&2; exit 2 ;; esac
if [ -n "${RESTORE_BACKUP:-}" ]; then set_id=$RESTORE_BACKUP
else set_id=$(ls -1 | grep -E '^[0-9]{8}T[0-9]{6}Z\.dump$' | sort | tail -n 1 | sed 's/\.dump$//'); fi
echo "$set_id" | grep -qE '^[0-9]{8}T[0-9]{6}Z$' && [ -f "$set_id.dump" ] || { echo "restore: no good backup set '${set_id:-}' in $BACKUP_DIR (sets: $(ls -1 | grep -E '\.dump$' | tr '\n' ' '))" >&2; exit 1; }
sha256sum -c "$set_id.dump.sha256"
for v in ${VOLUMES:-}; do
  [ -f "$set_id.$v.tar" ] || { echo "restore: backup set $set_id has no archive of volume $v" >&2; exit 1; }
  sha256sum -c "$set_id.$v.tar.sha256"
done
if [ "$into" = live ]; then
  # Before anything is overwritten: every volume must take the restore's files, or nothing is restored.
  for v in ${VOLUMES:-}; do
    probe="$VOLUMES_ROOT/$v/.restore-probe.$$"
    { : > "$probe" && rm -f "$probe"; } 2>/dev/null || { echo "restore: volume $v ($VOLUMES_ROOT/$v) is not writable by the restore job (uid $(id -u)); nothing was restored (docs/runbooks/backups.md)" >&2; exit 1; }
  done
fi
start=$(date +%s)
work="" scratch=""
cleanup() { [ -z "$work" ] || rm -rf "$work"; [ -z "$scratch" ] || dropdb --if-exists "$scratch"; }
trap cleanup EXIT
if [ "$into" = scratch ]; then
  # Scratch on the backup volume (sized for one more set), not /tmp (a small emptyDir on
  # Kubernetes). A live restore writes nothing there: only the database and the volumes.
  work=$(mktemp -d "$BACKUP_DIR/.restore.XXXXXX")
  scratch="restore_drill_$(date -u +%Y%m%d%H%M%S)"
  createdb "$scratch"
  pg_restore --no-owner --dbname="$scratch" "$set_id.dump"
  db=$scratch
else
  # The schema exactly as the dump has it, in one transaction: `pg_restore --clean` drops only
  # what the dump holds, so a table a later migration created would survive the restore.
  { echo 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;'; pg_restore --no-owner --file=- "$set_id.dump"; } \
    | psql -q -v ON_ERROR_STOP=1 --single-transaction --file=- --dbname="$PGDATABASE" > /dev/null
  db=$PGDATABASE
fi
tables=$(psql -tA -d "$db" -c "select count(*) from information_schema.tables where table_schema not in ('pg_catalog', 'information_schema')")
volumes=""
for v in ${VOLUMES:-}; do
  # Scratch: the job's own user owns the copies (-o); live: owners as they were (root on Docker).
  if [ "$into" = scratch ]; then dest="$work/$v"; mkdir -p "$dest"; tar -xof "$set_id.$v.tar" -C "$dest"
  else dest="$VOLUMES_ROOT/$v"; find "$dest" -mindepth 1 -maxdepth 1 -exec rm -rf {} \; ; tar -xpf "$set_id.$v.tar" -C "$dest"; fi
  # Every file as it was at backup time, by its own checksum.
  (cd "$dest" && sha256sum -c "$BACKUP_DIR/$set_id.$v.files.sha256" > /dev/null) \
    || { echo "restore: restored files of volume $v do not match their checksums" >&2; exit 1; }
  files=$(wc -l < "$set_id.$v.files.sha256")
  listed=$(sha256sum < "$set_id.$v.files.sha256" | cut -c1-64)
  volumes="$volumes${volumes:+,}\"$v\":{\"files\":$files,\"files_verified\":$files,\"kib\":$(du -sk "$dest" | cut -f1),\"file_list_sha256\":\"$listed\"}"
done
end=$(date +%s)
age=$((end - $(date -r "$set_id.dump" +%s)))
printf '{"drill":"restore","into":"%s","backup":"%s","dump":"%s.dump","backup_finished_at":%s,"tables":%s,"volumes":{%s},"rto_seconds":%s,"rpo_seconds":%s}\n' \
  "$into" "$set_id" "$set_id" "$(date -r "$set_id.dump" +%s)" "$tables" "$volumes" "$((end - start))" "$age"
'''


def backup_script() -> str:
    return BACKUP


def restore_script() -> str:
    return RESTORE
