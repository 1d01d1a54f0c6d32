"""Shared fixtures. Each layer (unit, integration, lab, e2e) adds its own conftest."""

import os

import pytest
from django.conf import settings

from hosts.drivers import libvirt as driver

# scripts/test.sh sets this on the suite's second pass (the production profile): tests marked `once`
# exercise nothing the profile changes (the lab itself, driver-level moves, pages that only read), and
# running them twice cost half an hour of a 90-minute CI budget. Run by hand, every test runs.
SECOND_PASS = os.environ.get("KVMCLUSTER_SUITE_PASS") == "second"


def pytest_collection_modifyitems(config, items):
    if not SECOND_PASS:
        return
    once = [item for item in items if item.get_closest_marker("once")]
    if once:
        config.hook.pytest_deselected(items=once)
        items[:] = [item for item in items if not item.get_closest_marker("once")]


@pytest.fixture(autouse=True, scope="session")
def _test_driver_allowed():
    """libvirt's test:/// driver is refused outside the test suite (hosts/drivers/uri.py); here it is
    the fast inventory host. The environment variable reaches the servers and workers tests start."""
    os.environ["KVMCLUSTER_ALLOW_TEST_URIS"] = "1"
    settings.KVMCLUSTER_ALLOW_TEST_URIS = True
    # Every refusal is its own audit row here: no per-window suppression carried from test to test (and
    # no cache.clear(), which on Redis would flush the queue and channel layer sharing its database).
    # tests/security/test_denied_actions_are_audited.py turns the window on where it is the subject.
    settings.DENIAL_AUDIT_WINDOW_SECONDS = 0
    yield


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """Each test gets its own channel layer object. channels-redis keeps its receive lock on the layer,
    bound to the event loop of the first receive; a socket a test left open keeps that lock alive after
    the test's loop is gone, and the next test's receive then fails with "bound to a different event
    loop". Dropping the layer object (not the Redis data) keeps tests from reaching each other's loops."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _pushes_done_before_the_database_is_emptied():
    """A state push runs on its own thread after the change commits; let it finish inside the test that
    caused it, before pytest-django empties the tables (on PostgreSQL the two deadlocked once)."""
    yield
    from migrations_app import events

    events.wait_for_pushes()


@pytest.fixture(autouse=True)
def _fresh_libvirt_connections():
    """test:/// hosts are loaded from their file on open; tests rewrite files, so never reuse."""
    driver.close_all()
    yield
    driver.close_all()
