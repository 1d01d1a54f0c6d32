"""A worker's label names its node (KVMCLUSTER_WORKER_NAME, else the host name), its machine and its process;
leases and jobs carry it, and a process of this machine that is gone is seen as dead at once (no DB)."""

import os
import socket
import subprocess
import sys

import pytest

from kvmcluster.workers import check_name, is_dead_here, parse_label, worker_label, worker_name


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_name_defaults_to_the_host_name(settings):
    settings.WORKER_NAME = ""
    assert worker_name() == socket.gethostname()
    assert worker_label() == f"{socket.gethostname()}/{socket.gethostname()}:{os.getpid()}"


def test_the_configured_name_leads_the_label(settings):
    settings.WORKER_NAME = "worker-2.rack-b"
    assert worker_label() == f"worker-2.rack-b/{socket.gethostname()}:{os.getpid()}"
    assert parse_label(worker_label()).name == "worker-2.rack-b"


@pytest.mark.parametrize("bad", ["", "a/b", "a:b", "with space", "-leading-dash", "x" * 65, "ünï"])
def test_a_name_that_would_break_the_label_is_refused(settings, bad):
    settings.WORKER_NAME = bad or "x/y"  # "" means "the host name", so the empty case is checked directly
    with pytest.raises(ValueError, match="KVMCLUSTER_WORKER_NAME"):
        worker_name()
    with pytest.raises(ValueError):
        check_name(bad)


def test_a_label_reads_back_into_its_parts():
    label = parse_label("node-1/hv-mgmt-3:4242")
    assert (label.name, label.host, label.pid) == ("node-1", "hv-mgmt-3", 4242)


def test_older_holders_and_owners_still_read():
    """Leases and jobs written before names existed: `<host>:<pid>` and `<host>:<pid>:<suffix>`."""
    assert parse_label("hv-mgmt-3:4242") == parse_label("hv-mgmt-3:4242:0a1b2c3d")
    assert parse_label("hv-mgmt-3:4242").name == "hv-mgmt-3"
    assert parse_label("nonsense").pid is None


def test_a_gone_process_of_this_machine_is_dead_whatever_the_name():
    here = socket.gethostname()
    assert is_dead_here(f"node-1/{here}:{dead_pid()}")
    assert is_dead_here(f"{here}:{dead_pid()}:abcd")
    assert not is_dead_here(f"node-1/{here}:{os.getpid()}")


def test_a_killed_process_not_yet_reaped_is_dead():
    """A worker killed with its cluster stays a zombie until init reaps it (about 2 s here); kill(pid, 0)
    still succeeds on it, yet its job has no one left to run it."""
    proc = subprocess.Popen(["sleep", "60"])
    try:
        assert not is_dead_here(f"node-1/{socket.gethostname()}:{proc.pid}")  # running
        proc.kill()
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # it has exited; left unreaped: a zombie
        assert is_dead_here(f"node-1/{socket.gethostname()}:{proc.pid}")
    finally:
        proc.kill()
        proc.wait()


def test_a_process_of_another_machine_is_never_judged_from_here():
    """Its pid means nothing here: only its lease's expiry or its job's heartbeat speaks for it."""
    assert not is_dead_here(f"node-1/not-{socket.gethostname()}:{dead_pid()}")
    assert not is_dead_here("")
