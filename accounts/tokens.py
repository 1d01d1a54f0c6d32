"""API tokens (django-rest-knox: stored as a hash, shown once, expiring). Issuing and revoking one is
an operator action with its audit row in the same transaction, like every other; the tokens page and
`manage.py api_token` call the same two functions."""

from __future__ import annotations

from datetime import timedelta

from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from knox.models import AuthToken

from accounts.audit import audit_record
from accounts.models import ApiTokenUse

MAX_DAYS = 3650
# A token's last use is recorded at most this often: a script polling every second would otherwise
# write a row per request.
USE_RECORD_SECONDS = 60


@transaction.atomic
def api_token_create(*, user, days: int, actor=None, note: str = "", source_ip: str = "") -> tuple[AuthToken, str]:
    """A new token for `user`, valid `days`; the clear text is returned once and never stored."""
    if not user.is_active:
        raise ValueError(f"{user.username} is deactivated: no token for it")
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"a token is valid 1..{MAX_DAYS} days")
    instance, text = AuthToken.objects.create(user=user, expiry=timedelta(days=days))
    audit_record(
        action="api_token.created",
        actor=actor,
        source_ip=source_ip,
        params={"user": user.username, "prefix": instance.token_key, "days": days, "note": note[:200]},
    )
    return instance, text


@transaction.atomic
def api_token_revoke(*, prefix: str, actor=None, user=None, source_ip: str = "") -> int:
    """Revoke the tokens starting with `prefix` (as `list` shows them), only `user`'s when given (the
    tokens page: people revoke their own); returns how many."""
    if len(prefix) < 4:
        raise ValueError("give at least 4 characters of the token's prefix")
    tokens = AuthToken.objects.filter(token_key__startswith=prefix).select_related("user")
    if user is not None:
        tokens = tokens.filter(user=user)
    tokens = list(tokens.select_for_update(of=("self",)))
    for token in tokens:
        audit_record(
            action="api_token.revoked",
            actor=actor,
            source_ip=source_ip,
            params={"user": token.user.username, "prefix": token.token_key},
        )
        token.delete()
    return len(tokens)


def api_tokens_of(user) -> list[AuthToken]:
    """The user's live tokens, newest first, each with `.use` (None if never used) loaded."""
    return list(
        AuthToken.objects.filter(user=user)
        .filter(Q(expiry__isnull=True) | Q(expiry__gt=timezone.now()))
        .select_related("use")
        .order_by("-created")
    )


def api_token_used(token: AuthToken, source_ip: str = "") -> None:
    """Record that `token` authenticated a request now (at most once per USE_RECORD_SECONDS per token:
    the cache's atomic `add` decides, so the common case costs no database query)."""
    if not cache.add(f"kvm:token-used:{token.digest[:32]}", 1, timeout=USE_RECORD_SECONDS):
        return
    ApiTokenUse.objects.update_or_create(
        token=token, defaults={"last_used_at": timezone.now(), "last_used_ip": source_ip[:45]}
    )
