"""Every change to notification targets and deliveries goes through one function here.

Invariants kept here:
- each admin action on a target writes its audit row in the same transaction (never the secret);
- `notify()` writes one Delivery per subscribed target in the caller's transaction (they exist iff the
  event does) and enqueues their first attempt once it commits;
- an attempt is claimed by a compare-and-set on (status, attempts, due time) that pushes the due time a
  lease ahead: two workers never send the same attempt, and a worker that dies mid-send leaves the
  delivery due again after the lease; a failure schedules the next attempt per RETRY_DELAYS_SECONDS.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.audit import audit_record
from notifications import events, senders
from notifications.models import Delivery, Target

log = logging.getLogger(__name__)

# Waits before the 2nd, 3rd, ... attempt: a receiver down for a deploy gets the next minutes, one down for
# the night still gets the event in the morning. Then the delivery is FAILED (visible in the log).
RETRY_DELAYS_SECONDS = (60, 300, 1800, 7200, 21600)
MAX_ATTEMPTS = len(RETRY_DELAYS_SECONDS) + 1
# Longer than a task may run (TASK_TIMEOUT_SECONDS): a claimed attempt is not due again while it runs.
TASK_TIMEOUT_SECONDS = 120
LEASE_SECONDS = 600
TARGET_FIELDS = ("name", "kind", "url", "recipients", "events", "enabled")


def _audit_params(target: Target, secret_changed: bool = False) -> dict:
    """What the audit trail keeps of a target: no secret, and the URL without its query (which may hold a token)."""
    parts = urlsplit(target.url) if target.url else None
    url = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts else ""
    return {
        "name": target.name,
        "kind": target.kind,
        "url": url,
        "recipients": target.recipient_list,
        "events": list(target.events),
        "enabled": target.enabled,
        "secret_changed": secret_changed,
    }


def target_create(*, fields: dict, secret: str, actor, source_ip: str = "") -> tuple[Target, str]:
    """Add a target. Returns it and the secret generated for a webhook when none was typed ("" otherwise)."""
    generated = ""
    if fields.get("kind") == Target.Kind.WEBHOOK and not secret:
        secret = generated = secrets.token_urlsafe(32)
    with transaction.atomic():
        target = Target.objects.create(secret=secret, **{k: fields[k] for k in TARGET_FIELDS})
        audit_record(
            action="notification.target_created",
            actor=actor,
            source_ip=source_ip,
            params=_audit_params(target, secret_changed=True),
        )
    return target, generated


def target_update(*, target: Target, fields: dict, secret: str, actor, source_ip: str = "") -> tuple[Target, str]:
    """Change a target; a blank `secret` keeps the current one. Returns it and the secret generated when
    it became a webhook without one ("" otherwise)."""
    generated = ""
    with transaction.atomic():
        target = Target.objects.select_for_update().get(pk=target.pk)
        before = _audit_params(target)
        for key in TARGET_FIELDS:
            setattr(target, key, fields[key])
        if secret:
            target.secret = secret
        if target.kind == Target.Kind.WEBHOOK and not target.secret:
            target.secret = generated = secrets.token_urlsafe(32)
        target.updated_at = timezone.now()
        target.save()
        audit_record(
            action="notification.target_changed",
            actor=actor,
            source_ip=source_ip,
            params={**_audit_params(target, secret_changed=bool(secret or generated)), "before": before},
        )
    return target, generated


def target_delete(*, target: Target, actor, source_ip: str = "") -> None:
    """Remove a target and its delivery log (the audit trail keeps the removal)."""
    with transaction.atomic():
        params = _audit_params(target)
        Target.objects.filter(pk=target.pk).delete()
        audit_record(action="notification.target_deleted", actor=actor, source_ip=source_ip, params=params)


# ------------------------------------------------------------------------------------ deliveries


def notify(event: str, data: dict, occurred_at: dt.datetime | None = None) -> list[int]:
    """Record `event` for every enabled target subscribed to it; their first attempts go out on commit.

    Call it inside the transaction of the change the event reports. Returns the new deliveries' ids.
    """
    if event not in events.EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    # JSON "contains" lookups differ between SQLite and PostgreSQL; targets are few, so filter here.
    targets = [t for t in Target.objects.filter(enabled=True) if event in t.events]
    if not targets:
        return []
    now = timezone.now()
    body = events.payload(event, data, occurred_at or now)
    with transaction.atomic():
        rows = Delivery.objects.bulk_create(
            [
                Delivery(
                    target=t,
                    event=event,
                    event_id=body["id"],
                    payload=body,
                    next_attempt_at=now,
                    queued_at=now,
                    created_at=now,
                )
                for t in targets
            ]
        )
    ids = [row.pk for row in rows]
    transaction.on_commit(lambda: [enqueue(pk) for pk in ids], robust=True)
    return ids


def _enqueue(delivery_id: int) -> None:
    """Hand one attempt to a django-q2 worker; tests replace this."""
    from django_q.tasks import async_task

    name = f"notification-{delivery_id}"
    # One broker attempt: retries are ours (RETRY_DELAYS_SECONDS), so the broker must never re-deliver.
    async_task(
        "notifications.tasks.deliver",
        delivery_id,
        task_name=name,
        q_options={"max_attempts": 1, "timeout": TASK_TIMEOUT_SECONDS, "task_name": name},
    )


def enqueue(delivery_id: int) -> None:
    _enqueue(delivery_id)


def _due(now: dt.datetime):
    not_queued = Q(queued_at__isnull=True) | Q(queued_at__lt=now - dt.timedelta(seconds=LEASE_SECONDS))
    return Delivery.objects.filter(not_queued, status=Delivery.Status.PENDING, next_attempt_at__lte=now)


def due_deliveries(now: dt.datetime | None = None, limit: int = 200) -> list[int]:
    """Ids of pending deliveries whose next attempt is due and not already handed to a worker."""
    return list(_due(now or timezone.now()).order_by("next_attempt_at", "id").values_list("pk", flat=True)[:limit])


def enqueue_due(now: dt.datetime | None = None, limit: int = 200) -> list[int]:
    """Hand every due attempt to a worker, once: each is marked queued by compare-and-set first, so two
    runs of the retry schedule never enqueue the same attempt twice."""
    now = now or timezone.now()
    queued = [pk for pk in due_deliveries(now, limit) if _due(now).filter(pk=pk).update(queued_at=now)]
    for pk in queued:
        enqueue(pk)
    return queued


def _claim(delivery: Delivery, now: dt.datetime) -> bool:
    return bool(
        Delivery.objects.filter(
            pk=delivery.pk, status=Delivery.Status.PENDING, attempts=delivery.attempts, next_attempt_at__lte=now
        ).update(attempts=F("attempts") + 1, next_attempt_at=now + dt.timedelta(seconds=LEASE_SECONDS), updated_at=now)
    )


def attempt_delivery(delivery_id: int, now: dt.datetime | None = None) -> Delivery | None:
    """Make one attempt if the delivery is due; record the outcome. None if not due or taken by another."""
    now = now or timezone.now()
    delivery = Delivery.objects.select_related("target").filter(pk=delivery_id).first()
    if delivery is None or not _claim(delivery, now):
        return None
    attempt = delivery.attempts + 1
    target = delivery.target
    if not target.enabled:
        result = senders.SendResult(ok=False, error="the target is disabled", permanent=True)
    elif target.kind == Target.Kind.EMAIL:
        result = senders.send_email(target.recipient_list, delivery.payload)
    else:
        result = senders.post_webhook(target.url, target.secret, delivery.payload, delivery.pk, now.timestamp())
    fields: dict = {"last_http_status": result.http_status, "last_error": result.error, "updated_at": timezone.now()}
    if result.ok:
        fields.update(status=Delivery.Status.DELIVERED, delivered_at=now, next_attempt_at=None)
    elif result.permanent or attempt >= MAX_ATTEMPTS:
        fields.update(status=Delivery.Status.FAILED, next_attempt_at=None)
    else:
        fields.update(next_attempt_at=now + dt.timedelta(seconds=RETRY_DELAYS_SECONDS[attempt - 1]), queued_at=None)
    # Compare-and-set on our own attempt: a late writer never overwrites a later attempt's outcome.
    Delivery.objects.filter(pk=delivery.pk, attempts=attempt, status=Delivery.Status.PENDING).update(**fields)
    if not result.ok:
        log.warning("notification %s to %s, attempt %s: %s", delivery.event, target.name, attempt, result.error)
    return Delivery.objects.select_related("target").filter(pk=delivery.pk).first()  # None if deleted meanwhile
