"""Checking the audit chain (`manage.py audit verify`): stream the rows in id order and report EVERY break.

Each row is checked twice: is it *intact* (its HMAC matches its content and `prev_hash`) and is it
*linked* (its `prev_hash` is the previous good row's hash, `expected`). A break is named so:
* content no longer matches the row's own hash, and the next row still points at that hash -> altered;
* the next row points at `expected`, i.e. the chain runs on without this row -> inserted;
* the row is intact but points at something other than `expected` -> the row(s) between were deleted
  (or, when the ids are consecutive so nothing can be missing, the previous row was altered and re-hashed).
After a break the walk carries on from the row's stored hash, so one altered row is one report, and a
forger who rewrote a row and every later hash without the key gets one report per rewritten row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

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
    rows: int  # rows walked
    head_id: int | None
    head_hash: str
    problems: list[ChainBreak] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problem(self) -> ChainBreak | None:
        """The first break (the one an operator looks at first)."""
        return self.problems[0] if self.problems else None


def _intact(row: dict) -> bool:
    return compute_hash(row_content(row), row["prev_hash"]) == row["hash"]


def iter_breaks(rows: Iterable[dict], totals: dict | None = None) -> Iterator[ChainBreak]:
    """Walk `rows` (dicts with COLUMNS, ascending id), yielding every break. `totals`, if given, ends
    up with rows / head_id / head_hash."""
    it: Iterator[dict] = iter(rows)
    expected, prev_id, count = "", None, 0
    reported: int | None = None  # the last row already named, so a resync does not name it twice
    head_id, head_hash = None, ""
    cur = next(it, None)
    while cur is not None:
        nxt = next(it, None)
        count += 1
        head_id, head_hash = cur["id"], cur["hash"]
        intact, linked = _intact(cur), cur["prev_hash"] == expected
        rid = cur["id"]
        if intact and linked:
            expected, prev_id = cur["hash"], rid
            cur = nxt
            continue
        if nxt is not None and nxt["prev_hash"] == expected:
            # The chain runs on without this row: skip it and keep `expected`.
            yield ChainBreak(
                "inserted",
                rid,
                f"row #{rid} was inserted: the chain runs from {_name(prev_id)} to #{nxt['id']} without it",
            )
            reported = rid
            cur = nxt
            continue
        if not intact and (linked or nxt is None or nxt["prev_hash"] == cur["hash"]):
            if not linked and nxt is None:
                yield ChainBreak(
                    "inserted",
                    rid,
                    f"row #{rid} was inserted after {_name(prev_id)} "
                    "outside the application (it does not link to the chain)",
                )
            else:
                yield ChainBreak("altered", rid, f"row #{rid} was altered: its content no longer matches its hash")
        elif intact and nxt is None and prev_id is not None and rid == prev_id + 1:
            yield ChainBreak(
                "inserted",
                rid,
                f"row #{rid} was inserted outside the application: it does not "
                f"link to #{prev_id} (or #{prev_id} was altered and re-hashed)",
            )
        elif intact and prev_id is not None and rid == prev_id + 1:
            if reported != prev_id:
                yield ChainBreak(
                    "altered",
                    prev_id,
                    f"row #{prev_id} was altered and re-hashed: row #{rid} still points at its original hash",
                )
        elif intact:
            gap = f"ids {prev_id + 1}..{rid - 1}" if prev_id is not None else f"ids before {rid}"
            yield ChainBreak(
                "deleted",
                rid,
                f"row(s) deleted before #{rid} (after {_name(prev_id)}; "
                f"missing {gap}): #{rid} points at a hash no remaining row has",
            )
        else:
            yield ChainBreak(
                "altered", rid, f"row #{rid} was altered: neither its content nor its link to the previous row match"
            )
        reported = rid if not intact else reported
        # Carry on from what is stored, so the next row is judged on its own.
        expected, prev_id = cur["hash"], rid
        cur = nxt
    if totals is not None:
        totals.update(rows=count, head_id=head_id, head_hash=head_hash)


def check_rows(rows: Iterable[dict]) -> ChainReport:
    """Walk `rows` (dicts with COLUMNS, ascending id) and report every break."""
    totals: dict = {}
    problems = list(iter_breaks(rows, totals))
    return ChainReport(totals["rows"], totals["head_id"], totals["head_hash"], problems)


def _name(row_id: int | None) -> str:
    return f"#{row_id}" if row_id is not None else "the start of the chain"


def _stream(chunk_size: int) -> Iterator[dict]:
    return AuditEvent.objects.order_by("id").values(*COLUMNS).iterator(chunk_size=chunk_size)


def verify_chain(chunk_size: int = 5000) -> ChainReport:
    """Check the whole table, streaming the rows (the list of breaks is what is kept in memory)."""
    return check_rows(_stream(chunk_size))


def link_status(event: AuditEvent) -> dict:
    """One row's place in the chain, for its detail page: its content matches its HMAC (`row_ok`), its
    `prev_hash` is the previous row's hash (`link_ok`), and the next row points back at it (`next_ok`,
    None for the newest row)."""
    from accounts.audit import event_hash

    prev = AuditEvent.objects.filter(id__lt=event.pk).order_by("-id").values_list("hash", flat=True).first()
    nxt = AuditEvent.objects.filter(id__gt=event.pk).order_by("id").values_list("prev_hash", flat=True).first()
    row_ok = event_hash(event) == event.hash
    link_ok = event.prev_hash == (prev or "")
    return {
        "row_ok": row_ok,
        "link_ok": link_ok,
        "next_ok": None if nxt is None else nxt == event.hash,
        "ok": row_ok and link_ok and nxt in (None, event.hash),
    }
