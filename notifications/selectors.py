"""Reads for the notification pages."""

from __future__ import annotations

from django.db.models import OuterRef, Subquery

from notifications.models import Delivery, Target

LOG_LENGTH = 50


def targets_with_last_delivery() -> list[Target]:
    """Every target with `last_status` / `last_at` of its newest delivery (None if it has none)."""
    newest = Delivery.objects.filter(target=OuterRef("pk")).order_by("-created_at", "-id")
    return list(
        Target.objects.annotate(
            last_status=Subquery(newest.values("status")[:1]), last_at=Subquery(newest.values("created_at")[:1])
        ).order_by("name")
    )


def delivery_log(target: Target) -> list[Delivery]:
    """The target's newest deliveries, newest first."""
    return list(target.deliveries.order_by("-created_at", "-id")[:LOG_LENGTH])
