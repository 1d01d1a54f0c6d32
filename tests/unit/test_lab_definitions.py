"""The lab's guest definitions and error messages, without running anything (no root, no libvirt)."""

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lab import config, guests, procs
from lab.hypervisors import hosts_file


@pytest.fixture
def paths(tmp_path):
    return config.Paths(tmp_path / "kvmlab")


def test_guest_disk_is_an_nfs_network_disk_on_the_export_with_the_specs_cache(paths):
    for spec in config.GUESTS:
        root = ET.fromstring(guests.domain_xml(paths, spec))
        disk = root.find("devices/disk")
        assert disk.get("type") == "network"
        assert disk.find("source").get("protocol") == "nfs"
        assert disk.find("source").get("name") == str(paths.export / f"{spec.name}.qcow2")
        assert disk.find("source/host").get("name") == "127.0.0.1"
        assert disk.find("driver").get("cache") == spec.cache
    assert config.guest("lab-gcache").cache == "writeback"
    assert {g.cache for g in config.GUESTS if g.start} == {"none"}


def test_guest_is_tcg_with_workload_on_the_kernel_cmdline(paths):
    root = ET.fromstring(guests.domain_xml(paths, config.guest("lab-g1"), fill=40, dirty=3))
    assert root.get("type") == "qemu"
    assert root.find("memory").text == "256"
    assert "fill=40 dirty=3" in root.find("os/cmdline").text
    assert root.find("uuid").text == guests.uuid_of("lab-g1")
    assert "burn=" not in root.find("os/cmdline").text  # idle guests' command lines read as before


def test_burn_puts_busy_loops_on_the_command_line_and_init_starts_them(paths):
    spec = config.GuestSpec("lab-gburn", "hv-a", burn=2)
    assert "fill=16 dirty=0 burn=2" in ET.fromstring(guests.domain_xml(paths, spec)).find("os/cmdline").text
    assert "burn=1" in ET.fromstring(guests.domain_xml(paths, spec, burn=1)).find("os/cmdline").text
    from lab.image import INIT

    assert "burn=*) BURN=${a#burn=}" in INIT and "while :; do :; done" in INIT


def test_nics_plug_into_the_specs_bridges_and_only_hv_a_shows_br_a_only(paths):
    root = ET.fromstring(guests.domain_xml(paths, config.guest("lab-g3")))
    assert [i.find("source").get("bridge") for i in root.findall("devices/interface")] == ["br0", "br-a-only"]
    assert "br-a-only" in config.host("hv-a").bridges
    assert "br-a-only" not in config.host("hv-b").bridges


def test_hosts_differ_in_uuid_address_and_migration_ports():
    a, b = config.HOSTS
    assert a.host_uuid != b.host_uuid and a.address != b.address
    assert set(range(a.migration_port_min, a.migration_port_max + 1)).isdisjoint(
        range(b.migration_port_min, b.migration_port_max + 1)
    )
    assert (a.uri, b.uri) == ("qemu+tcp://127.0.55.2/system", "qemu+tcp://127.0.55.3/system")


def test_state_dir_under_var_or_run_is_refused(settings):
    settings.KVMLAB_DIR = Path("/var/tmp/kvmlab")
    with pytest.raises(ValueError, match="remounts privately"):
        config.paths()


def test_missing_binary_error_names_the_fix(monkeypatch):
    monkeypatch.setattr(procs.shutil, "which", lambda *a, **k: None)
    with pytest.raises(procs.LabError, match=r"make install.*apt-get install -y --no-install-recommends nfs-ganesha"):
        procs.which("ganesha.nfsd")


def test_heartbeat_is_the_last_count_after_the_offset(paths):
    paths.logs.mkdir(parents=True)
    log = paths.console_log("lab-g1")
    log.write_bytes(b"GUEST-BOOTED\nHB 1 up=1\nHB 2 up=2\n")
    mark = log.stat().st_size
    with open(log, "ab") as f:
        f.write(b"GUEST-BOOTED\nHB 1 up=1\n")
    assert guests.heartbeat("lab-g1", p=paths) == 1
    assert guests.heartbeat("lab-g1", after_offset=mark, p=paths) == 1
    assert guests.heartbeat("lab-g2", p=paths) is None


def test_beats_lists_whole_beat_lines_only(paths):
    paths.logs.mkdir(parents=True)
    # A QEMU killed mid-line leaves a cut beat ("HB 4" of "HB 42 up=..."); the next boot appends after it.
    paths.console_log("lab-g1").write_bytes(b"HB 40 up=1\nHB 41 up=2\nHB 4GUEST-BOOTED\nHB 42 up=1\n")
    assert guests.beats("lab-g1", p=paths) == [40, 41, 42]
    assert guests.beats("lab-g2", p=paths) == []


