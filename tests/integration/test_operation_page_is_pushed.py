"""An operator watching a drain's page sees its counts, bar and ETA move as the moves do: each change of
the operation or of one of its moves pushes the page's own progress partial over the websocket
(libvirt test-driver hosts; the worker is replaced by the test settling each move)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections

from hosts.services import placement
from migrations_app import events, services
from migrations_app.consumers import OperationConsumer
from migrations_app.services import operation_controls
from tests.factories import make_user
from tests.integration.sockets_support import open_socket
from tests.integration.test_maintenance_operations import _enter, drain  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    """sync_to_async runs the ORM on a worker thread: close its connections so the test DB can be dropped."""
    yield
    await sync_to_async(events.wait_for_pushes)()
    await sync_to_async(connections.close_all)()


async def _socket(user, op_id: int) -> WebsocketCommunicator:
    return await open_socket(OperationConsumer.as_asgi(), f"/ws/operations/{op_id}/", user, pk=op_id)


def _succeed(job) -> None:
    """What the worker does after libvirt's verified move: the guest's new host, the job's ending."""
    placement.record_location(job.guest_id, power="shutoff", hypervisor=job.target)
    services.transition(job.pk, "succeeded", where_guest_is="target")


async def _until(socket: WebsocketCommunicator, text: str) -> str:
    """The pushes may be merged (a waiting push reads the newest counts): read until `text` shows."""
    seen = []
    for _ in range(10):
        html = await socket.receive_from(timeout=10)
        if text in html:
            return html
        seen.append(html)
    raise AssertionError(f"{text!r} never pushed; got {seen}")


async def test_a_move_ending_pushes_the_operation_panel_with_the_new_counts(drain):  # noqa: F811
    op = await sync_to_async(_enter)(drain)
    viewer = await sync_to_async(make_user)("op-watcher", "viewer", password=None)
    socket = await _socket(viewer, op.pk)
    await sync_to_async(events.wait_for_pushes)()
    first = await sync_to_async(lambda: op.jobs.get())()

    await sync_to_async(services.transition)(first.pk, "running")
    html = await _until(socket, "0 done · 1 running · 2 waiting · 0 failed, of 3")
    assert f'<section id="operation-{op.pk}-progress" class="panel" hx-swap-oob="true"' in html
    assert "hx-get" not in html  # a pushed panel does not poll: the socket is alive

    await sync_to_async(_succeed)(first)  # the next move starts in the same step
    html = await _until(socket, "1 done · 1 running · 1 waiting · 0 failed, of 3")
    assert 'value="33"' in html and f'id="operation-{op.pk}-eta">Time left: about' in html
    assert f'id="operation-{op.pk}-job-{first.pk}"' in html and "Succeeded" in html
    assert "Pause" not in html  # a viewer is pushed the panel without the controls
    await socket.disconnect()


async def test_an_operator_is_pushed_the_controls_that_fit_the_new_state(drain):  # noqa: F811
    op = await sync_to_async(_enter)(drain)
    socket = await _socket(drain["operator"], op.pk)
    await sync_to_async(events.wait_for_pushes)()
    await sync_to_async(operation_controls.operation_pause)(operation=op, actor=drain["operator"])
    html = await _until(socket, f'<h2 id="operation-{op.pk}-state">Paused')
    assert "Resume" in html and ">Pause<" not in html and "Cancel" in html
    # no request renders a push, so no CSRF field: the control posts through htmx (the token rides in the
    # header <body hx-headers> sets) and swaps in the panel of the page it lands on
    assert f'hx-post="/operations/{op.pk}/resume/"' in html and f'hx-select="#operation-{op.pk}-progress"' in html
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
def test_a_pushed_control_posted_by_htmx_with_the_header_token_works(drain):  # noqa: F811
    from django.test import Client

    op = _enter(drain)
    client = Client(enforce_csrf_checks=True)
    client.force_login(drain["operator"])
    client.get(op.get_absolute_url())  # the page sets the CSRF cookie; htmx sends its value as a header
    token = client.cookies["csrftoken"].value
    url = f"/operations/{op.pk}/pause/"
    assert client.post(url, HTTP_HX_REQUEST="true").status_code == 403  # no token at all: refused
    response = client.post(url, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token, follow=True)
    op.refresh_from_db()
    assert response.status_code == 200 and op.state == "paused"
    again = client.post(url, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token)
    assert (
        again.status_code == 200
        and f'id="operation-{op.pk}-error">operation #{op.pk} is paused' in again.content.decode()
    )
