"""audit_record(): rows chain up, survive the database round trip, and are written with the caller's change."""

import threading

import pytest
from django.db import connection, transaction

from accounts.audit import audit_record, event_hash, request_ip
from accounts.chain import verify_chain
from accounts.models import AuditEvent
from tests.factories import make_user


@pytest.mark.django_db
def test_rows_chain_to_each_other_and_verify():
    op = make_user("op1", "operator")
    first = audit_record(
        action="migration.requested",
        actor=op,
        source_ip="127.0.0.1",
        guest="web01",
        guest_uuid="0f3c1b1e-8a6e-4b6a-9c1e-0d1b2c3d4e5f",
        hypervisor="hv-a",
        migration_id=7,
        params={"kind": "live", "bandwidth_mib": 100.5, "checks": [{"ok": True}]},
    )
    second = audit_record(action="migration.failed", outcome="failed", message="libvirt: unable to connect")
    assert first.prev_hash == "" or AuditEvent.objects.filter(hash=first.prev_hash).exists()
    assert second.prev_hash == first.hash
    stored = AuditEvent.objects.get(pk=first.pk)
    assert event_hash(stored) == stored.hash  # the round trip through the database keeps the hash valid
    assert stored.actor_username == "op1" and stored.params["checks"] == [{"ok": True}]
    report = verify_chain()
    assert report.ok and report.rows == AuditEvent.objects.count()


@pytest.mark.django_db
def test_anonymous_actor_is_recorded_as_system():
    from django.contrib.auth.models import AnonymousUser

    event = audit_record(action="inventory.refresh_requested", actor=AnonymousUser())
    assert event.actor is None and event.actor_username == ""


@pytest.mark.django_db
def test_row_rolls_back_with_the_change_it_describes():
    before = AuditEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(action="hypervisor.created", hypervisor="hv-x")
        raise RuntimeError("the change failed")
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_deleting_a_user_keeps_their_rows_and_the_chain():
    user = make_user("leaver", "viewer")
    audit_record(action="user.created", actor=user)
    user.delete()  # in PostgreSQL the trigger lets exactly this SET NULL through
    event = AuditEvent.objects.filter(action="user.created").latest("id")
    assert event.actor_id is None and event.actor_username == "leaver"
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_writers_keep_one_chain():
    errors = []

    def writer(tag: str):
        try:
            for i in range(15):
                with transaction.atomic():
                    audit_record(action="test.concurrent", params={"writer": tag, "i": i})
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert AuditEvent.objects.filter(action="test.concurrent").count() == 30
    report = verify_chain()
    assert report.ok, report.problem
    # Every row has a distinct predecessor: no fork in the chain.
    prevs = list(AuditEvent.objects.values_list("prev_hash", flat=True))
    assert len(prevs) == len(set(prevs))


def test_request_ip_normalizes_and_ignores_forwarded_headers():
    class Req:
        META = {"REMOTE_ADDR": "::ffff:127.0.0.1", "HTTP_X_FORWARDED_FOR": "6.6.6.6"}

    assert request_ip(Req()) == "::ffff:7f00:1"
    Req.META = {"REMOTE_ADDR": "not an ip"}
    assert request_ip(Req()) == ""
    Req.META = {"REMOTE_ADDR": "127.0.0.2"}
    assert request_ip(Req()) == "127.0.0.2"


def test_audit_rows_name_the_client_behind_a_trusted_proxy_only(settings):
    from django.test import RequestFactory

    from accounts.audit import request_ip

    behind = RequestFactory().get("/", REMOTE_ADDR="127.0.0.2", HTTP_X_FORWARDED_FOR="127.0.0.77")
    assert request_ip(behind) == "127.0.0.2"  # no trusted proxy configured: the header is the client's text
    settings.TRUSTED_PROXIES = ["127.0.0.2/32"]
    assert request_ip(behind) == "127.0.0.77"
