"""Checking the audit chain (`manage.py audit verify`): stream the rows in id order, stop at the first break.

How a break is named, with `expected` = the previous good row's hash:
* content no longer matches the row's own hash, and the next row still points at that hash -> altered;
* the next row points at `expected`, i.e. the chain runs on without this row -> inserted;
* the row is intact but points at something other than `expected` -> the row(s) between were deleted
  (or, when the ids are consecutive so nothing can be missing, the previous row was altered and re-hashed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from accounts.audit import HASHED_FIELDS, compute_hash, row_content
from accounts.models import AuditEvent

COLUMNS = ("id", "prev_hash", "hash", *HASHED_FIELDS)


@dataclass(frozen=True)
class ChainBreak:
    kind: str  # "altered" | "inserted" | "deleted"
    row_id: int  # the altered/inserted row, or for "deleted" the first intact row after the gap
    message: str


@dataclass(frozen=True)
class ChainReport:
    rows: int
    head_id: int | None
    head_hash: str
    problem: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _intact(row: dict) -> bool:
    return compute_hash(row_content(row), row["prev_hash"]) == row["hash"]


def check_rows(rows: Iterable[dict]) -> ChainReport:
    """Walk `rows` (dicts with COLUMNS, ascending id) and report the first break, if any."""
    it: Iterator[dict] = iter(rows)
    expected, prev_id, count = "", None, 0
    cur = next(it, None)
    while cur is not None:
        nxt = next(it, None)
        intact, linked = _intact(cur), cur["prev_hash"] == expected
        if intact and linked:
            expected, prev_id, count = cur["hash"], cur["id"], count + 1
            cur = nxt
            continue
        rid = cur["id"]
        if nxt is not None and nxt["prev_hash"] == expected:
            problem = ChainBreak(
                "inserted",
                rid,
                f"row #{rid} was inserted: the chain runs from {_name(prev_id)} to #{nxt['id']} without it",
            )
        elif not intact and (linked or nxt is None or nxt["prev_hash"] == cur["hash"]):
            if not linked and nxt is None:
                problem = ChainBreak(
                    "inserted",
                    rid,
                    f"row #{rid} was inserted after {_name(prev_id)} "
                    "outside the application (it does not link to the chain)",
                )
            else:
                problem = ChainBreak("altered", rid, f"row #{rid} was altered: its content no longer matches its hash")
        elif intact and nxt is None and prev_id is not None and rid == prev_id + 1:
            problem = ChainBreak(
                "inserted",
                rid,
                f"row #{rid} was inserted outside the application: it does not "
                f"link to #{prev_id} (or #{prev_id} was altered and re-hashed)",
            )
        elif intact and prev_id is not None and rid == prev_id + 1:
            problem = ChainBreak(
                "altered",
                prev_id,
                f"row #{prev_id} was altered and re-hashed: row #{rid} still points at its original hash",
            )
        elif intact:
            gap = f"ids {prev_id + 1}..{rid - 1}" if prev_id is not None else f"ids before {rid}"
            problem = ChainBreak(
                "deleted",
                rid,
                f"row(s) deleted before #{rid} (after {_name(prev_id)}; "
                f"missing {gap}): #{rid} points at a hash no remaining row has",
            )
        else:
            problem = ChainBreak(
                "altered", rid, f"row #{rid} was altered: neither its content nor its link to the previous row match"
            )
        return ChainReport(count, prev_id, expected, problem)
    return ChainReport(count, prev_id, expected, None)


def _name(row_id: int | None) -> str:
    return f"#{row_id}" if row_id is not None else "the start of the chain"


def verify_chain(chunk_size: int = 5000) -> ChainReport:
    """Check the whole table, streaming (constant memory on a million rows)."""
    rows = AuditEvent.objects.order_by("id").values(*COLUMNS).iterator(chunk_size=chunk_size)
    return check_rows(rows)
