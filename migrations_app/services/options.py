"""The options of a move request: known keys only, typed, with defaults."""

from __future__ import annotations

from typing import Any

from migrations_app.choices import Kind, TimeoutAction
from migrations_app.services.errors import MigrationError

OPTION_DEFAULTS: dict[str, Any] = {
    "bandwidth_mibps": 0,
    "max_downtime_ms": 0,
    "auto_converge": False,
    "allow_postcopy": False,
    "compressed": False,
    "tls": False,
    "completion_timeout_s": 0,
    "timeout_action": TimeoutAction.ABORT.value,
    "persist_dest": True,
    "undefine_source": True,
    "shutdown_first": False,
    "shutdown_timeout_s": 60,
    "start_on_target": False,
}


def normalize_options(kind: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """Known keys only, typed, with defaults; raises MigrationError on nonsense."""
    out = dict(OPTION_DEFAULTS)
    for key, value in (options or {}).items():
        if key not in OPTION_DEFAULTS:
            raise MigrationError(f"unknown option {key!r}")
        default = OPTION_DEFAULTS[key]
        if isinstance(default, bool):
            out[key] = bool(value)
        elif isinstance(default, int):
            try:
                out[key] = int(value or 0)
            except (TypeError, ValueError) as err:
                raise MigrationError(f"{key} must be a whole number") from err
            if out[key] < 0 or out[key] > 10_000_000:
                raise MigrationError(f"{key} must be between 0 and 10000000")
        else:
            out[key] = str(value)
    if out["timeout_action"] not in TimeoutAction.values:
        raise MigrationError("timeout_action must be abort or postcopy")
    if out["timeout_action"] == TimeoutAction.POSTCOPY and not out["allow_postcopy"]:
        raise MigrationError("switching to post-copy on timeout needs 'allow post-copy'")
    if kind not in Kind.values:
        raise MigrationError("mode must be live or offline")
    return out
