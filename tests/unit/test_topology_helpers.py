"""Pure helpers of the topology pages: storage flags, sizes, URI validation (no DB, no libvirt)."""

import pytest

from hosts.models import GuestDisk, StorageServer
from hosts.selectors import storage_summary
from kvmcluster.templatetags.kvm_ui import clamp_pct, level, size_from_mib

NFS = StorageServer(pk=1, name="nfs1", protocol=StorageServer.Protocol.NFS)
LOCAL = StorageServer(pk=2, name="scratch", protocol=StorageServer.Protocol.LOCAL)


def disk(target="vda", *, server=None, cache="none", device="disk", source="/x.qcow2"):
    d = GuestDisk(target=target, device=device, source=source, cache=cache)
    d.storage_server = server
    return d


def test_a_guest_on_shared_storage_with_cache_none_is_not_flagged():
    s = storage_summary([disk(server=NFS)])
    assert s.servers == [NFS] and not s.flagged


def test_unshared_and_cached_disks_are_flagged_by_target():
    s = storage_summary([disk("vda", server=LOCAL), disk("vdb", cache="writeback"), disk("vdc", server=NFS, cache="")])
    assert s.unshared == ["vda", "vdb"]
    assert s.uncached == ["vdb=writeback", "vdc=default"]  # blank cache = hypervisor default, not 'none'
    assert s.servers == [LOCAL, NFS]


def test_an_empty_cdrom_lives_nowhere():
    assert not storage_summary([disk("hdc", device="cdrom", source="", cache="")]).flagged


def test_servers_can_be_resolved_from_a_map():
    d = GuestDisk(target="vda", device="disk", source="/x", cache="none", storage_server_id=1)
    assert storage_summary([d], {1: NFS}).servers == [NFS]


@pytest.mark.parametrize(
    ("value", "text"), [(512, "512 MiB"), (1024, "1 GiB"), (1536, "1.5 GiB"), (262144, "256 GiB"), (None, "—")]
)
def test_size_from_mib(value, text):
    assert size_from_mib(value) == text


def test_bars_clamp_and_level():
    assert (clamp_pct(188), clamp_pct(-3), clamp_pct("x")) == (100, 0, 0)
    assert (level(50), level(75), level(188)) == ("ok", "warn", "high")
