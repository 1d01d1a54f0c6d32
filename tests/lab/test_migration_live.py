"""An operator moves lab guests live on the real two-host lab: progress over the websocket, the guest
keeps running on the target, cancel leaves it on the source, bandwidth changes mid-flight."""

import asyncio

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from accounts.models import AuditEvent
from hosts.drivers import libvirt as driver
from kvmcluster.routing import websocket_urlpatterns
from migrations_app import services

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def test_live_move_streams_progress_over_websocket_and_guest_keeps_running_on_target(mlab, runner, lab):
    mlab.ensure_on("lab-g1", "hv-a")
    before = lab.wait_heartbeat("lab-g1", timeout=60)
    mark = lab.console_offset("lab-g1")
    runner.autostart = False
    job = mlab.request("lab-g1", "hv-b", bandwidth_mibps=10)
    assert job.state == "pending"

    async def watch() -> list[str]:
        comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/migrations/{job.pk}/")
        comm.scope["user"] = mlab.viewer  # viewers watch too; they just cannot act
        connected, _ = await comm.connect()
        assert connected
        runner.start(job.pk)
        messages = []
        while True:
            text = await comm.receive_from(timeout=60)
            messages.append(text)
            if 'data-terminal="1"' in text:
                break
        await comm.disconnect()
        return messages

    messages = asyncio.run(watch())
    runner.join()
    job = mlab.wait_done(job.pk)
    assert job.state == "succeeded", job.error
    progress = [
        m for m in messages if "migration-sample" in m and 'data-state="running"' in m and 'data-total="0"' not in m
    ]
    assert len(progress) >= 4, f"only {len(progress)} progress messages"
    assert all(f'id="migration-{job.pk}-progress"' in m and 'hx-swap-oob="true"' in m for m in messages)
    # libvirt's word: running on B, gone from A; and the guest never stopped counting
    assert lab.running_on("lab-g1") == ["hv-b"]
    assert driver.find_domain(lab.uri("hv-a"), lab.guest_uuids["lab-g1"]) is None
    assert lab.assert_kept_running("lab-g1", since_offset=mark) > before + 2
    guest = mlab.guest("lab-g1")
    assert guest.hypervisor.name == "hv-b" and not guest.migrating
    assert job.total_ms and job.downtime_ms is not None and job.data_sent
    assert job.samples.count() >= 4
    actions = set(AuditEvent.objects.filter(migration_id=job.pk).values_list("action", flat=True))
    assert {"migration.requested", "migration.started", "migration.succeeded"} <= actions


def test_cancel_mid_flight_keeps_guest_running_on_source(mlab, lab):
    mlab.ensure_on("lab-g1", "hv-a")
    mark = lab.console_offset("lab-g1")
    job = mlab.request("lab-g1", "hv-b", bandwidth_mibps=4)
    mlab.wait_progress(job.pk)
    services.migration_cancel(job=job, actor=mlab.operator, source_ip="127.0.0.1")
    job = mlab.wait_done(job.pk)
    assert job.state == "cancelled", job.error
    assert "abort" in job.error.lower() or "cancel" in job.error.lower()
    assert lab.running_on("lab-g1") == ["hv-a"]
    assert driver.find_domain(lab.uri("hv-b"), lab.guest_uuids["lab-g1"]) is None
    assert lab.assert_kept_running("lab-g1", since_offset=mark)
    assert mlab.guest("lab-g1").hypervisor.name == "hv-a"
    assert AuditEvent.objects.filter(migration_id=job.pk, action="migration.cancelled").exists()


def test_bandwidth_raised_mid_flight(mlab, lab):
    mlab.ensure_on("lab-g1", "hv-a")
    mark = lab.console_offset("lab-g1")
    job = mlab.request("lab-g1", "hv-b", bandwidth_mibps=3)
    job = mlab.wait(job.pk, lambda j: j.is_terminal or j.throughput_bps > 0)
    slow = job.throughput_bps
    assert 0 < slow <= 4 * 1024 * 1024  # libvirt honours the 3 MiB/s cap
    # 20 MiB/s, not "unlimited": the rest must still take long enough for the throttled samples to see it
    services.migration_set_bandwidth(job=job, mibps=20, actor=mlab.operator, source_ip="127.0.0.1")
    job = mlab.wait_done(job.pk)
    assert job.state == "succeeded", job.error
    assert job.bandwidth_mibps == 20
    fastest = max(job.samples.values_list("throughput_bps", flat=True))
    assert fastest > 2 * slow
    assert AuditEvent.objects.filter(migration_id=job.pk, action="migration.bandwidth_changed", outcome="ok").exists()
    assert lab.running_on("lab-g1") == ["hv-b"]
    lab.assert_kept_running("lab-g1", since_offset=mark)


def test_compressed_live_move_is_checked_on_both_qemus_and_lands(mlab, lab):
    mlab.ensure_on("lab-g1", "hv-a")
    mark = lab.console_offset("lab-g1")
    job = mlab.request("lab-g1", "hv-b", compressed=True)
    item = next(i for i in job.preflight if i["key"] == "compression")
    assert item["status"] == "pass" and "XBZRLE cache" in item["evidence"], item
    job = mlab.wait_done(job.pk)
    assert job.state == "succeeded", job.error
    assert lab.running_on("lab-g1") == ["hv-b"]
    cpu = next(i for i in job.preflight if i["key"] == "cpu")
    assert cpu["status"] == "pass" and "CPU" in cpu["evidence"], cpu  # the guest's own model, judged on hv-b
    lab.assert_kept_running("lab-g1", since_offset=mark)
