"""The figures of bench/fanout.py from what its viewers received: pure functions, no I/O.

A viewer's record is a list of (received at, epoch ms; the message's text). What was sent is not known
to the viewers, so a message counts as sent when any viewer of the same socket received it: each distinct
text as often as the viewer who got it most often did. A message no viewer received is not counted (the
bench says so beside its figures).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

Record = Sequence[tuple[float, str]]

_SAMPLED_AT = re.compile(r'data-sampled-at="(\d+)"')


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile (the other benches' definition); NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


def latencies_ms(record: Record) -> list[float]:
    """Receive time minus the data-sampled-at of each message that carries one (libvirt's sample: the
    job page's progress card, the topology's move badge)."""
    out = []
    for received_ms, text in record:
        m = _SAMPLED_AT.search(text)
        if m:
            out.append(received_ms - int(m.group(1)))
    return out


def spreads_ms(records: Iterable[Record]) -> list[float]:
    """Per stamped message, last arrival minus first arrival over the viewers that got it: the time one
    push takes to go out to everyone (a web process writes to its sockets one after the other)."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for record in records:
        for received_ms, text in record:
            if _SAMPLED_AT.search(text):
                first[text] = min(first.get(text, received_ms), received_ms)
                last[text] = max(last.get(text, received_ms), received_ms)
    return [last[text] - first[text] for text in first]


def delivered(records: Iterable[Record]) -> tuple[int, int]:
    """(messages received, messages sent) over the viewers of one socket; sent as the module says."""
    counts = [Counter(text for _, text in record) for record in records]
    most: Counter[str] = Counter()
    for c in counts:
        for text, n in c.items():
            most[text] = max(most[text], n)
    sent = sum(most.values()) * len(counts)
    got = sum(min(n, most[text]) for c in counts for text, n in c.items())
    return got, sent


def pct(got: int, sent: int) -> float:
    return 100.0 * got / sent if sent else float("nan")


def job_ends_in(record: Record, job_id: int, state: str) -> bool:
    """The last card of job `job_id` the viewer received says the job ended in `state`."""
    marker = f'data-job="{job_id}"'
    cards = [text for _, text in record if marker in text]
    return bool(cards) and f'data-state="{state}"' in cards[-1] and 'data-terminal="1"' in cards[-1]


def topology_ends_with(record: Record, guest_id: int, host_name: str) -> bool:
    """The last row of guest `guest_id` the viewer received shows it on `host_name`, no longer moving."""
    row = re.compile(rf'<tr id="guest-{guest_id}-row".*?</tr>', re.S)
    rows = [m.group(0) for _, text in record for m in row.finditer(text)]
    return bool(rows) and f">{host_name}</a></td>" in rows[-1] and "badge--migrating" not in rows[-1]


def result_line(*, viewers: int, delivered_pct: float, p95_ms_1: float, p95_ms_n: float, ok: int) -> str:
    """The bench's last line (issue 16 §2 asks for exactly this shape)."""
    return (
        f"fanout viewers={viewers} delivered_pct={delivered_pct:.2f} p95_ms_1={p95_ms_1:.1f} "
        f"p95_ms_{viewers}={p95_ms_n:.1f} final_state_ok={ok}/{viewers}"
    )
