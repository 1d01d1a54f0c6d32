"""How measured load is kept: each tier's resolution and how long its rows live. Pure constants and
choices (no DB); hosts.services.load_history writes and prunes by them, hosts.selectors reads by them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Tier:
    resolution_s: int
    keep: timedelta


# Finest first. Each coarser tier is built from the one before it (its resolution a multiple of it).
TIERS = (
    Tier(10, timedelta(hours=1)),
    Tier(60, timedelta(days=1)),
    Tier(600, timedelta(days=30)),
)
RAW = TIERS[0]


def tier_for(since: datetime, now: datetime) -> Tier:
    """The finest tier whose rows still cover `since` (the coarsest if none reaches that far back)."""
    for tier in TIERS:
        if now - since <= tier.keep:
            return tier
    return TIERS[-1]


def bucket_start(at: datetime, resolution_s: int) -> datetime:
    """The start of the `resolution_s` interval holding `at`, aligned on the epoch (so on the hour too)."""
    seconds = int(at.timestamp())
    return datetime.fromtimestamp(seconds - seconds % resolution_s, tz=at.tzinfo)
