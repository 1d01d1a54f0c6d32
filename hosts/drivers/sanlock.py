"""Reading a host's lease in a sanlock lockspace straight from shared storage (`sanlock direct read_leader`).

No daemon is asked: the lockspace file is read where this machine sees it (docs/ha.md, section 3). The
timestamp is the renewing host's own monotonic clock, so only its *movement* means anything here.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess

log = logging.getLogger(__name__)

TIMEOUT_S = 10


def lease_stamp(lockspace: str, host_id: int) -> int | None:
    """The timestamp of host `host_id`'s delta lease in `lockspace` ("<name>:<path>"); None when there is
    no lockspace, no sanlock binary, or the read fails (no second signal then, never a guess)."""
    name, _, path = lockspace.partition(":")
    binary = shutil.which("sanlock") or shutil.which("sanlock", path="/usr/sbin:/sbin")
    if not (name and path and binary and host_id):
        return None
    try:
        out = subprocess.run(
            [binary, "direct", "read_leader", "-s", f"{name}:{int(host_id)}:{path}:0"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as err:
        log.warning("cannot read host %s's lease in %s: %s", host_id, lockspace, err)
        return None
    m = re.search(r"^timestamp (\d+)$", out, re.M)
    return int(m.group(1)) if m else None
