"""Checking roles in views: `require_perm`, `user_can`, `user_role`.

A refusal is a 403 whose body says what was needed and what the user has: a small page for normal
requests, plain text for htmx requests (so the swap target shows the reason, not a whole page).
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.template.loader import render_to_string

from accounts.clientip import client_ip
from accounts.denials import record_denial
from accounts.roles import PERMISSION_LABELS, ROLE_ORDER, Perm


def user_can(user, perm: Perm | str) -> bool:
    """True if `user` is an active, signed-in user holding `perm` (through a role or superuser)."""
    return bool(user is not None and user.is_authenticated and user.is_active and user.has_perm(str(perm)))


def user_role(user) -> str:
    """The user's highest role ("admin", "operator", "viewer"), "admin" for superusers, "" for none."""
    if user is None or not user.is_authenticated:
        return ""
    if user.is_superuser:
        return "admin"
    cached = getattr(user, "_kvm_role", None)
    if cached is None:
        cached = role_of_groups(user.groups.values_list("name", flat=True))
        user._kvm_role = cached
    return cached


def role_of_groups(group_names) -> str:
    """The highest role among `group_names` ("" if none is a role)."""
    names = set(group_names)
    return next((role for role in ROLE_ORDER if role in names), "")


def refusal_reason(user, perm: Perm | str) -> str:
    try:
        label = PERMISSION_LABELS[Perm(perm)]
    except ValueError:
        label = str(perm)
    role = user_role(user) or "no role"
    return f"Permission denied: this needs “{label.lower()}” ({perm}); your account has the role {role}."


def forbidden(request, perm: Perm | str) -> HttpResponse:
    """The 403 response for a user lacking `perm`; every refusal is audited (accounts.denials)."""
    reason = refusal_reason(request.user, perm)
    record_denial(
        user=request.user,
        method=request.method,
        path=request.path,
        source_ip=client_ip(request),
        perm=str(perm),
        reason=reason,
    )
    if getattr(request, "htmx", False):
        return HttpResponse(reason, status=403, content_type="text/plain; charset=utf-8")
    body = render_to_string("accounts/forbidden.html", {"reason": reason, "perm": str(perm)}, request=request)
    return HttpResponse(body, status=403)


def require_perm(perm: Perm | str):
    """View decorator: anonymous -> login redirect; signed in without `perm` -> 403 with the reason."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not user_can(request.user, perm):
                return forbidden(request, perm)
            return view(request, *args, **kwargs)

        wrapped.required_perm = perm
        return wrapped

    return decorator
