"""An operator asks "can I take hv-a down?" and reads the drain plan, on libvirt test-driver hosts.

The plan runs the real pre-flight for every (guest, other host) pair, exactly as a move would: a guest
whose bridge hv-b lacks, or whose disk hv-b cannot see, is listed as blocked with the check's words; a
running guest with a writeback cache cannot move live; a shut-off one moves offline. Nothing moves.
"""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from hosts.models import Guest, Hypervisor, StorageServer
from hosts.services import inventory
from migrations_app.models import MigrationJob
from migrations_app.services import drain
from tests.factories import make_user
from tests.libvirt_nodes import NodeDomain, write_node

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")
IMAGES = "/var/lib/libvirt/images"


@pytest.fixture
def world(tmp_path):
    nfs = StorageServer.objects.create(name="nfs1", address="127.0.0.5", export_path="/srv/images", mount_path=IMAGES)
    hv_a = Hypervisor.objects.create(
        name="hv-a",
        uri=write_node(
            tmp_path / "hv-a.xml",
            [
                NodeDomain("web01", disk_path=f"{IMAGES}/web01.qcow2"),
                NodeDomain("db01", running=False, disk_path=f"{IMAGES}/db01.qcow2", cache="writeback"),
                NodeDomain("cache01", disk_path=f"{IMAGES}/cache01.qcow2", cache="writeback"),
                NodeDomain("app02", disk_path=f"{IMAGES}/app02.qcow2", bridge="br-a-only"),
                NodeDomain("local01", disk_path="/srv/local/local01.qcow2"),
            ],
            bridges=("br0", "br-a-only"),
        ),
    )
    hv_b = Hypervisor.objects.create(name="hv-b", uri=write_node(tmp_path / "hv-b.xml", []))
    for hv in (hv_a, hv_b):
        hv.storage_servers.add(nfs)
        inventory.refresh_hypervisor(hv)
    # libvirt's test driver reports no free memory; the plan reads the inventory's figure
    Hypervisor.objects.filter(pk=hv_b.pk).update(memory_free_mib=8192)
    return Hypervisor.objects.get(pk=hv_a.pk), Hypervisor.objects.get(pk=hv_b.pk)


def test_the_plan_moves_what_can_move_and_says_why_the_rest_cannot(world):
    hv_a, _ = world
    plan = drain.drain_plan(hv_a)
    assert {(m.guest.name, m.target.name, m.mode) for m in plan.moves} == {
        ("web01", "hv-b", "live"),
        ("db01", "hv-b", "offline"),
    }
    assert all(m.prediction.converges for m in plan.moves)
    blocked = {b.guest.name: " ".join(b.reasons) for b in plan.blocked}
    assert set(blocked) == {"cache01", "app02", "local01"}
    assert "writeback" in blocked["cache01"]
    assert "br-a-only" in blocked["app02"]
    assert "local01" in blocked["local01"] or "/srv/local" in blocked["local01"]
    assert plan.verdict().startswith("no, because ")
    assert not MigrationJob.objects.exists()  # nothing started


def test_a_viewer_reads_the_plan_on_the_hypervisor_page_and_it_is_audited(world):
    hv_a, _ = world
    viewer = Client()
    viewer.force_login(make_user("vera", "viewer", password=None))
    page = viewer.get(reverse("hypervisor-detail", args=[hv_a.pk])).content.decode()
    assert "Can I take this host down?" in page
    assert f'hx-get="{reverse("hypervisor-drain-plan", args=[hv_a.pk])}"' in page

    panel = viewer.get(reverse("hypervisor-drain-plan", args=[hv_a.pk]), headers={"HX-Request": "true"})
    html = panel.content.decode()
    assert panel.status_code == 200 and "<html" not in html  # the partial only, for the htmx swap
    assert "No, because" in html
    assert f'id="drain-move-{Guest.objects.get(name="web01").pk}"' in html
    assert "br-a-only" in html
    full = viewer.get(reverse("hypervisor-drain-plan", args=[hv_a.pk])).content.decode()
    assert "<html" in full and "Can hv-a be taken down?" in full

    rows = AuditEvent.objects.filter(action="maintenance.plan_shown", hypervisor="hv-a")
    assert rows.count() == 2 and rows.first().actor_username == "vera"
    assert rows.first().params["moves"] == 2 and rows.first().params["blocked"] == 3


def test_the_api_gives_the_same_plan_as_json(world):
    hv_a, _ = world
    client = Client()
    client.force_login(make_user("olga", "operator", password=None))
    body = client.get(reverse("api-drain-plan-list", kwargs={"hypervisor_pk": hv_a.pk})).json()
    assert body["source"] == "hv-a" and body["can_empty"] is False
    assert [m["guest"] for m in body["moves"]] == ["db01", "web01"]  # the offline move is the shortest
    assert body["moves"][1]["prediction"]["summary"].startswith("≈")
    assert {b["guest"] for b in body["blocked"]} == {"cache01", "app02", "local01"}


def test_an_empty_host_can_go_down_now(world):
    _, hv_b = world
    plan = drain.drain_plan(hv_b)
    assert plan.can_empty and plan.verdict() == "yes: no guest is on it"
