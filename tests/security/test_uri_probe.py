"""A hypervisor URI is never a way to run a program on the dashboard's machine.

A probe script writes a marker file when it runs. Every URI below would make libvirt's client (or
ssh, which it starts) run the probe, read a socket, or skip a check. They go through every door
an admin or a stored row has: the add form, "Test connection", the driver itself, an inventory
refresh of a row written straight into the database, the watcher, and a guest migration to such a
row (the migrate form, and the driver's migrate call with the source libvirtd as the one who
would have opened it). The marker must never appear, and each door says "URI not allowed".
"""

import stat

import pytest
from django.urls import reverse

from hosts.drivers import libvirt as driver
from hosts.drivers.types import MigrationOptions
from hosts.drivers.uri import UriNotAllowed
from hosts.models import Guest, Hypervisor
from hosts.services import inventory, watcher
from migrations_app.models import MigrationJob
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

TEST_GUEST_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"  # the test driver's own running guest


@pytest.fixture
def probe(tmp_path):
    marker = tmp_path / "PROBE-RAN"
    script = tmp_path / "probe.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, marker


def hostile_uris(script) -> list[str]:
    return [
        f"qemu+ext:///system?command={script}",
        f"qemu+ssh://127.0.0.1/system?command={script}",
        f"qemu+ssh://127.0.0.1/system?netcat={script}",
        f"qemu+ssh://127.0.0.1/system?proxy=netcat&netcat={script}",
        f"qemu+ssh://127.0.0.1/system?mode=auto;command={script}",
        f"qemu+ssh://127.0.0.1/system?comm%61nd={script}",
        f"qemu+ssh://-oProxyCommand={script}/system",
        f"qemu+ssh://-oProxyCommand={script}@127.0.0.1/system",
        "qemu+unix:///system?socket=/run/libvirt/libvirt-sock",
        "qemu+tcp://127.0.0.1/system?socket=/run/libvirt/libvirt-sock",
        "qemu+tls://127.0.0.1/system?no_verify=1",
        "qemu:///system",
    ]


def test_the_probe_runs_when_executed_so_its_absence_means_something(probe):
    import subprocess

    script, marker = probe
    subprocess.run([str(script)], check=True)
    assert marker.exists()


def test_no_form_or_connection_test_runs_the_probe(probe, client):
    script, marker = probe
    make_user("ada", "admin")
    assert client.login(username="ada", password=PASSWORD)
    for n, uri in enumerate(hostile_uris(script)):
        saved = client.post(reverse("hypervisor-create"), {"name": f"evil-{n}", "uri": uri})
        assert saved.status_code == 400 and "URI not allowed" in saved.content.decode(), uri
        tested = client.post(reverse("hypervisor-test-connection"), {"uri": uri}, headers={"HX-Request": "true"})
        assert tested.status_code == 200 and "URI not allowed" in tested.content.decode(), uri
        with pytest.raises(UriNotAllowed):
            driver.probe(uri)
    assert not Hypervisor.objects.exists()
    assert not marker.exists()


def test_a_stored_refused_uri_is_never_opened_by_inventory_or_the_watcher(probe):
    script, marker = probe
    rows = [Hypervisor.objects.create(name=f"old-{n}", uri=uri) for n, uri in enumerate(hostile_uris(script))]
    results = inventory.refresh_all()
    assert {r.hypervisor for r in results if not r.online} == {h.name for h in rows}
    for hv in Hypervisor.objects.filter(pk__in=[h.pk for h in rows]):
        assert hv.state == Hypervisor.State.OFFLINE and hv.last_error.startswith("URI not allowed: "), hv.uri
    Hypervisor.objects.update(state=Hypervisor.State.ONLINE)  # as if they had been fine once
    subscriptions: dict = {}
    watcher._subscribe(subscriptions, watcher._Events())
    assert subscriptions == {}
    assert not marker.exists()


def test_a_move_to_a_row_with_a_refused_uri_never_opens_it(probe, client):
    script, marker = probe
    make_user("otto", "operator")
    assert client.login(username="otto", password=PASSWORD)
    source = Hypervisor.objects.create(name="hv-a", uri="test:///default", state=Hypervisor.State.ONLINE)
    guest = Guest.objects.create(uuid=TEST_GUEST_UUID, name="test", hypervisor=source, power="running")
    for n, uri in enumerate(hostile_uris(script)):
        target = Hypervisor.objects.create(name=f"evil-{n}", uri=uri, state=Hypervisor.State.ONLINE)
        readiness = client.get(reverse("guest-migrate-targets", args=[guest.pk]), {"kind": "live"})
        assert readiness.status_code == 200 and "URI not allowed" in readiness.content.decode(), uri
        response = client.post(reverse("guest-migrate", args=[guest.pk]), {"kind": "live", "target": target.pk})
        assert response.status_code == 400 and "URI not allowed" in response.content.decode(), uri
        with pytest.raises(UriNotAllowed):
            driver.migrate(source.uri, uri, TEST_GUEST_UUID, MigrationOptions(live=True))
        target.delete()
    assert not MigrationJob.objects.exists()
    assert not marker.exists()


@pytest.mark.parametrize("stream", ["unix:///run/libvirt/libvirt-sock", "tcp://127.0.0.1:22", "exec:/bin/sh"])
def test_the_migration_stream_uri_is_rebuilt_from_an_address_only(stream):
    with pytest.raises(UriNotAllowed, match="^URI not allowed: migration"):
        driver.migrate("test:///default", "test:///default?b", TEST_GUEST_UUID, MigrationOptions(migration_uri=stream))
