"""Notification targets and the log of deliveries to them."""

from __future__ import annotations

import uuid

from django.db import models
from django.urls import reverse
from django.utils import timezone


class Target(models.Model):
    """Where notifications of the subscribed `events` go: a webhook URL or email recipients.

    Invariants: `events` holds only keys of notifications.events.EVENTS; a webhook's URL passed the
    address allow-list when saved (and is checked again at each delivery); `secret` signs every
    webhook body and is never written to the audit trail or shown again after it is set.
    """

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Webhook (HTTP POST, signed)"
        EMAIL = "email", "Email"

    name = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.WEBHOOK)
    url = models.URLField(max_length=500, blank=True)
    secret = models.CharField(max_length=128, blank=True)
    recipients = models.TextField(blank=True, help_text="Email addresses, one per line or comma-separated.")
    events = models.JSONField(default=list)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("notification-target-detail", kwargs={"pk": self.pk})

    @property
    def recipient_list(self) -> list[str]:
        return [r.strip() for r in self.recipients.replace("\n", ",").split(",") if r.strip()]

    @property
    def destination(self) -> str:
        return self.url if self.kind == self.Kind.WEBHOOK else ", ".join(self.recipient_list)


class Delivery(models.Model):
    """One event for one target, with every attempt's outcome.

    Invariants: PENDING has `next_attempt_at` (when it is due; a worker that claims it pushes it a lease
    ahead, so a crashed attempt is retried and two workers never send the same attempt); DELIVERED and
    FAILED are final and have none. `attempts` only grows, by a compare-and-set claim.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (gave up)"

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=64)
    event_id = models.UUIDField(default=uuid.uuid4)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When a task for the next attempt was enqueued: the retry schedule enqueues a due delivery once, not
    # again each minute while the workers are busy (a task that was lost is enqueued again after a lease).
    queued_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="notif_delivery_due")]

    def __str__(self) -> str:
        return f"{self.event} → {self.target_id} ({self.status})"
