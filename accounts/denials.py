"""Refused actions -> `auth.denied` audit rows, rate-limited per (user, path).

`record_denial()` is the one call every interface makes when it refuses someone: views (through
`accounts.permissions.forbidden`), websocket consumers that refuse to join, jobs, and later the REST API.

Why a rate limit: the audit table is append-only, so a client looping on a forbidden URL would grow it
without bound. The first refusal for a (user, path) in DENIAL_AUDIT_WINDOW_SECONDS writes a row; later ones
in that window only count, and the next row written for that pair carries `params.suppressed = N`.

Counting uses Django's cache (`add` and `incr` are atomic in Redis and in the local-memory cache), not the
database: a flood should not cost a write per request either. In the embedded profile the cache is per
process, so each process writes at most one row per pair per window, which is still bounded.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.core.cache import cache

from accounts.audit import audit_record

UNKNOWN_USER = "unknown user"


def _window() -> int:
    return int(getattr(settings, "DENIAL_AUDIT_WINDOW_SECONDS", 60))


def _pair_key(who: str, path: str) -> str:
    digest = hashlib.sha256(f"{who}\n{path}".encode()).hexdigest()[:32]
    return f"kvm:denied:{digest}"


def keyed_hash(text: str) -> str:
    """HMAC-SHA256 of `text` under SECRET_KEY: equal inputs are recognisable, the input is not readable."""
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, b"kvmcluster.denied-username\n" + text.encode(), hashlib.sha256).hexdigest()[:32]


def _take_slot(key: str) -> tuple[bool, int]:
    """(write a row now?, how many were suppressed before it). Atomic in the cache."""
    count_key = key + ":n"
    if _window() <= 0:  # no rate limit (the test suite's default): every refusal is a row
        return True, 0
    if cache.add(key, 1, timeout=_window()):
        suppressed = cache.get(count_key) or 0
        if suppressed:
            try:  # subtract what we report, keeping any increments that raced in since the read
                cache.decr(count_key, suppressed)
            except ValueError:
                pass
        return True, int(suppressed)
    # Counters outlive the window so the next row can report them.
    cache.add(count_key, 0, timeout=_window() * 10)
    try:
        cache.incr(count_key)
    except ValueError:  # expired between add and incr
        cache.set(count_key, 1, timeout=_window() * 10)
    return False, 0


def record_denial(
    *,
    user,
    method: str,
    path: str,
    source_ip: str = "",
    perm: str = "",
    interface: str = "view",
    reason: str = "",
) -> bool:
    """Audit one refused action. Returns True if a row was written, False if it was only counted.

    `user` may be anonymous/None (e.g. a socket without a session). `interface` says where it was refused:
    "view", "socket", "job", "api".
    """
    from accounts.permissions import user_role  # permissions imports this module

    signed_in = bool(getattr(user, "is_authenticated", False))
    who = user.get_username() if signed_in else ""
    write, suppressed = _take_slot(_pair_key(who or f"anon:{source_ip}", path))
    if not write:
        return False
    params = {
        "role": (user_role(user) if signed_in else "") or "none",
        "method": (method or "")[:16],
        "path": (path or "")[:500],
        "perm": str(perm),
        "interface": interface,
    }
    if suppressed:
        params["suppressed"] = suppressed
    audit_record(
        action="auth.denied",
        actor=user if signed_in else None,
        source_ip=source_ip,
        params=params,
        outcome="refused",
        message=(reason or f"refused {method} {path}")[:500],
    )
    return True
