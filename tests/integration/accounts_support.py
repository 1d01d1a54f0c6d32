"""Helpers for the accounts tests: audit rows of an action (users come from tests/factories.py)."""

from accounts.models import AuditEvent


def rows(action: str, **filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, **filters).order_by("id"))
