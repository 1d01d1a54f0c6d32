"""A fresh django-q2 worker warms itself (post_spawn): renders once and opens its libvirt connections,
so the first guest migration it runs does not pay for that in front of the operator."""

import time

import pytest
from django.db import connections

from hosts.drivers.libvirt import connection
from hosts.models import Hypervisor
from migrations_app.orchestrator import warmup
from tests.libvirt_nodes import NodeDomain, write_node

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _close_thread_connections():
    yield
    connections.close_all()


def test_warming_connects_to_every_hypervisor_and_a_dead_one_does_not_stop_it(tmp_path):
    up = write_node(tmp_path / "up.xml", [NodeDomain("web01")])
    Hypervisor.objects.create(name="hv-gone", uri=f"test://{tmp_path / 'no-such-node.xml'}")
    Hypervisor.objects.create(name="hv-up", uri=up)
    assert up not in connection._cache

    warmup.warm().join(timeout=30)

    assert up in connection._cache  # the first migration's libvirt calls reuse it
    assert f"test://{tmp_path / 'no-such-node.xml'}" not in connection._cache


def test_a_spawned_worker_warms_itself(tmp_path):
    from django_q.signals import post_spawn

    up = write_node(tmp_path / "up.xml", [NodeDomain("web01")])
    Hypervisor.objects.create(name="hv-up", uri=up)

    post_spawn.send(sender="django_q", proc_name="Process-test")  # what django-q2 sends in a new worker

    deadline = time.monotonic() + 30
    while up not in connection._cache and time.monotonic() < deadline:
        time.sleep(0.05)
    assert up in connection._cache
