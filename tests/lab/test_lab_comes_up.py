"""The lab comes up: two libvirt hosts answer over their URIs, as distinct hosts, each with its own bridges."""

from hosts import lab as kvmlab
from hosts.drivers import libvirt_driver as driver


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
