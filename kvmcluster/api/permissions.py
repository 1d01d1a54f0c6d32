"""The API's permission check: the same Perm table and reasons as the pages (accounts.roles).

A view names the permission of each action in `perms` ({"list": Perm.VIEW_CLUSTER, ...}); an action
without an entry is refused, so a new action cannot be open by omission.
"""

from __future__ import annotations

from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from accounts.audit import request_ip
from accounts.denials import record_denial
from accounts.permissions import refusal_reason, user_can


def required_perm(view) -> str | None:
    action = getattr(view, "action", None) or view.request.method.lower()
    return getattr(view, "perms", {}).get(action)


class RolePermission(BasePermission):
    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False  # DRF answers 401 with the authentication scheme
        perm = required_perm(view)
        if perm is None or not user_can(request.user, perm):
            reason = refusal_reason(request.user, perm or "an action this API does not offer")
            record_denial(
                user=request.user,
                method=request.method,
                path=request.path,
                source_ip=request_ip(request),
                perm=str(perm or ""),
                interface="api",
                reason=reason,
            )
            raise PermissionDenied(reason)
        return True
