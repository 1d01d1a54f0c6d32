"""What a refused operator request raises (shown as a form error or a 4xx with the message)."""

from __future__ import annotations

from typing import Any

from migrations_app.orchestrator import preflight as pf


class MigrationError(Exception):
    """An operator request that cannot be done; the message says why (shown as a form error / 4xx)."""


class PreflightFailed(MigrationError):
    def __init__(self, items: list[dict[str, Any]]):
        self.items = items
        reasons = "; ".join(f"{i['label']}: {i['evidence']}" for i in pf.failures(items))
        super().__init__(f"pre-flight refused the move: {reasons}")


class TransitionConflict(MigrationError):
    """The compare-and-set found the job in another state than expected."""
