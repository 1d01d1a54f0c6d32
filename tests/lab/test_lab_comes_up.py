"""The lab comes up: two libvirt hosts answer over their URIs, as distinct hosts, each with its own bridges."""

import subprocess
from pathlib import Path

import pytest

import lab as kvmlab
from hosts.drivers import libvirt as driver
from lab.hypervisors import qemu_pids
from lab.procs import start_time

pytestmark = pytest.mark.once


def test_lab_status_reports_every_process_running(lab):
    st = kvmlab.status()
    assert st["up"] is True
    assert st["processes"]["ganesha"]["running"] is True
    assert [h["name"] for h in st["hosts"] if h["running"]] == ["hv-a", "hv-b"]


def test_both_hosts_answer_over_their_uris_with_distinct_host_uuids(lab):
    infos = {name: driver.probe(uri) for name, uri in lab.uris.items()}
    assert lab.uris == {"hv-a": "qemu+tcp://127.0.55.2/system", "hv-b": "qemu+tcp://127.0.55.3/system"}
    assert {name: info.hostname for name, info in infos.items()} == {"hv-a": "hv-a", "hv-b": "hv-b"}
    assert infos["hv-a"].host_uuid != infos["hv-b"].host_uuid
    assert infos["hv-a"].host_uuid == kvmlab.host("hv-a").host_uuid


def test_each_host_shows_its_own_bridges(lab):
    # hv-a's view has a bridge hv-b lacks: the "bridge missing on the target" refusal is real.
    bridges = {name: driver.probe(uri).bridges for name, uri in lab.uris.items()}
    assert "br0" in bridges["hv-a"] and "br0" in bridges["hv-b"]
    assert "br-a-only" in bridges["hv-a"]
    assert "br-a-only" not in bridges["hv-b"]


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def test_each_libvirtd_runs_under_a_reaper_that_adopts_its_guests(lab):
    """This machine's init reaps orphans 1.1-1.5 s late and libvirt waits for the reaping on every
    move, destroy and shutdown. A daemonized QEMU is an orphan, so it must hang under the lab's tini."""
    adopted = []
    for name in ("hv-a", "hv-b"):
        libvirtd = next(h["pid"] for h in kvmlab.status()["hosts"] if h["name"] == name)
        reaper = int(_status(libvirtd)["PPid"])
        assert _status(reaper)["Name"] == "tini"
        for pid in qemu_pids(kvmlab.paths(), name):
            # a QEMU older than this libvirtd (started before a daemon restart) was adopted by init
            if start_time(pid) > start_time(libvirtd):
                assert int(_status(pid)["PPid"]) == reaper, f"QEMU {pid} of {name} is not its reaper's child"
                adopted.append(pid)
    assert adopted  # the lab always runs guests


def test_each_host_finds_the_lab_names_in_its_own_hosts_file(lab):
    """libvirtd resolves its own name for getHostname and for every migration's cookie. A name only DNS
    could answer sent a query off the loopback each time, and one in a few dozen took 5 s here."""
    for name in ("hv-a", "hv-b"):
        libvirtd = next(h["pid"] for h in kvmlab.status()["hosts"] if h["name"] == name)
        found = subprocess.run(
            ["nsenter", "-t", str(libvirtd), "-m", "-u", "getent", "-s", "files", "hosts", "hv-a", "hv-b"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert found == ["127.0.55.2", "hv-a", "127.0.55.3", "hv-b"], name
        assert (
            subprocess.run(
                ["nsenter", "-t", str(libvirtd), "-u", "hostname"], capture_output=True, text=True
            ).stdout.strip()
            == name
        )
