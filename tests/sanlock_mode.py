"""The lab switched to sanlock mode for tests that may leave a host half dead (docs/ha.md), and back."""

from collections.abc import Iterator
from contextlib import contextmanager

import lab as kvmlab


@contextmanager
def sanlock_mode() -> Iterator[None]:
    """The lab in sanlock mode at its initial placement; afterwards taken down (a crashed host is half dead),
    brought up in the mode it was found in and reset, so the tests after it meet no leases."""
    before = kvmlab.status()["lock_manager"] or "none"
    try:
        kvmlab.reset()
        kvmlab.up(lock_manager="sanlock")
        yield
    finally:
        kvmlab.down()
        kvmlab.up(lock_manager=before)
        kvmlab.reset()
