"""Which worker this is: the label a worker process writes where it holds something (a lease, a job).

A label is `<name>/<host>:<pid>`: `name` is KVMCLUSTER_WORKER_NAME (the operator's name for the worker
node; the host name when unset), `host` the machine's host name, `pid` the process. The name tells an
operator which node ran a move; host and pid let a process on the same machine see that the holder died
(its pid is gone) without waiting for a lease or heartbeat to expire (docs/deploy.md, "Adding a worker
node").
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass

from django.conf import settings

# What a name may hold: no "/" or ":" (they separate the label's parts), no spaces, a sane length.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Label:
    name: str
    host: str
    pid: int | None


def check_name(name: str) -> str:
    """The name if it may be used in a label; ValueError saying why not otherwise."""
    if not NAME_RE.match(name):
        raise ValueError(f"KVMCLUSTER_WORKER_NAME {name!r}: use letters, digits, '.', '_' or '-' (1-64, no '/' or ':')")
    return name


def worker_name() -> str:
    return check_name(settings.WORKER_NAME or socket.gethostname())


def worker_label(name: str | None = None, host: str | None = None, pid: int | None = None) -> str:
    """`<name>/<host>:<pid>` of this process (or of the parts given)."""
    name = check_name(name) if name is not None else worker_name()
    return f"{name}/{host or socket.gethostname()}:{os.getpid() if pid is None else pid}"


def parse_label(label: str) -> Label:
    """Read a label back; also the older `<host>:<pid>[:<suffix>]` holders and owners (name = host)."""
    name, slash, rest = label.partition("/")
    if not slash:
        rest = label
    host, _, tail = rest.partition(":")
    pid_text = tail.partition(":")[0]
    if not slash:
        name = host
    return Label(name=name, host=host, pid=int(pid_text) if pid_text.isdigit() else None)


def is_dead_here(label: str) -> bool:
    """True if the label names a process of this machine that no longer exists.

    Another machine's process cannot be checked from here: for those only the lease's expiry (or the
    job's heartbeat) tells.
    """
    parsed = parse_label(label)
    if parsed.host != socket.gethostname() or parsed.pid is None:
        return False
    try:
        os.kill(parsed.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return _zombie(parsed.pid)


def _zombie(pid: int) -> bool:
    """A killed process nobody has reaped yet still answers kill(pid, 0). A worker killed with its cluster
    is orphaned and waits for the init process to reap it (here about 2 s): a reconciler starting in that
    window took its job for alive and left it to the next minute's pass."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rpartition(b")")[2].split()[0]  # the name (in parentheses) may hold spaces
    except (OSError, IndexError):
        return False
    return state in (b"Z", b"X")
