"""tests/scale: several web and worker nodes on PostgreSQL + Redis (the production profile only).

The two-worker deployment on the real lab (tests/scale/two_workers.py) is shared by the tests of a module
(`deployment`): starting two webs and two workers and registering the lab costs ~20 s, and each test
leaves every worker running, whatever it killed. Not across modules: the deployments of the tests
share one Redis database, and django-q2's queue there is named after the cluster, so two deployments
alive at once (this one and tests/scale/test_deploy_behind_proxy.py's) would take each other's tasks.
The browser is per module for the same reason: that module runs a Playwright of its own.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from tests.e2e.lab_support import guest_on_hv_a
from tests.scale.two_workers import NAMES, TwoWorkers, deploy
from tests.servers import chromium, drop_server_env, server_env

PRODUCTION = bool(os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))
GUEST = "lab-g1"


def pytest_collection_modifyitems(config, items):
    if PRODUCTION:
        return
    skip = pytest.mark.skip(
        reason="several web and worker nodes share one PostgreSQL and one Redis: the production profile only"
    )
    for item in items:
        if item.path.parent == Path(__file__).parent:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def lab_guest():
    """The lab up with lab-g1 on hv-a (the LabHandle); back on hv-a at the end."""
    yield from guest_on_hv_a(GUEST)


@pytest.fixture(autouse=True)
def _lab_daemons_alive(request):
    """A lab test starts with both libvirtds answering: one found dead is started again, and the test
    warns with the end of its logs. (Once in CI, hv-a's libvirtd was gone when a test of this tier began,
    after lab_guest had found it answering: every lab test after it failed on "connection refused",
    with nothing to say why.)"""
    if "lab_guest" in request.fixturenames:
        for host, logs in request.getfixturevalue("lab_guest").revive().items():
            warnings.warn(
                f"the lab's libvirtd of {host} was dead at the start of this test; started again. {logs}", stacklevel=2
            )
    yield


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, lab_guest) -> TwoWorkers:
    server = server_env(tmp_path_factory.mktemp("scale-data"), tag="scale")
    nodes = deploy(server)
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()
        for name in [*NAMES, "web-1", "web-2"]:
            if nodes.log(name).exists():  # shown on failure (a web's log holds its tracebacks)
                print(f"--- {name} log (tail)\n{nodes.log(name).read_text()[-3000:]}")
        drop_server_env(server)


@pytest.fixture
def all_workers(deployment: TwoWorkers):
    """Every worker node running before and after the test (a test that killed one gets it back)."""
    for name in NAMES:
        if name not in deployment.workers:
            deployment.start_worker(name)
    yield deployment
    for name in NAMES:
        if name not in deployment.workers:
            deployment.start_worker(name)


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched
