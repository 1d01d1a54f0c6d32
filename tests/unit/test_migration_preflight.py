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


def test_incompatible_cpu_blocks_offline_only_when_the_guest_starts_on_the_target():
    offline = replace(FACTS, kind="offline", cpu_result="incompatible", cpu_message="lacks avx512f")
    assert by_key(offline)["cpu"].status == "warn"
    started = by_key(replace(offline, options={"start_on_target": True}))["cpu"]
    assert started.status == "fail" and "avx512f" in started.evidence


def test_guest_without_cpu_model_passes_with_reason():
    item = by_key(replace(FACTS, cpu_result="default", cpu_message="QEMU's default model"))["cpu"]
    assert item.status == "pass" and "default model" in item.evidence


def test_compression_is_checked_only_when_asked_for():
    assert "compression" not in by_key(FACTS)
    assert "compression" not in by_key(replace(FACTS, kind="offline", options={"compressed": True}))


def test_compression_passes_when_both_qemus_can():
    dst = replace(DST, hypervisor_type="QEMU", hypervisor_version="7.2.22")
    facts = replace(FACTS, target=dst, options={"compressed": True}, compression_cache=64 << 20)
    item = by_key(facts)["compression"]
    assert item.status == "pass" and "64 MiB" in item.evidence and "7.2.22" in item.evidence


def test_compression_refused_with_libvirts_answer_from_the_source():
    dst = replace(DST, hypervisor_type="QEMU", hypervisor_version="7.2.22")
    error = "Compressed migration is not supported by QEMU binary"
    item = by_key(replace(FACTS, target=dst, options={"compressed": True}, compression_error=error))["compression"]
    assert item.status == "fail" and error in item.evidence and "Untick" in item.hint


def test_compression_refused_when_the_target_qemu_is_too_old_or_not_qemu():
    for kind, version in (("QEMU", "1.1.0"), ("TEST", "0.0.2")):
        dst = replace(DST, hypervisor_type=kind, hypervisor_version=version)
        item = by_key(replace(FACTS, target=dst, options={"compressed": True}, compression_cache=1 << 26))[
            "compression"
        ]
        assert item.status == "fail" and version in item.evidence
