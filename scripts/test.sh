#!/usr/bin/env bash
# The whole test suite, in both profiles: embedded (SQLite, no servers) and production
# (PostgreSQL + Redis on loopback). Called by `make test`, which installs first.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

ensure_services() {
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "test: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
  fi
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "test: starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    for _ in $(seq 50); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.2; done
  fi
}

status=0
step() { echo "== $*"; "$@" || status=1; }

# ruff check, ruff format --check, manage.py check, makemigrations --check (-k: all of them, even after a failure)
step make --no-print-directory -k lint

export KVMCLUSTER_DATA_DIR=${KVMCLUSTER_DATA_DIR:-$(mktemp -d /tmp/kvmcluster-test.XXXXXX)}
echo "== embedded profile (SQLite + channels-lite + django-q2 ORM broker)"
env -u DATABASE_URL -u REDIS_URL $PY -m pytest --durations=20 "$@" || status=1

ensure_services
echo "== production profile (PostgreSQL + Redis)"
# Production refuses to start without real keys (kvmcluster.keys): give this run its own throw-away pair.
# The second pass leaves out the tests marked `once` (tests/conftest.py): the embedded pass ran them.
DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/kvmcluster} \
REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/5} \
KVMCLUSTER_SECRET_KEY=${KVMCLUSTER_SECRET_KEY:-$($PY -c 'import secrets; print(secrets.token_urlsafe(50))')} \
KVMCLUSTER_AUDIT_KEY=${KVMCLUSTER_AUDIT_KEY:-$($PY -c 'import secrets; print(secrets.token_urlsafe(50))')} \
KVMCLUSTER_SUITE_PASS=second \
  $PY -m pytest --durations=20 "$@" || status=1

exit $status