@pytest.mark.parametrize(
    "sector, count",
    [
        (b"HB 41\n", 41),  # what the heartbeat writes: counting goes on from 42
        (b"", 0),  # a new disk: zeros
        (b"HB x1\n", 0),
        (b"* HB 7\n", 0),
        (b"HB 7 up\n", 7),
    ],
)
def test_guest_init_counts_on_from_the_beat_its_disk_holds(tmp_path, sector, count):
    busybox = shutil.which("busybox")
    if not busybox:
        pytest.skip("no busybox (the lab's image needs it)")
    from lab.image import INIT, RESUME_COUNT

    assert RESUME_COUNT in INIT
    disk = tmp_path / "vda"
    disk.write_bytes(sector.ljust(512, b"\0") + b"HB 99\n".ljust(512, b"\0"))  # sector 1 is not read
    script = RESUME_COUNT.replace("[ -b /dev/vda ]", "[ -f /dev/vda ]").replace("/dev/vda", str(disk))
    out = subprocess.run([busybox, "sh", "-c", script + '\necho "i=$i"'], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [f"DISK vda holds beat {count}: counting on from {count + 1}", f"i={count}"]


def test_guest_start_retries_only_the_tap_name_race(monkeypatch):
    # Both lab daemons number taps in one network namespace; the race can't be provoked on demand,
    # so the first answer is injected. Any other failure must surface at once.
    LabError = procs.LabError
    answers = [LabError("error: Unable to create tap device vnet1: Device or resource busy"), None]
    calls = []

    def fake_virsh(uri, *args, **kw):
        calls.append(args)
        answer = answers.pop(0)
        if answer:
            raise answer
        return ""

    monkeypatch.setattr(guests, "virsh", fake_virsh)
    monkeypatch.setattr(guests.time, "sleep", lambda s: None)
    guests.start_guest("qemu+tcp://x/system", "lab-g3")
    assert calls == [("start", "lab-g3"), ("start", "lab-g3")]

    answers[:] = [LabError("error: Cannot access storage file")]
    with pytest.raises(LabError, match="storage file"):
        guests.start_guest("qemu+tcp://x/system", "lab-g3")


def test_up_restarts_a_running_guest_whose_console_went_silent(monkeypatch, tmp_path):
    # A hung guest (libvirt: running, heartbeat stopped) cannot be made on demand; its silent log can.
    import os
    import time

    p = config.Paths(root=tmp_path)
    log = p.console_log("lab-g1")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("HB 1131\n")
    destroyed = []
    monkeypatch.setattr(guests, "virsh", lambda uri, *args, **kw: destroyed.append(args))
    assert guests._stop_if_hung(p, "lab-g1", {"hv-a": "running"}) == {"hv-a": "running"}  # just beat
    old = time.time() - 120
    os.utime(log, (old, old))
    assert guests._stop_if_hung(p, "lab-g1", {"hv-a": "running"}) == {"hv-a": "shut off"}
    assert destroyed == [("destroy", "lab-g1")]
    assert guests._stop_if_hung(p, "lab-g1", {"hv-a": "shut off"}) == {"hv-a": "shut off"}  # nothing to stop


def test_a_lab_hosts_file_names_every_lab_host_once():
    base = "127.0.0.1 localhost\n10.0.0.9 hv-a\n"  # a stale line from an older lab or by hand
    assert hosts_file(base).splitlines() == ["127.0.0.1 localhost", "127.0.55.2 hv-a", "127.0.55.3 hv-b"]


def test_in_sanlock_mode_each_guest_carries_its_lease_and_a_marker_that_says_so(paths):
    spec = config.guest("lab-g1")
    assert ET.fromstring(guests.domain_xml(paths, spec)).find("devices/lease") is None
    procs.save_state(paths, {"lock_manager": "sanlock"})
    root = ET.fromstring(guests.domain_xml(paths, spec))
    lease = root.find("devices/lease")
    assert lease.find("lockspace").text == config.SANLOCK_LOCKSPACE
    assert lease.find("key").text == "lab-g1"
    assert lease.find("target").get("path") == str(paths.leases / "lab-g1.lease")
    assert root.find("description").text.endswith(" sanlock")  # switching modes redefines the guests
    assert ET.fromstring(guests.domain_xml(paths, spec, lease=False)).find("devices/lease") is None
    assert [config.sanlock_host_id(h.name) for h in config.HOSTS] == [1, 2]
    with pytest.raises(ValueError, match="KVMLAB_LOCK_MANAGER"):
        config.lock_manager("lockd")
