"""The real two-hypervisor lab, once per test session (the `lab` package does the work).

Without root / qemu / libvirtd the lab tests skip with the reason, except under CI=true, where the lab
must come up and any failure fails the run. A lab that is already running is reused and left running;
one this session started is taken down at the end.
"""

import os

import pytest

import lab as kvmlab
from lab.handle import LabHandle


def _ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def lab():
    try:
        kvmlab.preflight()
    except kvmlab.LabError as exc:
        if _ci():
            pytest.fail(f"CI=true but the lab cannot run here: {exc}", pytrace=False)
        pytest.skip(f"lab unavailable: {exc}")
    try:
        res = kvmlab.up(wait=True)
    except kvmlab.LabError as exc:
        # Root and every binary are there: a lab that does not start is a failure, not a skip.
        pytest.fail(f"lab up failed: {exc}", pytrace=False)
    # Ours to take down only if this call started it from nothing: another session may have started the
    # lab while we waited for its lock, and a lab we merely repaired (one daemon restarted) is not ours.
    ours = {"nfs", *(h.name for h in kvmlab.HOSTS)} <= set(res.started)
    handle = LabHandle(started=ours, up_seconds=res.seconds)
    yield handle
    if handle.started and kvmlab.is_up():
        kvmlab.down()
    elif kvmlab.is_up() and kvmlab.status()["lock_manager"] != "none":
        # A run with KVMLAB_LOCK_MANAGER=sanlock leaves the lab as others expect it: without leases.
        kvmlab.up(lock_manager="none")


LAST = "test_lab_zz_down_and_up.py"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/lab/" in str(item.fspath):
            item.add_marker(pytest.mark.lab)
    # Taking the lab down (and up again) restarts every guest: run it after every other test.
    items.sort(key=lambda item: item.fspath.basename == LAST)


# Guest-migration tests run each job on a thread of this process (tests.lab.migration_support.Runner)
# instead of a django-q2 worker; a test module overrides `runner` when it needs another kind.
@pytest.fixture
def runner(monkeypatch):
    from migrations_app import services
    from tests.lab.migration_support import Runner

    r = Runner()
    monkeypatch.setattr(services.admission, "_enqueue", r.enqueue)
    yield r
    r.join()


@pytest.fixture
def mlab(lab, runner):
    from tests.lab.migration_support import MigrationLab

    return MigrationLab(lab, runner)
