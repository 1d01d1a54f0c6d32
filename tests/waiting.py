"""Polling for a condition another thread or process brings about, with a deadline (tests only)."""

import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], seconds: float = 5.0, what: str = "condition not met in time") -> None:
    """Return once `predicate()` is true; AssertionError(`what`) after `seconds`."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
