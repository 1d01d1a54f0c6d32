"""An attacker with write access to the audit table (but not the audit key) rewrites history.

They alter a row and re-chain every later row with plain SHA-256, exactly as the old unkeyed chain was
computed, so every link is consistent: `audit verify` still names each forged row, the detail page says
the chain is broken there, and the signed head anchored outside the database no longer matches.
"""

import hashlib
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.anchor import append_anchor
from accounts.audit import HASHED_FIELDS, audit_record, compute_hash, row_content
from accounts.chain import COLUMNS
from accounts.models import AuditEvent
from tests.factories import make_user

pytestmark = pytest.mark.django_db
TABLE = AuditEvent._meta.db_table


def _raw(sql: str, params=()):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # a superuser switches the append-only trigger off
            cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(sql, params)
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("SET session_replication_role = DEFAULT")


def _sha256(content: dict, prev_hash: str) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((canonical + "\n" + prev_hash).encode()).hexdigest()


def _rewrite_from(first_id: int, hasher) -> list[int]:
    """Change row `first_id`'s outcome and re-chain it and every later row with `hasher`."""
    rows = list(AuditEvent.objects.filter(id__gte=first_id).order_by("id").values(*COLUMNS))
    prev = AuditEvent.objects.filter(id__lt=first_id).order_by("-id").values_list("hash", flat=True).first() or ""
    rows[0]["outcome"] = "ok"
    rows[0]["message"] = "nothing happened here"
    for row in rows:
        new = hasher(row_content(row), prev)
        _raw(
            f"UPDATE {TABLE} SET outcome = %s, message = %s, prev_hash = %s, hash = %s WHERE id = %s",
            [row["outcome"], row["message"], prev, new, row["id"]],
        )
        prev = new
    return [row["id"] for row in rows]


def _verify() -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("audit", "verify", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def trail():
    ids = [audit_record(action="test.row", guest=f"g{i}", params={"i": i}).pk for i in range(2)]
    ids.append(
        audit_record(action="migration.failed", guest="web01", hypervisor="hv-a", outcome="failed", message="x").pk
    )
    return ids + [audit_record(action="test.row", guest=f"g{i}", params={"i": i}).pk for i in range(3, 7)]


def test_rewritten_row_and_rechained_tail_are_each_reported(trail, tmp_path):
    assert _verify()[0].startswith("ok,")
    forged = _rewrite_from(trail[2], _sha256)
    assert len(forged) == 5
    # Every link is consistent: the unkeyed chain would call this history intact.
    rows = list(AuditEvent.objects.order_by("id").values(*COLUMNS))
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(rows, rows[1:], strict=False))
    assert all(_sha256(row_content(r), r["prev_hash"]) == r["hash"] for r in rows if r["id"] in forged)
    err = io.StringIO()
    with pytest.raises(CommandError, match=r"5 problem\(s\)") as exc:
        call_command("audit", "verify", stdout=io.StringIO(), stderr=err)
    for row_id in forged:
        assert f"row #{row_id} was altered" in err.getvalue()
        assert f"row #{row_id} was altered" in str(exc.value)
    for row_id in trail[:2]:
        assert f"#{row_id} was" not in err.getvalue()  # the rows before the forgery are fine


def test_forged_row_shows_a_broken_chain_on_its_detail_page(trail):
    _rewrite_from(trail[2], _sha256)
    client = Client()
    client.force_login(make_user("auditor", "viewer", password=None))
    body = client.get(reverse("audit-detail", args=[trail[2]])).content.decode()
    assert "the chain is broken here" in body and "does NOT match its keyed hash" in body
    body = client.get(reverse("audit-detail", args=[trail[1]])).content.decode()
    assert "linked in the chain and matches its hash" in body


def test_a_tail_rechained_with_a_guessed_key_is_still_caught(trail):
    """Re-hashing with HMAC but the wrong key (e.g. the repository's old default) is no better."""
    _rewrite_from(trail[4], lambda c, p: compute_hash(c, p, key="dev-only-insecure-key-change-me-in-production"))
    with pytest.raises(CommandError) as exc:
        _verify()
    assert str(exc.value).count("was altered") == 3


def test_anchored_head_survives_a_rewrite_with_the_key(trail, tmp_path, settings):
    """Someone who stole the key and rewrote history consistently: the anchored head line outside the
    database still names the old hash of its row."""
    settings.AUDIT_ANCHOR_FILE = tmp_path / "anchors.log"
    append_anchor()
    _rewrite_from(trail[3], compute_hash)
    assert _verify()[0].startswith("ok,")  # with the key, the chain itself is consistent again...
    with pytest.raises(CommandError, match=rf"head row #{trail[-1]} .*no longer carries its hash"):
        call_command("audit", "verify", "--anchors", str(settings.AUDIT_ANCHOR_FILE), stdout=io.StringIO())


def test_a_forged_anchor_line_is_refused(trail, tmp_path, settings):
    settings.AUDIT_ANCHOR_FILE = path = tmp_path / "anchors.log"
    line = json.loads(append_anchor())
    forged = {**line, "id": trail[0], "hash": AuditEvent.objects.get(pk=trail[0]).hash}
    path.write_text(path.read_text() + json.dumps(forged) + "\n")
    with pytest.raises(CommandError, match="line 2: bad signature"):
        call_command("audit", "verify", "--anchors", str(path), stdout=io.StringIO())


def test_the_chain_covers_every_content_field():
    assert {"hypervisor", "target_hypervisor", "outcome", "message", "params"} <= set(HASHED_FIELDS)


def test_detail_badge_checks_the_link_not_only_the_row(trail):
    """Row #3 is untouched, but the row before it was deleted: its own hash still matches, the chain not."""
    _raw(f"DELETE FROM {TABLE} WHERE id = %s", [trail[1]])
    client = Client()
    client.force_login(make_user("auditor", "viewer", password=None))
    body = client.get(reverse("audit-detail", args=[trail[2]])).content.decode()
    assert "content matches its keyed hash" in body
    assert "the chain is broken here" in body and f"does NOT point at row #{trail[0]}" in body
