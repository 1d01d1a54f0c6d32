"""Warm a fresh django-q2 worker process before its first guest migration.

A new worker pays once for imports (~80 ms here), template compiles and first renders (a first state
push took ~80-160 ms, later ones ~26 ms) and libvirt connections. Each of the cluster's workers is
fresh after a start or a recycle, so without this the first few migrations paid it in front of the
operator: the re-run pre-flight competed with the push for the interpreter. post_spawn calls warm().
"""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections

log = logging.getLogger(__name__)


def warm() -> threading.Thread:
    """Imports and renders here (no I/O but the DB); libvirt connections on the returned thread, so a
    dead host's timeout never keeps the worker from taking tasks."""
    import migrations_app.orchestrator.run  # noqa: F401 - the code a migration task runs
    from migrations_app import events

    try:
        events.render_once()
    except Exception:  # warming is an optimisation; the worker must start regardless
        log.exception("could not pre-render the migration pushes")
    finally:
        close_old_connections()
    connecting = threading.Thread(target=_connect_hypervisors, name="warm-libvirt", daemon=True)
    connecting.start()
    return connecting


def _connect_hypervisors() -> None:
    from hosts.drivers import libvirt as driver
    from hosts.drivers.types import DriverError
    from hosts.models import Hypervisor

    try:
        for uri in Hypervisor.objects.values_list("uri", flat=True):
            try:
                driver.host_info(uri)  # opens and caches this process's connection
            except DriverError:
                continue
    except Exception:  # as above
        log.exception("could not pre-connect to the hypervisors")
    finally:
        close_old_connections()
