# shellcheck shell=bash
# Pidfiles that survive their process. Source it.
#
# Between sessions (and in CI, on a machine the last session ran on) every process is ended
# but the pidfiles under ~/.cache and /run stay. Pids are reused: the next `cluster.sh up`
# starts a few hundred processes, and one of them can get the pid an old pidfile names.
# `kill -0` then says "alive", and the script either skips starting its daemon or, worse,
# stops a stranger. (CI run of stop 25: "dockerd pid 28501 is alive but the socket does not
# answer" -- 28501 was a process the cluster had started a second earlier.)
#
# So a pidfile written here holds the pid and that process's start time (field 22 of
# /proc/<pid>/stat, clock ticks since boot), and a pid counts only while both still match.
# The start time does not move with the wall clock, so an NTP step cannot fake a mismatch.

# process_start_ticks PID: the process's start time, empty if there is no such live process.
process_start_ticks() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }                  # after "pid (comm) ": comm may hold spaces and parens
  set -- $stat                       # $1 state, $2 ppid, ... $20 starttime
  [ "$1" != Z ] && [ "$1" != X ] || return 1   # a zombie has ended; only its parent has not reaped it
  echo "${20}"
}

# pidfile_write FILE PID: remember PID as the process FILE stands for.
pidfile_write() {
  local ticks; ticks=$(process_start_ticks "$2") || ticks=""
  printf '%s %s\n' "$2" "$ticks" > "$1"
}

# pidfile_pid FILE [COMM]: print the pid FILE names if that very process still runs.
# A file holding only a pid (written by the daemon itself, as dockerd's --pidfile is, or by
# an older version of these scripts) has no start time to compare; then COMM, the process
# name /proc/<pid>/comm must show (15 characters at most), decides, and without COMM it does
# not count.
pidfile_pid() {
  local file=$1 comm=${2:-} pid ticks now
  [ -f "$file" ] || return 1
  read -r pid ticks < "$file" || [ -n "${pid:-}" ] || return 1
  case $pid in ''|*[!0-9]*) return 1 ;; esac
  now=$(process_start_ticks "$pid") || return 1
  if [ -n "${ticks:-}" ]; then
    [ "$ticks" = "$now" ] || return 1
  else
    [ -n "$comm" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "${comm:0:15}" ] || return 1
  fi
  echo "$pid"
}
