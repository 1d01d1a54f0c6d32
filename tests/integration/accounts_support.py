"""Helpers for the accounts tests: users holding a role, audit rows of an action."""

from django.contrib.auth import get_user_model

from accounts.models import AuditEvent
from accounts.services import _set_role_groups

PASSWORD = "Corr3ct-Horse-Battery"


def make_user(username: str, role: str | None = None, password: str | None = PASSWORD, **extra):
    """A user holding `role`; password=None skips the (slow, on purpose) password hashing."""
    user = get_user_model().objects.create_user(username=username, password=password, **extra)
    if role:
        _set_role_groups(user, role)
    return user


def rows(action: str, **filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, **filters).order_by("id"))
