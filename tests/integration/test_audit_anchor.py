"""The head is anchored outside the database: every N rows on commit, and by the scheduled task."""

import json

import pytest

from accounts.anchor import parse_line
from accounts.audit import audit_record
from accounts.tasks import anchor_audit_head

pytestmark = pytest.mark.django_db


def test_every_nth_row_appends_a_signed_head_line(settings, tmp_path, django_capture_on_commit_callbacks):
    settings.AUDIT_ANCHOR_FILE = path = tmp_path / "anchors.log"
    settings.AUDIT_ANCHOR_EVERY = 2
    ids = []
    for i in range(4):  # each row its own transaction, as the flows write them
        with django_capture_on_commit_callbacks(execute=True):
            ids.append(audit_record(action="test.row", params={"i": i}).pk)
    lines = [parse_line(text) for text in path.read_text().splitlines()]
    assert [h["id"] for h in lines] == [i for i in ids if i % 2 == 0]
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_scheduled_task_anchors_only_when_the_head_moved(settings, tmp_path):
    settings.AUDIT_ANCHOR_FILE = path = tmp_path / "anchors.log"
    settings.AUDIT_ANCHOR_EVERY = 0
    row = audit_record(action="test.row")
    assert anchor_audit_head() == "anchored"
    assert anchor_audit_head() == "head unchanged"
    assert json.loads(path.read_text())["id"] == row.pk
