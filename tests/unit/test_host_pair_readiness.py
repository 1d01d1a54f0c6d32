"""One cell of the host-pair readiness matrix, from snapshots alone (planning.readiness is pure)."""

from migrations_app.orchestrator import preflight as pf
from migrations_app.planning.readiness import Workload, pair_readiness

NFS = pf.StorageSnap("nfs", "nfs", "127.0.0.1", "/srv", "/var/lib/libvirt/images")


def host(pk, name, **kw):
    base = dict(pk=pk, name=name, state="online", reachable=True, memory_free_mib=4096, bridges=("br0",))
    return pf.HostSnap(**(base | kw))


WORK = Workload(
    host_name="hv-a",
    guests=2,
    disks=(pf.DiskSnap("web:vda", "disk", "file", "/var/lib/libvirt/images/web.qcow2", cache="none"),),
    nics=(pf.NicSnap("52:54:00:00:00:01", "bridge", "br0"),),
    largest_mib=2048,
    largest_name="web",
    total_mib=3072,
)


def cells(pair):
    return {c.key: c for c in pair.cells}


def test_a_pair_that_shares_everything_is_ready_and_says_so_in_words():
    pair = pair_readiness(
        host(1, "hv-a", storage=(NFS,), migration_tls=True, hypervisor_type="QEMU", hypervisor_version="8.2.0"),
        host(2, "hv-b", storage=(NFS,), migration_tls=True, hypervisor_type="QEMU", hypervisor_version="8.2.0"),
        WORK,
        ("identical", "hv-a's host CPU on hv-b"),
        "",
        "127.0.0.2",
    )
    c = cells(pair)
    assert pair.verdict == "ready" and {x.answer for x in pair.cells} == {"yes"}
    assert c["storage"].evidence == "they share nfs; web:vda on nfs"
    assert c["address"].evidence == "hv-b answered libvirt; the stream goes to 127.0.0.2 (libvirt's default)"
    assert c["memory"].evidence.startswith("largest guest web needs 2048 MiB; hv-b has 4096 MiB free")


def test_missing_storage_bridge_and_memory_make_it_not_ready_with_the_reasons():
    pair = pair_readiness(
        host(1, "hv-a", storage=(NFS,)),
        host(3, "hv-c", bridges=("br9",), memory_free_mib=1024),
        WORK,
        ("incompatible", "lacks avx2"),
        "127.0.0.3",
        "",
    )
    c = cells(pair)
    assert pair.verdict == "not ready"
    assert [x.label for x in pair.failing] == ["Shared storage", "Bridges", "CPU", "Memory headroom", "TLS"]
    assert c["bridges"].evidence == "hv-c lacks bridge(s) br0 (has: br9)" and c["bridges"].hint
    assert c["address"].evidence.endswith("the stream goes to 127.0.0.3 (set on hv-c)")


def test_tls_alone_does_not_make_a_pair_not_ready_and_a_silent_target_does():
    ok = pair_readiness(
        host(1, "hv-a", storage=(NFS,)), host(2, "hv-b", storage=(NFS,)), WORK, ("superset", ""), "", ""
    )
    assert cells(ok)["tls"].answer == "no" and ok.verdict == "ready"
    down = pair_readiness(
        host(1, "hv-a", storage=(NFS,)),
        host(2, "hv-b", storage=(NFS,), reachable=False, error="connection refused"),
        WORK,
        ("", ""),
        "",
        "",
    )
    assert cells(down)["address"].answer == "no" and "connection refused" in cells(down)["address"].evidence
    assert down.verdict == "not ready"


def test_a_host_without_guests_needs_only_a_shared_server():
    empty = Workload(host_name="hv-a")
    shared = pair_readiness(
        host(1, "hv-a", storage=(NFS,)), host(2, "hv-b", storage=(NFS,)), empty, ("superset", ""), "", ""
    )
    alone = pair_readiness(host(1, "hv-a"), host(2, "hv-b"), empty, ("superset", ""), "", "")
    assert cells(shared)["storage"].answer == "yes" and cells(alone)["storage"].answer == "no"
    assert cells(shared)["bridges"].evidence == "no guest on hv-a uses a bridge"
    assert cells(shared)["memory"].evidence == "hv-a has no guest"
