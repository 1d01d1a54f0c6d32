"""On the real lab: a live move that succeeds and one that fails (completion timeout, aborted) are found
by the audit list's hypervisor filter from either host, and the failure by outcome "failed"."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.once]


def _found(client, **query) -> list[dict]:
    response = client.get(reverse("audit-export"), {**query, "format": "json"})
    assert response.status_code == 200
    return json.loads(b"".join(response.streaming_content))


def test_filters_find_a_real_move_and_a_real_failure(mlab, lab):
    mlab.ensure_on("lab-g1", "hv-a")
    ok = mlab.wait_done(mlab.request("lab-g1", "hv-b").pk)
    assert ok.state == "succeeded", ok.error
    assert lab.running_on("lab-g1") == ["hv-b"]
    # Back towards hv-a too slowly to finish: libvirt aborts it, the guest stays on hv-b.
    bad = mlab.request("lab-g1", "hv-a", bandwidth_mibps=2, completion_timeout_s=3, timeout_action="abort")
    bad = mlab.wait_done(bad.pk)
    assert bad.state == "failed" and "completion timeout" in bad.error
    assert lab.running_on("lab-g1") == ["hv-b"]

    client = Client()
    client.force_login(mlab.viewer)
    for host in ("hv-a", "hv-b"):
        rows = _found(client, hypervisor=host)
        assert {(r["migration_id"], r["action"]) for r in rows} >= {
            (ok.pk, "migration.requested"),
            (ok.pk, "migration.started"),
            (ok.pk, "migration.succeeded"),
            (bad.pk, "migration.requested"),
            (bad.pk, "migration.failed"),
        }, host
    failed = _found(client, outcome="failed", hypervisor="hv-a")
    assert [(r["migration_id"], r["action"]) for r in failed] == [(bad.pk, "migration.failed")]
    assert failed[0]["hypervisor"] == "hv-b" and failed[0]["target_hypervisor"] == "hv-a"
    page = client.get(reverse("audit-list"), {"outcome": "failed"}).content.decode()
    assert "migration.failed" in page and "hv-b → hv-a" in page
    assert set(AuditEvent.objects.values_list("outcome", flat=True)) <= set(AuditEvent.Outcome.values)
