"""An operator watching the topology sees a moving guest's row and chip fill with the move's progress,
pushed from the same partial the page renders, a few times a second at most, and gone when it ends."""

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.urls import reverse

from hosts.consumers import TopologyConsumer
from hosts.models import Guest
from migrations_app import events as migration_events
from migrations_app.choices import Kind, Phase, State
from migrations_app.models import MigrationJob
from tests.integration.hosts.test_topology_page import _unbalanced

GIB = 1024**3


@pytest.fixture(autouse=True)
def _fresh_throttle(monkeypatch):
    """The throttle is per process: a job id from an earlier test must not hold this test's first push."""
    monkeypatch.setattr(migration_events, "_last_outside_push", {})


def start_moving(cluster, **progress) -> MigrationJob:
    """web01 hv-a -> hv-b, RUNNING live, 42 % sent (as the progress reporter leaves the in-memory job)."""
    web = cluster["web"]
    Guest.objects.filter(pk=web.pk).update(migrating=True)
    job = MigrationJob.objects.create(
        guest=web, guest_name=web.name, guest_uuid=web.uuid, source=cluster["hv_a"], target=cluster["hv_b"]
    )
    MigrationJob.objects.filter(pk=job.pk).update(state=State.RUNNING, phase=Phase.PRECOPY)
    job = MigrationJob.objects.select_related("source", "target").get(pk=job.pk)
    defaults = {"data_total": 4 * GIB, "data_remaining": round(4 * GIB * 0.58), "data_processed": round(4 * GIB * 0.42)}
    for name, value in (defaults | progress).items():
        setattr(job, name, value)
    return job


def test_the_page_renders_the_ids_the_pushes_fill(client_as, cluster):
    job = start_moving(cluster)
    html = client_as("viewer").get(reverse("topology")).content.decode()
    web, db = cluster["web"].pk, cluster["db"].pk
    # the table row and the host card's chip are both on this page: one id each
    assert html.count(f'<span id="guest-{web}-move-row" class="move">') == 1
    assert html.count(f'<span id="guest-{web}-move-chip" class="move">') == 1
    assert html.count('<span class="badge badge--migrating">moving</span>') == 2  # no figure before a push
    assert f"guest-{db}-move" not in html  # a guest staying put has no indicator
    assert "hx-swap-oob" not in html
    assert _unbalanced(html.split("<body", 1)[1].rsplit("</body>", 1)[0].split(">", 1)[1]) == []
    assert job.percent == 42  # what the pushes below must show


def test_a_row_and_card_pushed_mid_move_keep_a_plain_indicator(cluster):
    """Inventory or a state change re-pushes the row and card: the indicator stays, and only the row and
    card are swapped out of band (a nested oob marker would make htmx lift the indicator out of the row)."""
    from hosts import events

    start_moving(cluster)
    web = cluster["web"].pk
    html = events.render_topology_push(guest_ids=[web])
    assert f'<span id="guest-{web}-move-row" class="move">' in html
    assert f'<span id="guest-{web}-move-chip" class="move">' in html
    assert _unbalanced(html) == []


def test_a_pushed_row_comes_first_so_the_browser_keeps_it(cluster):
    """htmx parses each socket message in a <template>: its first tag decides the parsing mode, and a <tr>
    after a <ul> or <li> is dropped. Led by the rows, the message kept every element in Chromium."""
    from hosts import events

    html = events.render_topology_push(hypervisor_ids=[cluster["hv_a"].pk], guest_ids=[cluster["web"].pk])
    first_tag = html.lstrip()[: html.lstrip().index(" ")]
    assert first_tag == "<tr" and html.rindex("<tr ") < html.index("<ul ") < html.index('<li id="hypervisor-')


