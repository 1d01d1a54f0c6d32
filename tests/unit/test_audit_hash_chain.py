"""The hash chain's rules, on plain dicts (no database): what counts as intact, altered, inserted, deleted."""

import datetime as dt

from accounts.audit import HASHED_FIELDS, _jsonable, compute_hash, row_content
from accounts.chain import check_rows

T0 = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)


def make_chain(n: int) -> list[dict]:
    rows, prev = [], ""
    for i in range(1, n + 1):
        row = {name: "" for name in HASHED_FIELDS}
        row.update(
            id=i,
            created_at=T0 + dt.timedelta(seconds=i),
            action="migration.requested",
            actor_username="op",
            migration_id=i,
            params={"kind": "live", "n": i},
            outcome="ok",
            prev_hash=prev,
        )
        row["hash"] = compute_hash(row_content(row), prev)
        prev = row["hash"]
        rows.append(row)
    return rows


def test_intact_chain_reports_every_row():
    report = check_rows(make_chain(5))
    assert report.ok and report.rows == 5 and report.head_id == 5


def test_empty_chain_is_ok():
    report = check_rows([])
    assert report.ok and report.rows == 0


def test_hash_covers_content_and_previous_hash():
    row = make_chain(1)[0]
    base = compute_hash(row_content(row), "")
    assert compute_hash(row_content(row), "x") != base
    assert compute_hash(row_content({**row, "message": "changed"}), "") != base
    assert compute_hash(row_content({**row, "params": {"n": 1, "kind": "live"}}), "") == base  # key order irrelevant


def test_hash_ignores_timezone_representation():
    row = make_chain(1)[0]
    local = row["created_at"].astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert compute_hash(row_content({**row, "created_at": local}), "") == row["hash"]


def test_altered_middle_row_is_named():
    rows = make_chain(5)
    rows[2]["outcome"] = "failed"
    report = check_rows(rows)
    assert report.problem.kind == "altered" and report.problem.row_id == 3
    assert report.rows == 5 and len(report.problems) == 1  # one altered row is one report


def test_altered_last_row_is_named():
    rows = make_chain(3)
    rows[2]["message"] = "nothing to see"
    assert (check_rows(rows).problem.kind, check_rows(rows).problem.row_id) == ("altered", 3)


def test_altered_and_rehashed_row_is_named_by_its_successor():
    rows = make_chain(4)
    rows[1]["guest"] = "other"
    rows[1]["hash"] = compute_hash(row_content(rows[1]), rows[1]["prev_hash"])
    problem = check_rows(rows).problem
    assert (problem.kind, problem.row_id) == ("altered", 2)


def test_deleted_middle_row_is_named():
    rows = make_chain(5)
    del rows[2]
    problem = check_rows(rows).problem
    assert problem.kind == "deleted" and problem.row_id == 4 and "ids 3..3" in problem.message


def test_deleted_first_row_is_named():
    problem = check_rows(make_chain(3)[1:]).problem
    assert (problem.kind, problem.row_id) == ("deleted", 2)


def test_inserted_middle_row_is_named():
    rows = make_chain(4)
    forged = {**rows[1], "id": 25, "action": "user.created", "hash": "f" * 64}
    rows.insert(2, forged)
    problem = check_rows(rows).problem
    assert (problem.kind, problem.row_id) == ("inserted", 25)


def test_inserted_last_row_is_named():
    rows = make_chain(3)
    rows.append({**rows[0], "id": 4, "prev_hash": "", "hash": "0" * 64})
    problem = check_rows(rows).problem
    assert (problem.kind, problem.row_id) == ("inserted", 4)


def test_jsonable_round_trips_odd_values():
    value = _jsonable({1: float("nan"), "t": (1, 2), "d": T0, "s": "a\x00b", "o": object})
    assert value["1"] == "nan" and value["t"] == [1, 2] and value["d"] == T0.isoformat() and value["s"] == "ab"
    assert isinstance(value["o"], str)
