"""Pre-flight checks over snapshots: each refusal names what is wrong and how to fix it."""

from dataclasses import replace

from migrations_app.orchestrator import preflight as pf

NFS = pf.StorageSnap("lab-nfs", "nfs", "127.0.0.1", "/srv/export", "/srv/export")
DISK = pf.DiskSnap("vda", "disk", "network", "/srv/export/g1.qcow2", "nfs", "127.0.0.1", "none")
GUEST = pf.GuestSnap(
    "g1",
    "11111111-1111-4111-8111-111111111111",
    "running",
    256,
    (DISK,),
    (pf.NicSnap("52:54:00:00:00:01", "bridge", "br0"),),
)
SRC = pf.HostSnap(1, "hv-a", "online", True, host_uuid="aaaa", memory_free_mib=4096, bridges=("br0",), storage=(NFS,))
DST = pf.HostSnap(2, "hv-b", "online", True, host_uuid="bbbb", memory_free_mib=4096, bridges=("br0",), storage=(NFS,))
FACTS = pf.Facts(GUEST, SRC, DST, "live", cpu_result="identical")


def by_key(facts):
    return {i.key: i for i in pf.run_checks(facts)}


def test_a_good_move_is_ready():
    items = pf.run_checks(FACTS)
    assert pf.verdict(items) == "ready", [i for i in items if i.status != "pass"]


def test_same_host_uuid_is_refused():
    item = by_key(replace(FACTS, target=replace(DST, host_uuid="aaaa")))["hosts_distinct"]
    assert item.status == "fail" and "same host UUID aaaa" in item.evidence


def test_cache_mode_refused_for_live_naming_disk_and_mode():
    g = replace(GUEST, disks=(replace(DISK, cache="writeback"),))
    item = by_key(replace(FACTS, guest=g))["cache_none"]
    assert item.status == "fail" and "vda has cache='writeback'" in item.evidence and item.hint
    offline = replace(FACTS, guest=replace(g, power="shutoff"), kind="offline")
    assert by_key(offline)["cache_none"].status == "pass"


def test_missing_bridge_refused():
    g = replace(GUEST, nics=GUEST.nics + (pf.NicSnap("52:54:00:00:00:02", "bridge", "br-a-only"),))
    item = by_key(replace(FACTS, guest=g))["bridges"]
    assert item.status == "fail" and "br-a-only" in item.evidence


def test_disk_not_on_shared_storage_refused_naming_disk():
    local = pf.DiskSnap("vdb", "disk", "file", "/var/lib/libvirt/images/local.qcow2", cache="none")
    item = by_key(replace(FACTS, guest=replace(GUEST, disks=(DISK, local))))["shared_storage"]
    assert item.status == "fail" and "vdb" in item.evidence and "vda" not in item.evidence


def test_storage_only_on_source_refused():
    item = by_key(replace(FACTS, target=replace(DST, storage=())))["shared_storage"]
    assert item.status == "fail" and "not on hv-b" in item.evidence


def test_memory_counts_reservations_of_moves_in_flight():
    item = by_key(replace(FACTS, target=replace(DST, memory_free_mib=400, reserved_incoming_mib=200)))["memory"]
    assert item.status == "fail" and "200 MiB reserved" in item.evidence


def test_maintenance_target_refused():
    assert by_key(replace(FACTS, target=replace(DST, state="maintenance")))["target_state"].status == "fail"


def test_busy_slots_only_warn_the_move_will_queue():
    item = by_key(replace(FACTS, source=replace(SRC, outgoing_active=1)))["concurrency"]
    assert item.status == "warn" and "queued" in item.evidence


def test_guest_already_on_target_refused():
    item = by_key(replace(FACTS, target=replace(DST, domain_names=("g1",))))["not_on_target"]
    assert item.status == "fail"


def test_offline_move_of_running_guest_needs_shutdown_option():
    f = replace(FACTS, kind="offline")
    assert by_key(f)["guest_state"].status == "fail"
    assert by_key(replace(f, options={"shutdown_first": True}))["guest_state"].status == "warn"


def test_unreachable_host_blocks_with_libvirt_message():
    item = by_key(replace(FACTS, target=replace(DST, reachable=False, error="Connection refused")))["hosts_reachable"]
    assert item.status == "fail" and "Connection refused" in item.evidence


def test_incompatible_cpu_blocks_live():
    assert by_key(replace(FACTS, cpu_result="incompatible"))["cpu"].status == "fail"
