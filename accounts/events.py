"""Websocket events of the accounts app; the only place that names its groups.

Group "user.<id>": every socket of that user joins it (accounts.consumers.PermissionCheckedMixin), so a
"session.revoked" event closes them all within a second of logout, deactivation or a role change.
"""

from __future__ import annotations

import logging

from django.db import transaction

from kvmcluster import layer

logger = logging.getLogger(__name__)

SESSION_REVOKED = "session.revoked"


def user_group(user_id: int) -> str:
    return f"user.{int(user_id)}"


def _send_revoked(user_id: int) -> None:
    try:
        layer.group_send(user_group(user_id), {"type": SESSION_REVOKED})
    except Exception:  # best effort: HTTP access is already gone, sockets are the extra
        logger.warning("could not tell user %s's sockets to close", user_id, exc_info=True)


def user_sessions_changed(user_id: int) -> None:
    """Close every websocket of `user_id` (after the current transaction commits).

    Their clients reconnect and `PermissionCheckedMixin` checks the user's role afresh.
    """
    transaction.on_commit(lambda: _send_revoked(user_id))
