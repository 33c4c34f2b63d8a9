#!/usr/bin/env bash
# A background CPU hog, for running the test command on a busy machine (issue 17: the test
# command must pass with both cores saturated). One busy-looping process per core asked for,
# at normal priority, recorded in a pid file so `stop` ends exactly those processes.
#   scripts/cpu-hog.sh start [N]   start N hogs (default: every core, nproc)
#   scripts/cpu-hog.sh stop        stop the hogs this script started
#   scripts/cpu-hog.sh status      how many are running
# scripts/test.sh starts and stops it itself when DEPLOY_TEST_CPU_HOG=N is set.
set -euo pipefail
pid_file="${DEPLOY_CPU_HOG_PID_FILE:-/run/deployplatform-cpu-hog.pids}"

running() {
  [[ -f "$pid_file" ]] || return 0
  while read -r pid; do
    if kill -0 "$pid" 2>/dev/null && grep -q cpu-hog "/proc/$pid/cmdline" 2>/dev/null; then
      echo "$pid"
    fi
  done <"$pid_file"
}

case "${1:-}" in
  start)
    count="${2:-$(nproc)}"
    [[ "$count" =~ ^[1-9][0-9]*$ ]] || { echo "cpu-hog: N must be a positive integer, got '$count'" >&2; exit 2; }
    if [[ -n "$(running)" ]]; then
      echo "cpu-hog: already running ($(running | wc -l) processes, $pid_file)" >&2; exit 1
    fi
    : >"$pid_file"
    for _ in $(seq "$count"); do
      # exec -a names the loop so `stop` only ever signals processes it started.
      (exec -a deployplatform-cpu-hog bash -c 'while :; do :; done') &
      echo $! >>"$pid_file"
    done
    echo "cpu-hog: $count busy processes started ($(paste -sd' ' "$pid_file"))"
    ;;
  stop)
    pids="$(running)"
    [[ -z "$pids" ]] || kill $pids
    rm -f "$pid_file"
    if [[ -n "$pids" ]]; then echo "cpu-hog: stopped $(echo $pids | wc -w) processes"; else echo "cpu-hog: nothing was running"; fi
    ;;
  status)
    echo "cpu-hog: $(running | wc -l) running"
    ;;
  *)
    echo "usage: $0 start [N] | stop | status" >&2; exit 2 ;;
esac