@pytest.mark.django_db(transaction=True, databases="__all__")
class TestPushes:
    @pytest.fixture(autouse=True)
    async def _close_worker_thread_connections(self):
        """sync_to_async runs the ORM on a worker thread: close its connections so the test DB can be dropped."""
        yield
        await sync_to_async(connections.close_all)()

    @pytest.fixture
    async def socket(self, make_user):
        user = await sync_to_async(make_user)("viewer")
        communicator = WebsocketCommunicator(TopologyConsumer.as_asgi(), "/ws/topology/")
        communicator.scope["user"] = user
        assert (await communicator.connect())[0]
        yield communicator
        await communicator.disconnect()

    async def test_a_sample_reaches_the_row_and_chip_and_the_next_within_250_ms_does_not(self, socket, cluster):
        job = await sync_to_async(start_moving)(cluster)
        web = cluster["web"].pk
        push = sync_to_async(migration_events.push_progress)
        await push(job, 1)
        job.data_remaining = round(job.data_total * 0.3)  # 70 %: must not be sent yet
        await push(job, 2)

        html = await socket.receive_from(timeout=10)
        for place in ("row", "chip"):
            # data-sampled-at: libvirt's sample time, for bench/fanout.py's delivery latency
            assert f'<span id="guest-{web}-move-{place}" class="move" hx-swap-oob="true" data-sampled-at="1">' in html
        assert html.count("moving → hv-b 42 %") == 2
        assert f'<a class="badge badge--migrating" href="/migrations/{job.pk}/">' in html
        assert html.count('value="42" aria-label="Guest migration of web01"') == 2
        assert await socket.receive_nothing(timeout=0.5)  # the second sample was held back

        await asyncio.sleep(migration_events.OUTSIDE_EVERY_S)
        await push(job, 3)
        assert "moving → hv-b 70 %" in await socket.receive_from(timeout=10)  # the window passed

    async def test_the_banner_and_the_guests_row_show_the_same_figure_at_every_push(self, socket, make_user, cluster):
        """Both are pushed on one clock from one figure: sample by sample, whatever reaches the topology
        reaches the banner in the same push (they showed 13 % and 16 % when the banner had its own clock)."""
        import re

        from migrations_app.consumers import ActiveMigrationsConsumer

        user = await sync_to_async(make_user)("viewer", username="vic")
        banner = WebsocketCommunicator(ActiveMigrationsConsumer.as_asgi(), "/ws/migrations/active/")
        banner.scope["user"] = user
        assert (await banner.connect())[0]
        job = await sync_to_async(start_moving)(cluster)
        push = sync_to_async(migration_events.push_progress)
        seen = []
        for k, left in enumerate((0.87, 0.84, 0.62, 0.31)):
            job.data_remaining = round(job.data_total * left)
            await push(job, k)
            row = await socket.receive_from(timeout=10)
            line = await banner.receive_from(timeout=10)
            row_figures = set(re.findall(r"moving → hv-b (\d+) %", row))
            banner_figure = re.findall(r'aria-label="Progress of guest migration #\d+">(\d+)%</progress> (\d+)%', line)
            assert len(row_figures) == 1 and banner_figure == [(row_figures.pop(),) * 2], (row, line)
            seen.append(banner_figure[0][0])
            await asyncio.sleep(migration_events.OUTSIDE_EVERY_S)
        assert seen == ["13", "16", "38", "69"]
        await banner.disconnect()

    async def test_an_offline_move_shows_where_without_a_figure(self, socket, cluster):
        job = await sync_to_async(start_moving)(cluster, kind=Kind.OFFLINE, data_total=0, data_remaining=0)
        await sync_to_async(migration_events.push_progress)(job, 1)
        html = await socket.receive_from(timeout=10)
        assert html.count("moving → hv-b<") == 2 and "<progress" not in html and "%" not in html

    async def test_when_the_move_ends_the_row_and_card_come_back_without_it(self, socket, cluster):
        job = await sync_to_async(start_moving)(cluster)
        web = cluster["web"].pk

        def finish():
            migration_events._last_outside_push[job.pk] = 1.0
            MigrationJob.objects.filter(pk=job.pk).update(state=State.SUCCEEDED, phase=Phase.DONE)
            Guest.objects.filter(pk=web).update(migrating=False, hypervisor=cluster["hv_b"])
            migration_events.push_job(job.pk)

        await sync_to_async(finish)()
        html = await socket.receive_from(timeout=10)
        assert f'<tr id="guest-{web}-row" hx-swap-oob="true">' in html
        assert f'id="guest-{web}-chip"' in html  # now in hv-b's card
        assert f"guest-{web}-move" not in html and "moving" not in html
        assert job.pk not in migration_events._last_outside_push  # a finished job's throttle clock is dropped

    async def test_a_state_change_that_leaves_the_guest_as_it_was_does_not_re_render_the_topology(
        self, socket, cluster
    ):
        """Claimed, cancelling: the topology shows guests and hosts, not job states, and its render is the
        costliest push a worker makes while libvirt's move needs the cores. An ending does change the guest."""
        from migrations_app import services

        job = await sync_to_async(start_moving)(cluster)
        await sync_to_async(services.transition)(job.pk, State.CANCELLING, expected={State.RUNNING})
        assert await socket.receive_nothing(timeout=1.0)
        await sync_to_async(services.transition)(job.pk, State.CANCELLED, expected={State.CANCELLING})
        html = await socket.receive_from(timeout=10)
        assert f'<tr id="guest-{cluster["web"].pk}-row" hx-swap-oob="true">' in html
        assert "moving" not in html  # the ending cleared the guest's move


