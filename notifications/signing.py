"""Signing webhook bodies: HMAC-SHA256 over "<timestamp>.<body>" with the target's shared secret.

The timestamp is signed with the body so a captured request cannot be replayed later with a fresh
timestamp header; receivers reject timestamps outside their replay window (docs/notifications.md).
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Kvmcluster-Signature"
TIMESTAMP_HEADER = "X-Kvmcluster-Timestamp"
EVENT_HEADER = "X-Kvmcluster-Event"
DELIVERY_HEADER = "X-Kvmcluster-Delivery"
REPLAY_WINDOW_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(int(timestamp)).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, sent: str, now: float, window: int = REPLAY_WINDOW_SECONDS
) -> bool:
    """What a receiver does (docs/notifications.md shows the same in a few lines)."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(now - ts) > window:
        return False
    return hmac.compare_digest(signature(secret, ts, body), sent or "")
