"""The one settings module picks its profile from the environment."""

import os
import subprocess
import sys

CODE = (
    "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='kvmcluster.settings'; django.setup();"
    "from django.conf import settings as s;"
    "print(s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'], sorted(s.Q_CLUSTER))"
)

# Production refuses to start without its two keys (tests/unit/test_settings_keys.py).
KEYS = {
    "KVMCLUSTER_SECRET_KEY": "t3st-s3cret-key-0123456789-abcdefghijklmnop",
    "KVMCLUSTER_AUDIT_KEY": "t3st-audit-key-9876543210-qrstuvwxyzABCDEF",
}


def _settings_line(**env) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    out = subprocess.run([sys.executable, "-c", CODE], env={**clean, **env}, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_embedded_profile_needs_no_server():
    line = _settings_line()
    assert line.startswith("django.db.backends.sqlite3 kvmcluster.sqlite_layer.WakeableSQLiteChannelLayer")
    assert "'orm'" in line and "'redis'" not in line


def test_production_profile_uses_postgres_and_redis():
    line = _settings_line(DATABASE_URL="postgres://u@127.0.0.1:5432/x", REDIS_URL="redis://127.0.0.1:6379/0", **KEYS)
    assert line.startswith("django.db.backends.postgresql channels_redis.pubsub.RedisPubSubChannelLayer")
    assert "'redis'" in line and "'orm'" not in line


APPS = (
    "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='kvmcluster.settings'; django.setup();"
    "from django.apps import apps; from django.core.management import get_commands;"
    "print(apps.is_installed('lab'), get_commands().get('lab'))"
)
PRODUCTION = {"DATABASE_URL": "postgres://u@127.0.0.1:5432/x", "REDIS_URL": "redis://127.0.0.1:6379/0", **KEYS}


def _lab_app(**env) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "KVMCLUSTER_LAB")}
    out = subprocess.run([sys.executable, "-c", APPS], env={**clean, **env}, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_production_does_not_install_the_lab():
    assert _lab_app(**PRODUCTION) == "False None"


def test_production_installs_the_lab_only_when_asked():
    assert _lab_app(**PRODUCTION, KVMCLUSTER_LAB="1") == "True lab"


def test_embedded_profile_has_the_lab_command():
    assert _lab_app() == "True lab"
    assert _lab_app(KVMCLUSTER_LAB="0") == "False None"
