"""The 'Encrypted (TLS)' pre-flight check: asked only for live moves, refused with a fix when a host is not set up."""

from dataclasses import replace

from migrations_app.orchestrator import preflight as pf

SRC = pf.HostSnap(1, "hv-a", "online", True, host_uuid="aaaa", hypervisor_type="QEMU", hypervisor_version="7.2.0")
DST = replace(SRC, pk=2, name="hv-b", host_uuid="bbbb")
GUEST = pf.GuestSnap("g1", "11111111-1111-4111-8111-111111111111", "running", 256)
FACTS = pf.Facts(GUEST, SRC, DST, "live", options={"tls": True})


def tls(facts):
    return {i.key: i for i in pf.run_checks(facts)}.get("tls")


def test_tls_is_checked_only_for_a_live_move_that_asks_for_it():
    assert tls(replace(FACTS, options={})) is None
    assert tls(replace(FACTS, kind="offline")) is None


def test_both_hosts_set_up_pass():
    both = replace(FACTS, source=replace(SRC, migration_tls=True), target=replace(DST, migration_tls=True))
    assert tls(both).status == pf.PASS


def test_a_host_without_certificates_is_refused_by_name_with_the_fix():
    item = tls(replace(FACTS, source=replace(SRC, migration_tls=True)))
    assert item.status == pf.FAIL and "hv-b" in item.evidence and "hv-a" not in item.evidence
    assert "migrate_tls_x509_cert_dir" in item.hint and "untick" in item.hint


def test_a_qemu_too_old_for_tls_migration_is_refused():
    old = replace(DST, migration_tls=True, hypervisor_version="2.8.0")
    item = tls(replace(FACTS, source=replace(SRC, migration_tls=True), target=old))
    assert item.status == pf.FAIL and "2.8.0" in item.evidence
