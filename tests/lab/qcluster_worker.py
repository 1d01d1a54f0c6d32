"""A django-q2 cluster (`qcluster`) on the test databases (names passed as JSON), for lab tests that need the
real worker: its broker, its start-up tasks (the reconciler at spawn) and a process group to kill."""

import json
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvmcluster.settings")
    from django.conf import settings

    for alias, name in json.loads(sys.argv[1]).items():
        if alias in settings.DATABASES:
            settings.DATABASES[alias]["NAME"] = name
    import django

    django.setup()
    from django.core.management import call_command

    call_command("qcluster")
