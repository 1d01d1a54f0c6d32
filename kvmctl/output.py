"""How kvmctl prints: JSON as the API gave it, or a plain aligned table; a one-line progress bar."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from time import sleep


def print_json(data, stream=None) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str), file=stream or sys.stdout)


def _cell(value) -> str:
    text = "" if value is None else str(value)
    # Names and libvirt's messages come from hosts: no control characters reach the terminal.
    return "".join(c if c.isprintable() else "?" for c in text)[:80]


def table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def progress_line(job: dict, width: int = 24) -> str:
    """`#42 [#####      ]  45% 120/256 MiB 35 MiB/s ETA 4 s pass 2 running`, from the job's own figures."""
    total, done = job.get("data_total") or 0, job.get("data_processed") or 0
    pct = min(100, int(done * 100 / total)) if total else (100 if job["state"] == "succeeded" else 0)
    rate = job.get("throughput_bps") or 0
    remaining = job.get("data_remaining") or 0
    eta = f" ETA {remaining / rate:.0f} s" if rate and job["state"] == "running" else ""
    bar = "#" * (pct * width // 100)
    figures = f" {_mib(done)}/{_mib(total)} {_mib(rate)}/s{eta}" if total else ""
    return f"#{job['id']} [{bar:<{width}}] {pct:3d}%{figures} pass {job.get('iteration', 0)} {job['state']}   "


def operation_line(op: dict, width: int = 24) -> str:
    """`#7 [##########          ]  40% 2/5 done 1 running 2 waiting 0 failed ETA 40 s running`."""
    p = op["progress"]
    bar = "#" * (p["percent"] * width // 100)
    eta = f" ETA {p['eta_s']} s" if p.get("eta_s") is not None else ""
    counts = f"{p['done']}/{p['total']} done {p['running']} running {p['waiting']} waiting {p['failed']} failed"
    return f"#{op['id']} [{bar:<{width}}] {p['percent']:3d}% {counts}{eta} {op['state']}   "


def follow(
    get: Callable[[], dict], ended: Callable[[dict], bool], line: Callable[[dict], str], quiet: bool, interval: float
) -> dict:
    """Poll `get` until `ended` says so, redrawing `line` of each answer on a terminal's stderr."""
    while True:
        data = get()
        if not quiet and sys.stderr.isatty():
            print("\r" + line(data), end="", file=sys.stderr, flush=True)
        if ended(data):
            if not quiet and sys.stderr.isatty():
                print(file=sys.stderr)
            return data
        sleep(interval)
