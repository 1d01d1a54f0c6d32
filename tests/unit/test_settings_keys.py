"""Production refuses to start without real keys; the embedded profile makes its own, privately.

Each case starts the settings module in a fresh interpreter with a chosen environment, as web and worker do.
"""

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

CODE = (
    "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='kvmcluster.settings'; django.setup();"
    "from django.conf import settings as s; print(s.SECRET_KEY); print(s.AUDIT_KEY)"
)
PROD = {"DATABASE_URL": "postgres://u@127.0.0.1:5432/x", "REDIS_URL": "redis://127.0.0.1:6379/0"}
GOOD = "k7Qv-2mZp9XwR4tL0aBcDeFgHiJkLmNoPqRsTuVw"
GOOD_AUDIT = "Zx81-yW7vU6tS5rQ4pO3nM2lK1jI0hGfEdCbA9z"
DROP = ("DATABASE_URL", "REDIS_URL", "KVMCLUSTER_SECRET_KEY", "KVMCLUSTER_AUDIT_KEY", "KVMCLUSTER_DATA_DIR")


def _start(data_dir: Path, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in DROP}
    return subprocess.run(
        [sys.executable, "-c", CODE],
        env={**clean, "KVMCLUSTER_DATA_DIR": str(data_dir), **env},
        capture_output=True,
        text=True,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("secret", "audit", "message"),
    [
        (None, GOOD_AUDIT, "KVMCLUSTER_SECRET_KEY is not set"),
        ("dev-only-insecure-key-change-me-in-production", GOOD_AUDIT, "KVMCLUSTER_SECRET_KEY is a public default"),
        ("short-key", GOOD_AUDIT, "KVMCLUSTER_SECRET_KEY is too weak"),
        ("a" * 64, GOOD_AUDIT, "KVMCLUSTER_SECRET_KEY is too weak"),
        (GOOD, None, "KVMCLUSTER_AUDIT_KEY is not set"),
        (GOOD, GOOD, "KVMCLUSTER_AUDIT_KEY must differ from KVMCLUSTER_SECRET_KEY"),
    ],
)
def test_production_refuses_to_start_without_real_keys(tmp_path, secret, audit, message):
    env = {**PROD}
    if secret is not None:
        env["KVMCLUSTER_SECRET_KEY"] = secret
    if audit is not None:
        env["KVMCLUSTER_AUDIT_KEY"] = audit
    out = _start(tmp_path / "data", **env)
    assert out.returncode != 0
    assert "ImproperlyConfigured" in out.stderr and message in out.stderr
    assert not (tmp_path / "data" / "secret.key").exists()  # production never falls back to a generated key


def test_production_starts_with_its_keys(tmp_path):
    out = _start(tmp_path / "data", **PROD, KVMCLUSTER_SECRET_KEY=GOOD, KVMCLUSTER_AUDIT_KEY=GOOD_AUDIT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [GOOD, GOOD_AUDIT]


def test_embedded_generates_private_keys_once_and_reuses_them(tmp_path):
    data = tmp_path / "data"
    first = _start(data)
    assert first.returncode == 0, first.stderr
    secret, audit = first.stdout.split()
    assert len(secret) >= 32 and len(audit) >= 32 and secret != audit
    assert secret != "dev-only-insecure-key-change-me-in-production"
    assert _mode(data) == 0o700
    assert _mode(data / "secret.key") == 0o600 and _mode(data / "audit.key") == 0o600
    assert (data / "secret.key").read_text().strip() == secret
    assert _start(data).stdout.split() == [secret, audit]  # the next start reuses them
    assert _start(tmp_path / "other").stdout.split()[0] != secret  # another install gets its own


def test_embedded_keys_from_the_environment_win(tmp_path):
    out = _start(tmp_path / "data", KVMCLUSTER_SECRET_KEY=GOOD, KVMCLUSTER_AUDIT_KEY=GOOD_AUDIT)
    assert out.stdout.split() == [GOOD, GOOD_AUDIT]


def test_web_and_worker_starting_together_share_one_key(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    clean = {k: v for k, v in os.environ.items() if k not in DROP}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CODE],
            env={**clean, "KVMCLUSTER_DATA_DIR": str(data)},
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    keys = {p.communicate()[0] for p in procs}
    assert len(keys) == 1


def test_data_directory_and_sqlite_files_are_private_even_with_an_open_umask(tmp_path):
    data = tmp_path / "data"
    code = (
        "import os; os.umask(0o022); import django; os.environ['DJANGO_SETTINGS_MODULE']='kvmcluster.settings';"
        "django.setup(); from django.db import connection; c = connection.cursor();"
        "c.execute('CREATE TABLE t (x)'); c.execute('INSERT INTO t VALUES (1)');"
        "import sys; sys.stdout.write(str(connection.settings_dict['NAME'])); sys.stdout.flush();"
        "import time; open(os.environ['READY'], 'w').close(); time.sleep(30)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in DROP}
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env={**clean, "KVMCLUSTER_DATA_DIR": str(data), "READY": str(ready)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(200):
            if ready.exists() or proc.poll() is not None:
                break
            subprocess.run(["sleep", "0.05"])
        db = data / "kvmcluster.sqlite3"
        wal, shm = db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")
        assert wal.exists() and shm.exists(), "the connection is in WAL mode and holds its side files"
        assert _mode(data) == 0o700
        assert {_mode(p) for p in (db, wal, shm, data / "channels.sqlite3")} == {0o600}
    finally:
        proc.kill()
        proc.wait()
    assert sqlite3.connect(db).execute("SELECT x FROM t").fetchall() == [(1,)]


def test_an_existing_open_data_directory_is_tightened(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    (data / "kvmcluster.sqlite3").touch(mode=0o644)
    assert _start(data).returncode == 0
    assert _mode(data) == 0o700 and _mode(data / "kvmcluster.sqlite3") == 0o600


def test_an_empty_key_file_is_replaced_by_a_real_key(tmp_path):
    from kvmcluster.keys import MIN_KEY_LENGTH, install_key

    path = tmp_path / "secret.key"
    path.write_text("")
    key = install_key(path)
    assert len(key) >= MIN_KEY_LENGTH and path.read_text().strip() == key
    assert install_key(path) == key  # and it is kept from then on
