"""A guest's load chart marks its moves: the guest page lists each guest migration that ended within the
chart's hour beside the chart (the markers' data), and when a move ends the list is pushed to the viewers
of the guest's page over its load socket."""

import re
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from hosts.models import Guest, Hypervisor
from kvmcluster.routing import websocket_urlpatterns
from migrations_app import events
from migrations_app.models import MigrationJob
from tests.factories import PASSWORD, make_user


def _guest() -> Guest:
    a = Hypervisor.objects.create(name="hv-a", uri="test:///a")
    Hypervisor.objects.create(name="hv-b", uri="test:///b")
    return Guest.objects.create(uuid=uuid.uuid4(), name="web01", hypervisor=a)


def _job(guest: Guest, source: str, target: str, state: str, ago: timedelta | None) -> MigrationJob:
    return MigrationJob.objects.create(
        guest=guest,
        guest_name=guest.name,
        guest_uuid=guest.uuid,
        source=Hypervisor.objects.get(name=source),
        target=Hypervisor.objects.get(name=target),
        state=state,
        finished_at=timezone.now() - ago if ago is not None else None,
    )


@pytest.mark.django_db
def test_the_guest_page_lists_the_moves_of_the_charts_hour_beside_it(client):
    guest = _guest()
    moved = _job(guest, "hv-a", "hv-b", "succeeded", timedelta(minutes=20))
    failed = _job(guest, "hv-b", "hv-a", "failed", timedelta(minutes=5))
    _job(guest, "hv-b", "hv-a", "succeeded", timedelta(hours=2))  # before the chart's hour
    _job(guest, "hv-a", "hv-b", "running", None)  # not finished: no marker
    make_user("vera", "viewer")
    assert client.login(username="vera", password=PASSWORD)

    html = client.get(reverse("guest-detail", args=[guest.pk])).content.decode()

    block = re.search(rf'<div class="load-moves" id="guest-{guest.pk}-load-moves">(.*?)</div>', html, re.S).group(1)
    items = re.findall(r'<li data-at="([\d.]+)" data-label="([^"]*)" data-state="(\w+)">(.*?)</li>', block)
    assert [(float(at), label, state) for at, label, state, _ in items] == [
        (pytest.approx(moved.finished_at.timestamp(), abs=0.001), "hv-a → hv-b", "succeeded"),
        (pytest.approx(failed.finished_at.timestamp(), abs=0.001), "hv-b → hv-a (failed)", "failed"),
    ]
    first = items[0][3]
    assert f'<a href="{reverse("migration-detail", args=[moved.pk])}">Moved hv-a → hv-b</a>' in first
    assert f'at <time datetime="{moved.finished_at.isoformat()}">{moved.finished_at:%H:%M}</time>' in first
    assert "Move hv-b → hv-a failed" in items[1][3]
    assert "the guest's moves are marked" in html  # the chart's own accessible name says so


@pytest.mark.django_db
def test_a_guest_that_did_not_move_says_so(client):
    guest = _guest()
    make_user("vera", "viewer")
    assert client.login(username="vera", password=PASSWORD)
    html = client.get(reverse("guest-detail", args=[guest.pk])).content.decode()
    assert "None: this guest did not move in the last hour." in html


@pytest.mark.django_db(transaction=True, databases="__all__")
async def test_a_move_that_ends_is_pushed_to_the_viewers_of_the_guests_page():
    guest = await sync_to_async(_guest)()
    user = await sync_to_async(make_user)("vera", "viewer")
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/guests/{guest.pk}/load/")
    communicator.scope["user"] = user
    assert (await communicator.connect())[0]
    try:
        job = await sync_to_async(_job)(guest, "hv-a", "hv-b", "succeeded", timedelta(seconds=3))
        await sync_to_async(events._render_and_send_job)(job.pk, topology=False)
        html = await communicator.receive_from(timeout=10)
    finally:
        await communicator.disconnect()
        await sync_to_async(connections.close_all)()
    assert f'<div class="load-moves" id="guest-{guest.pk}-load-moves" hx-swap-oob="true">' in html
    assert "Moved hv-a → hv-b</a>" in html
