#!/usr/bin/env bash
# `make run`: bring up the local lab, the database and demo accounts, then web (daphne) + worker
# (django-q2). Ctrl-C or TERM stops web, worker and the lab (the lab only if this script started it).
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

# The `lab` command's app is installed in the embedded profile only unless asked for (kvmcluster/settings.py):
# `make run` always brings the lab up, so it asks, whichever profile the environment picks.
lab() { KVMCLUSTER_LAB=1 $PY manage.py lab "$@"; }

web_pid="" worker_pid="" lab_ours=""
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "run: stopping web and worker"
  # Each was started as the leader of its own process group (setsid), so the group is exactly it and
  # its children (qcluster forks workers). Stop the groups, give running tasks 20 s, then kill.
  for pid in $web_pid $worker_pid; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in $web_pid $worker_pid; do
    for _ in $(seq 200); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  if [[ -n $lab_ours ]]; then
    echo "run: taking the lab down"
    lab down || true
  else
    echo "run: the lab was running before 'make run'; leaving it up ('make lab-down' stops it)"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

$PY manage.py migrate --noinput -v0
# The embedded profile keeps channels-lite's tables in their own SQLite database (alias "channels").
[[ -n ${REDIS_URL:-} ]] || $PY manage.py migrate --database channels --noinput -v0
lab status --exit-code || lab_ours=1
lab up
# The lab's libvirtd want a SASL login: web and worker find the password through this file (root only).
export "$(lab env)"
accounts=""
if $PY manage.py help demo_accounts >/dev/null 2>&1; then
  accounts=$($PY manage.py demo_accounts)
else
  echo "run: no demo_accounts command yet; create a user with: $PY manage.py createsuperuser"
fi
$PY manage.py collectstatic --noinput -v0

mkdir -p var/log
setsid .venv/bin/daphne -b "$ADDR" -p "$PORT" kvmcluster.asgi:application >>var/log/web.log 2>&1 &
web_pid=$!
setsid $PY manage.py qcluster >>var/log/worker.log 2>&1 &
worker_pid=$!

for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/$ADDR/$PORT") 2>/dev/null && break
  kill -0 "$web_pid" 2>/dev/null || { echo "run: web server died; see var/log/web.log" >&2; tail -20 var/log/web.log >&2; exit 1; }
  sleep 0.1
done

cat <<MSG

kvmcluster is running: http://$ADDR:$PORT/
  web pid $web_pid (log var/log/web.log), worker pid $worker_pid (log var/log/worker.log)
MSG
if [[ -n $accounts ]]; then
  echo "Demo accounts (role username password; passwords are shown only now):"
  echo "$accounts" | sed 's/^/  /'
fi
echo "Press Ctrl-C to stop web, worker and the lab."

# Whichever exits first (or Ctrl-C) ends the run; the EXIT trap stops the rest.
wait -n "$web_pid" "$worker_pid" || true
echo "run: web or worker exited; see var/log/" >&2
