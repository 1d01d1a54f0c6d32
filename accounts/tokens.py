"""API tokens (django-rest-knox: stored as a hash, shown once, expiring). Issuing and revoking one is
an operator action with its audit row in the same transaction, like every other."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from knox.models import AuthToken

from accounts.audit import audit_record


@transaction.atomic
def api_token_create(*, user, days: int, actor=None, note: str = "") -> tuple[AuthToken, str]:
    """A new token for `user`, valid `days`; the clear text is returned once and never stored."""
    if not user.is_active:
        raise ValueError(f"{user.username} is deactivated: no token for it")
    instance, text = AuthToken.objects.create(user=user, expiry=timedelta(days=days))
    audit_record(
        action="api_token.created",
        actor=actor,
        params={"user": user.username, "prefix": instance.token_key, "days": days, "note": note},
    )
    return instance, text


@transaction.atomic
def api_token_revoke(*, prefix: str, actor=None) -> int:
    """Revoke the tokens starting with `prefix` (as `list` shows them); returns how many."""
    if len(prefix) < 4:
        raise ValueError("give at least 4 characters of the token's prefix")
    tokens = list(AuthToken.objects.filter(token_key__startswith=prefix).select_related("user"))
    for token in tokens:
        audit_record(
            action="api_token.revoked", actor=actor, params={"user": token.user.username, "prefix": token.token_key}
        )
        token.delete()
    return len(tokens)