@pytest.mark.django_db(transaction=True, databases="__all__")
class TestStatePushes:
    """A state change is pushed from one thread per process: the caller (a request, a worker about to
    start libvirt's move) never waits for the render, and a push still waiting covers later changes."""

    @pytest.fixture(autouse=True)
    async def _close_worker_thread_connections(self):
        yield
        await sync_to_async(connections.close_all)()

    async def test_changes_made_while_the_pusher_is_busy_go_out_once_with_the_newest_state(self, make_user, cluster):
        from migrations_app.consumers import MigrationConsumer

        job = await sync_to_async(start_moving)(cluster)
        user = await sync_to_async(make_user)("viewer")
        socket = WebsocketCommunicator(MigrationConsumer.as_asgi(), f"/ws/migrations/{job.pk}/")
        socket.scope["user"] = user
        socket.scope["url_route"] = {"kwargs": {"pk": job.pk}}
        assert (await socket.connect())[0]
        assert 'data-state="running"' in await socket.receive_from(timeout=10)  # the card as it was on connect
        busy = threading.Event()
        migration_events._pusher.submit(busy.wait, 10)  # the push thread is rendering something else

        def two_changes():
            migration_events.push_job(job.pk)  # returns at once: nothing is rendered on this thread
            MigrationJob.objects.filter(pk=job.pk).update(state=State.SUCCEEDED, phase=Phase.DONE)
            migration_events.push_job(job.pk)

        await sync_to_async(two_changes)()
        assert await socket.receive_nothing(timeout=0.3)  # still queued behind the busy thread
        busy.set()
        html = await socket.receive_from(timeout=10)
        assert 'data-state="succeeded"' in html
        assert await socket.receive_nothing(timeout=0.5)  # one push for both changes
        await socket.disconnect()

    async def test_a_viewer_who_connects_after_the_end_gets_the_final_state_at_once(self, make_user, cluster):
        """A socket that dropped while the job ended (a web node or Redis restarted) missed the last push:
        on reconnect the consumer sends the card as the database has it, so the page catches up."""
        from migrations_app.consumers import MigrationConsumer

        job = await sync_to_async(start_moving)(cluster)
        await sync_to_async(MigrationJob.objects.filter(pk=job.pk).update)(state=State.SUCCEEDED, phase=Phase.DONE)
        user = await sync_to_async(make_user)("viewer")
        socket = WebsocketCommunicator(MigrationConsumer.as_asgi(), f"/ws/migrations/{job.pk}/")
        socket.scope["user"] = user
        socket.scope["url_route"] = {"kwargs": {"pk": job.pk}}
        assert (await socket.connect())[0]
        html = await socket.receive_from(timeout=10)
        assert f'id="migration-{job.pk}-progress"' in html and 'hx-swap-oob="true"' in html
        assert 'data-state="succeeded"' in html
        await socket.disconnect()


def test_a_waiting_push_re_renders_the_topology_if_any_change_it_covers_asked_for_it(monkeypatch):
    sent = []
    monkeypatch.setattr(migration_events, "_render_and_send_job", lambda job_id, topology: sent.append(topology))
    busy = threading.Event()
    migration_events._pusher.submit(busy.wait, 10)
    migration_events.push_job(-1, topology=True)  # the request: the guest is now "migrating"
    migration_events.push_job(-1, topology=False)  # claimed before that push went out
    busy.set()
    migration_events.wait_for_pushes(timeout=10)  # the queue has drained
    assert sent == [True]
