"""Every refused action is an audit row `auth.denied`: who, role, method, path, what was needed, source IP.

Called where a refusal is decided (the 403 of the pages, the API's permission check, a socket refused
before it joins a group, a job whose requester lost the right). A flood must not bloat the append-only
table: per user and path at most one row per window (KVMCLUSTER_DENIAL_WINDOW_SECONDS, 60 s); the
refusals in between are counted and the next row carries that count as `suppressed`. The counters live
in Django's cache (Redis in production, so every process shares them; atomic add/incr).
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache

from accounts.audit import audit_record
from accounts.permissions import user_role

PREFIX = "kvm:denied:"


def _window() -> int:
    return int(getattr(settings, "KVMCLUSTER_DENIAL_WINDOW_SECONDS", 60))


def record_denial(*, user, perm: str, method: str, path: str, source_ip: str = "", via: str = "page") -> bool:
    """Write the auth.denied row unless one for this user and path was written within the window.
    Returns True when a row was written. Never raises: a refusal must stay a refusal."""
    who = str(user.pk) if getattr(user, "is_authenticated", False) else f"anon:{source_ip}"
    key = PREFIX + hashlib.sha256(f"{who}\n{path}".encode()).hexdigest()[:32]
    counted = key + ":suppressed"
    window = _window()
    if window > 0 and not cache.add(key, 1, timeout=window):
        try:
            cache.incr(counted)
        except ValueError:  # first suppressed one since the last row
            if not cache.add(counted, 1, timeout=86_400):
                cache.incr(counted)
        return False
    suppressed = cache.get(counted, 0) if window > 0 else 0
    if suppressed:
        cache.decr(counted, suppressed)  # keep any counted meanwhile for the row after this one
    audit_record(
        action="auth.denied",
        actor=user,
        source_ip=source_ip,
        outcome="refused",
        params={
            "role": user_role(user) or "none",
            "method": method[:10],
            "path": path[:300],
            "needed": str(perm),
            "via": via,
            "suppressed": suppressed,
        },
        message=f"{method[:10]} {path[:300]} refused: needs {perm}",
    )
    return True


def record_request_denial(request, perm: str, via: str = "page") -> None:
    from accounts.audit import request_ip

    record_denial(
        user=request.user, perm=perm, method=request.method, path=request.path, source_ip=request_ip(request), via=via
    )
