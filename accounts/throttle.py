"""Login throttling: after LOGIN_MAX_FAILURES failures for one (username, IP) inside LOGIN_FAILURE_WINDOW,
sign-in for that pair is refused for LOGIN_LOCKOUT, without looking at the password.

State lives in accounts.LoginThrottle (the database: shared by every web process, survives restarts).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import LoginThrottle


def _limits() -> tuple[int, dt.timedelta, dt.timedelta]:
    return (
        getattr(settings, "LOGIN_MAX_FAILURES", 5),
        dt.timedelta(seconds=getattr(settings, "LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60)),
        dt.timedelta(seconds=getattr(settings, "LOGIN_LOCKOUT_SECONDS", 15 * 60)),
    )


def _key(username: str, source_ip: str) -> tuple[str, str]:
    return (username or "").strip().lower()[:150], (source_ip or "")[:45]


def locked_until(username: str, source_ip: str) -> dt.datetime | None:
    """When the lock on this pair ends, or None if sign-in may be tried now."""
    name, ip = _key(username, source_ip)
    until = LoginThrottle.objects.filter(username=name, source_ip=ip).values_list("locked_until", flat=True).first()
    return until if until and until > timezone.now() else None


def record_failure(username: str, source_ip: str) -> dt.datetime | None:
    """Count one failure; returns the lock end if this failure started a lock."""
    max_failures, window, lockout = _limits()
    name, ip = _key(username, source_ip)
    now = timezone.now()
    with transaction.atomic():
        row = LoginThrottle.objects.select_for_update().filter(username=name, source_ip=ip).first()
        if row is None:
            try:
                with transaction.atomic():
                    row = LoginThrottle.objects.create(username=name, source_ip=ip, failures=0, first_failure_at=now)
            except IntegrityError:  # a concurrent failure created it first
                row = LoginThrottle.objects.select_for_update().get(username=name, source_ip=ip)
        if row.first_failure_at < now - window or (row.locked_until and row.locked_until <= now):
            row.failures, row.first_failure_at, row.locked_until = 0, now, None
        row.failures += 1
        started = None
        if row.failures >= max_failures and row.locked_until is None:
            row.locked_until = started = now + lockout
        row.save()
    return started


def record_success(username: str, source_ip: str) -> None:
    name, ip = _key(username, source_ip)
    LoginThrottle.objects.filter(username=name, source_ip=ip).delete()
