"""An operator asks which hosts can exchange guests: every source × target pair, each check with its
evidence, on the page and through the API (libvirt test-driver hosts; nothing moves)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from hosts.models import Hypervisor, StorageServer
from migrations_app.models import MigrationJob
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster(tmp_path):
    """rd-a holds a guest on rd-nfs bridged to br0; rd-b mounts rd-nfs and has br0; rd-c has neither."""
    from hosts.services import inventory
    from tests.libvirt_nodes import NodeDomain, write_node

    nfs = StorageServer.objects.create(
        name="rd-nfs", address="127.0.0.1", export_path="/srv", mount_path="/var/lib/libvirt/images"
    )
    web = NodeDomain("rd-web", running=False, memory_mib=512, disk_path="/var/lib/libvirt/images/rd-web.qcow2")
    uris = {
        "rd-a": write_node(tmp_path / "a.xml", [web]),
        "rd-b": write_node(tmp_path / "b.xml", []),
        "rd-c": write_node(tmp_path / "c.xml", [], bridges=("br9",)),
    }
    hosts = {name: Hypervisor.objects.create(name=name, uri=uri) for name, uri in uris.items()}
    hosts["rd-a"].storage_servers.set([nfs])
    hosts["rd-b"].storage_servers.set([nfs])
    inventory.refresh_all()
    # libvirt's test driver reports no free memory; the matrix reads the inventory's, as the drain planner does
    Hypervisor.objects.filter(name__in=["rd-b", "rd-c"]).update(memory_free_mib=4096)
    client = Client()
    client.force_login(make_user("rd-viewer", "viewer", password=None))
    return {name: Hypervisor.objects.get(pk=h.pk) for name, h in hosts.items()} | {"client": client}


def _cell(html: str, dom_id: str) -> str:
    start = html.index(f'id="{dom_id}"')
    return html[start : html.index("</dd>", start)]


def test_the_page_shows_a_ready_pair_and_a_pair_without_storage_or_bridge(cluster):
    a, b, c = cluster["rd-a"], cluster["rd-b"], cluster["rd-c"]
    html = cluster["client"].get(reverse("hypervisor-readiness")).content.decode()
    assert '<th scope="col">rd-b</th>' in html and '<th scope="row"><a href=' in html
    ready = f"readiness-{a.pk}-{b.pk}"
    assert "<strong>yes</strong> — they share rd-nfs; rd-web:vda on rd-nfs" in _cell(html, f"{ready}-storage")
    assert "<strong>yes</strong> — bridges br0 present" in _cell(html, f"{ready}-bridges")
    assert "<strong>yes</strong> — largest guest rd-web needs 512 MiB; rd-b has 4096 MiB free" in _cell(
        html, f"{ready}-memory"
    )
    assert "<strong>yes</strong> — rd-b answered libvirt" in _cell(html, f"{ready}-address")
    assert "<strong>no</strong> — rd-a and rd-b: encrypted migration is not set up" in _cell(html, f"{ready}-tls")
    blocked = f"readiness-{a.pk}-{c.pk}"
    assert "<strong>no</strong> — they share no storage server; rd-web:vda" in _cell(html, f"{blocked}-storage")
    assert "<strong>no</strong> — rd-c lacks bridge(s) br0 (has: br9)" in _cell(html, f"{blocked}-bridges")
    row = html[html.index(f'id="{blocked}"') :]
    assert row.split("<details>")[0].count("Not ready") == 1 and "Shared storage no, Bridges no" in row
    assert "Not ready" not in html[html.index(f'id="{ready}"') :].split("<details>")[0]
    assert not MigrationJob.objects.exists()  # facts only


def test_the_api_gives_the_same_cells(cluster):
    a, b, c = cluster["rd-a"], cluster["rd-b"], cluster["rd-c"]
    body = cluster["client"].get(reverse("api-hypervisor-readiness-list")).json()
    assert [h["name"] for h in body["hosts"]] == ["rd-a", "rd-b", "rd-c"] and len(body["pairs"]) == 6
    pairs = {(p["source_id"], p["target_id"]): p for p in body["pairs"]}
    ready = {cell["key"]: cell for cell in pairs[(a.pk, b.pk)]["cells"]}
    blocked = {cell["key"]: cell for cell in pairs[(a.pk, c.pk)]["cells"]}
    assert pairs[(a.pk, b.pk)]["verdict"] != "not ready" and pairs[(a.pk, c.pk)]["verdict"] == "not ready"
    assert (ready["storage"]["answer"], ready["bridges"]["answer"], ready["memory"]["answer"]) == ("yes",) * 3
    assert (blocked["storage"]["answer"], blocked["bridges"]["answer"]) == ("no", "no")
    assert blocked["bridges"]["evidence"] == "rd-c lacks bridge(s) br0 (has: br9)" and blocked["bridges"]["hint"]


def test_with_one_host_the_page_says_what_to_do(db):
    Hypervisor.objects.create(name="rd-only", uri="test:///default")
    client = Client()
    client.force_login(make_user("rd-admin", "admin", password=None))
    html = client.get(reverse("hypervisor-readiness")).content.decode()
    assert "there is only rd-only" in html and "Add a hypervisor" in html and "<table" not in html
    assert client.get(reverse("api-hypervisor-readiness-list")).json()["pairs"] == []


def test_each_host_is_asked_for_its_facts_once_not_once_per_pair(cluster, monkeypatch):
    from hosts.drivers import libvirt as driver

    asked: list[str] = []
    compared: list[tuple[str, str]] = []
    real, real_compare = driver.host_info, driver.compare_cpu
    monkeypatch.setattr(driver, "host_info", lambda uri, **kw: asked.append(uri) or real(uri, **kw))
    monkeypatch.setattr(driver, "compare_cpu", lambda uri, xml: compared.append((uri, xml)) or real_compare(uri, xml))
    body = cluster["client"].get(reverse("api-hypervisor-readiness-list")).json()
    assert len(body["pairs"]) == 6 and sorted(asked) == sorted(h.uri for h in Hypervisor.objects.all())
    # the three test-driver hosts share one CPU: each target is asked about it once, not once per source
    assert len({xml for _, xml in compared}) == 1 and sorted(u for u, _ in compared) == sorted(asked)


def test_a_host_whose_uri_is_refused_is_a_not_ready_column_not_an_error(cluster):
    """A row whose URI kvmcluster refuses to open (docs/security.md) is never opened: its cells say why."""
    evil = Hypervisor.objects.create(name="rd-evil", uri="qemu+ext://127.0.0.1/system?command=/bin/sh")
    body = cluster["client"].get(reverse("api-hypervisor-readiness-list")).json()
    into = [p for p in body["pairs"] if p["target_id"] == evil.pk]
    assert len(into) == 3 and {p["verdict"] for p in into} == {"not ready"}
    address = next(c for c in into[0]["cells"] if c["key"] == "address")
    assert address["answer"] == "no" and "URI not allowed" in address["evidence"]
    assert cluster["client"].get(reverse("hypervisor-readiness")).status_code == 200
