"""A stand-alone "worker" process for test_migration_worker_crash.py: runs the real task body for one
job against the test databases (names passed as JSON), so the test can kill it by PID mid-move."""

import faulthandler
import json
import os
import signal
import sys

if __name__ == "__main__":
    # SIGUSR1 prints every thread's stack to stderr: a test whose worker hangs asks before killing it
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvmcluster.settings")
    from django.conf import settings

    for alias, name in json.loads(sys.argv[2]).items():
        if alias in settings.DATABASES:
            settings.DATABASES[alias]["NAME"] = name
    import django

    django.setup()
    from migrations_app.tasks import run_migration

    print(run_migration(int(sys.argv[1])), flush=True)
