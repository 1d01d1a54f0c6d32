#!/usr/bin/env bash
# `make run`: bring up the local lab, the database and demo accounts, then web (daphne) + worker
# (django-q2). Ctrl-C or TERM stops web and worker within 5 s, then the lab (only if this script started it),
# prints one goodbye line and exits 0.
set -euo pipefail
# Logs, collected static files and anything else this run creates are private to its user.
umask 077
cd "$(dirname "$0")/.."
PY=.venv/bin/python
ADDR=${KVMCLUSTER_ADDR:-127.0.0.1}
PORT=${KVMCLUSTER_PORT:-8000}

if (exec 3<>"/dev/tcp/$ADDR/$PORT") 2>/dev/null; then
  echo "run: $ADDR:$PORT is already in use (another 'make run'?); set KVMCLUSTER_PORT=..." >&2
  exit 1
fi

LOG_DIR=${KVMCLUSTER_LOG_DIR:-var/log}
# KVMCLUSTER_RUN_LAB=0: web and worker only, no lab (no root needed; the dashboard then has no hypervisor).
RUN_LAB=${KVMCLUSTER_RUN_LAB:-1}
# The `lab` command's app is installed in the embedded profile only unless asked for (kvmcluster/settings.py):
# `make run` always brings the lab up, so it asks, whichever profile the environment picks.
lab() { KVMCLUSTER_LAB=1 $PY manage.py lab "$@"; }

# stop_group PID: stop the process group PID leads (web and worker are each started with setsid, so the
# group is exactly that process and its children) in under 5 s.
# TERM goes to the leader first: django-q2's qcluster then stops its pusher, its idle workers exit and
# it waits for the busy ones. A busy worker may be inside a guest migration for minutes, so after 2.5 s
# the whole group gets TERM (django-q2's sentinel and workers keep the default action: they end at once;
# the qcluster process then needs about 1 s to exit on a loaded machine). The migration itself runs on
# in libvirt, and the reconciler settles the job at the next start (docs/migrations.md). TERM to the
# whole group at once instead can leave the qcluster process waiting forever on a lock its sentinel died
# holding. KILL is the last resort.
stop_group() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  gone "$pid" 2500 && return 0
  kill -TERM -- "-$pid" 2>/dev/null || return 0
  gone "$pid" 2000 && return 0
  echo "run: process group $pid did not stop; killing it" >&2
  kill -KILL -- "-$pid" 2>/dev/null || true
  gone "$pid" 1000
}
# Microseconds since the epoch (EPOCHREALTIME without its locale's decimal separator).
now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }
# since T0_US: seconds since T0_US, one decimal.
since() {
  local ds=$((($(now_us) - $1) / 100000))
  echo "$((ds / 10)).$((ds % 10))"
}
# gone PID MS: true once no process of session PID (setsid: the same as its group) is left, false if
# some still are after MS milliseconds. Zombies do not count: a killed worker whose parent died with it
# waits for init to reap it, which on some machines takes more than a second (`kill -0` still finds it).
gone() {
  local until=$(($(now_us) + $2 * 1000))
  while ps -o stat= -s "$1" 2>/dev/null | grep -qv '^Z'; do
    (($(now_us) < until)) || return 1
    sleep 0.05
  done
}

web_pid="" worker_pid="" lab_ours="" lab_theirs="" stopping=""
# Prints one line: what it stopped and how long that took.
stop_all() {
  [[ -z $stopping ]] || return 0
  stopping=1
  trap '' INT TERM  # a second Ctrl-C must not cut the stop short (it is bounded anyway)
  local t0 pids=""
  t0=$(now_us)
  printf '\nrun: '
  if [[ -n $web_pid$worker_pid ]]; then
    printf 'stopping web and worker... '
    for pid in $web_pid $worker_pid; do
      stop_group "$pid" &
      pids+=" $!"
    done
    wait $pids || true
    printf 'stopped in %s s' "$(since "$t0")"
  else
    printf 'web and worker were not started'
  fi
  if [[ -n $lab_ours ]]; then
    t0=$(now_us)
    printf '; taking the lab down... '
    if lab down >>"$LOG_DIR/lab.log" 2>&1; then
      printf 'down in %s s' "$(since "$t0")"
    else
      printf 'FAILED (see %s/lab.log)' "$LOG_DIR"
    fi
  elif [[ -n $lab_theirs ]]; then
    printf "; the lab was up before 'make run', so it stays up ('make lab-down' stops it)"
  fi
  printf '. Goodbye.\n'
}
trap stop_all EXIT
# Ctrl-C (or TERM) is how a run is meant to end: a clean stop exits 0.
trap 'stop_all; exit 0' INT TERM

mkdir -p "$LOG_DIR"
$PY manage.py migrate --noinput -v0
# The embedded profile keeps channels-lite's tables in their own SQLite database (alias "channels").
[[ -n ${REDIS_URL:-} ]] || $PY manage.py migrate --database channels --noinput -v0
if [[ $RUN_LAB == 1 ]]; then
  if lab status --exit-code; then lab_theirs=1; else lab_ours=1; fi
  lab up
  # The lab's libvirtd want a SASL login: web and worker find the password through this file (root only).
  export "$(lab env)"
fi
accounts=""
if $PY manage.py help demo_accounts >/dev/null 2>&1; then
  accounts=$($PY manage.py demo_accounts)
else
  echo "run: no demo_accounts command yet; create a user with: $PY manage.py createsuperuser"
fi
$PY manage.py collectstatic --noinput -v0

setsid .venv/bin/daphne -b "$ADDR" -p "$PORT" kvmcluster.asgi:application >>"$LOG_DIR/web.log" 2>&1 &
web_pid=$!
setsid $PY manage.py qcluster >>"$LOG_DIR/worker.log" 2>&1 &
worker_pid=$!

for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/$ADDR/$PORT") 2>/dev/null && break
  kill -0 "$web_pid" 2>/dev/null || { echo "run: web server died; see $LOG_DIR/web.log" >&2; tail -20 "$LOG_DIR/web.log" >&2; exit 1; }
  sleep 0.1
done

cat <<MSG

kvmcluster is running: http://$ADDR:$PORT/
  web pid $web_pid (log $LOG_DIR/web.log), worker pid $worker_pid (log $LOG_DIR/worker.log)
MSG
if [[ -n $accounts ]]; then
  echo "Demo accounts (role username password; passwords are shown only now):"
  echo "$accounts" | sed 's/^/  /'
fi
if [[ -n $lab_ours ]]; then echo "Press Ctrl-C to stop web, worker and the lab."; else echo "Press Ctrl-C to stop web and worker."; fi

# Whichever exits first (or Ctrl-C) ends the run; the EXIT trap stops the rest.
wait -n "$web_pid" "$worker_pid" || true
echo "run: web or worker exited; see $LOG_DIR/" >&2
exit 1
