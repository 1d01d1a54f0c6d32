"""Sign-in throttling: per username (across addresses), per address (an IPv6 /64 is one), and one global
bucket for names that are not users.

Every attempt is counted *before* the password is checked, in one transaction that first checks every
bucket and then counts in all of them (`reserve`). Rows are locked (PostgreSQL: SELECT ... FOR UPDATE in a
fixed order; SQLite: every transaction is BEGIN IMMEDIATE, one writer at a time), so N parallel guesses
can never get more than the limit through. A successful sign-in clears the user's bucket and gives its
attempt back to the address bucket.

Why the locks differ: the account lock (LOGIN_ACCOUNT_LOCKOUT_SECONDS) is short and the address lock
(LOGIN_LOCKOUT_SECONDS) is the main one. An anonymous attacker on one address who fails against an admin
locks the admin out for a minute, and after LOGIN_IP_MAX_FAILURES their own address is locked for the
long period, so they cannot keep the admin locked out.

Why not django-axes: its AccessAttempt counters are read, compared and written in separate steps (parallel
guesses race past the limit), it has no notion of an IPv6 /64, and it stores the typed username of
attempts on accounts that do not exist. The database table we already have (accounts.LoginThrottle) does
all three right in ~100 lines. Django's cache incr is atomic, but the embedded profile's cache is per
process, so the counters would not be shared between the web and worker processes.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import LoginThrottle

# Django usernames never contain "*", so this cannot collide with a real user's bucket.
UNKNOWN_BUCKET = "*unknown*"


@dataclass(frozen=True)
class Bucket:
    username: str
    source_ip: str
    limit: int
    lockout: dt.timedelta
    label: str  # "account", "address" or "unknown users" (for messages and audit rows)


@dataclass
class Reservation:
    """The outcome of `reserve`: refused until `locked_until` (None = go on), and locks this try started."""

    locked_until: dt.datetime | None = None
    refused_by: str = ""
    started: list[tuple[str, dt.datetime]] = field(default_factory=list)


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def _window() -> dt.timedelta:
    return dt.timedelta(seconds=_setting("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60))


def address_key(source_ip: str) -> str:
    """The address a client is counted under: IPv4 as is, IPv6 as its /64 (one subscriber's network)."""
    try:
        ip = ipaddress.ip_address((source_ip or "").strip())
    except ValueError:
        return ""
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _buckets(username: str, source_ip: str) -> list[Bucket]:
    name = (username or "").strip()[:150]
    account_lock = dt.timedelta(seconds=_setting("LOGIN_ACCOUNT_LOCKOUT_SECONDS", 60))
    out = []
    if get_user_model().objects.filter(username__iexact=name).exists():
        out.append(Bucket(name.lower(), "", _setting("LOGIN_MAX_FAILURES", 5), account_lock, "account"))
    else:  # what was typed is not stored (it may be a password): one shared bucket for all of them
        out.append(
            Bucket(UNKNOWN_BUCKET, "", _setting("LOGIN_UNKNOWN_MAX_FAILURES", 50), account_lock, "unknown users")
        )
    net = address_key(source_ip)
    if net:
        lockout = dt.timedelta(seconds=_setting("LOGIN_LOCKOUT_SECONDS", 15 * 60))
        out.append(Bucket("", net, _setting("LOGIN_IP_MAX_FAILURES", 10), lockout, "address"))
    return sorted(out, key=lambda b: (b.username, b.source_ip))  # one lock order: no deadlocks


def _locked_row(bucket: Bucket, now: dt.datetime) -> LoginThrottle:
    query = LoginThrottle.objects.select_for_update().filter(username=bucket.username, source_ip=bucket.source_ip)
    row = query.first()
    if row is None:
        try:
            with transaction.atomic():
                row = LoginThrottle.objects.create(
                    username=bucket.username, source_ip=bucket.source_ip, failures=0, first_failure_at=now
                )
        except IntegrityError:  # a parallel attempt created it first
            row = query.get()
    if (row.locked_until and row.locked_until <= now) or (
        not row.locked_until and row.first_failure_at < now - _window()
    ):
        row.failures, row.first_failure_at, row.locked_until = 0, now, None
    return row


def reserve(username: str, source_ip: str) -> Reservation:
    """Check every bucket and, if none is locked, count this attempt in all of them (atomically)."""
    now = timezone.now()
    result = Reservation()
    with transaction.atomic():
        rows = [(bucket, _locked_row(bucket, now)) for bucket in _buckets(username, source_ip)]
        for bucket, row in rows:
            if row.locked_until and (result.locked_until is None or row.locked_until > result.locked_until):
                result.locked_until, result.refused_by = row.locked_until, bucket.label
        for bucket, row in rows:
            if result.locked_until is None:
                row.failures += 1
                if row.failures >= bucket.limit:  # this is the last try the window allows
                    row.locked_until = now + bucket.lockout
                    result.started.append((bucket.label, row.locked_until))
            row.save()
    return result


def locked_until(username: str, source_ip: str) -> dt.datetime | None:
    """When the longest lock on this attempt's buckets ends, or None (read only, for display)."""
    now = timezone.now()
    ends = [
        row.locked_until
        for bucket in _buckets(username, source_ip)
        for row in LoginThrottle.objects.filter(username=bucket.username, source_ip=bucket.source_ip)
        if row.locked_until and row.locked_until > now
    ]
    return max(ends, default=None)


def record_success(username: str, source_ip: str) -> None:
    """The password was right: forget the account's failures and give the address its attempt back."""
    with transaction.atomic():
        LoginThrottle.objects.filter(username=(username or "").strip().lower()[:150], source_ip="").delete()
        net = address_key(source_ip)
        row = LoginThrottle.objects.select_for_update().filter(username="", source_ip=net).first() if net else None
        if row is not None and row.failures > 0:
            row.failures -= 1
            if row.failures < _setting("LOGIN_IP_MAX_FAILURES", 10):  # the lock this very attempt started
                row.locked_until = None
            row.save(update_fields=["failures", "locked_until"])
