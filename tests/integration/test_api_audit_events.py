"""Reading the audit trail over the API: the audit page's filters (its own form), cursor pages that
never repeat or skip a row, bad filters refused by name, the page's CSV/JSON export, a row's chain link."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.test import Client
from django.urls import reverse

from accounts.audit import audit_record
from accounts.models import AuditEvent
from tests.factories import make_user

pytestmark = pytest.mark.django_db
UUID = "6b3f1e0a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
LIST = "/api/v1/audit-events/"


@pytest.fixture
def trail():
    op = make_user("olga", "operator", password=None)
    rows = [
        audit_record(action="migration.requested", actor=op, guest="web01", guest_uuid=UUID, hypervisor="hv-a",
                     target_hypervisor="hv-b", migration_id=42),
        audit_record(action="migration.failed", actor=op, guest="web01", guest_uuid=UUID, hypervisor="hv-a",
                     migration_id=42, outcome="failed", message="=HYPERLINK(\"x\")"),
        audit_record(action="guest.shutdown_requested", actor=op, guest="db01", hypervisor="hv-b"),
        audit_record(action="auth.denied", outcome="refused", message="refused GET /users/"),
    ]  # fmt: skip
    return rows


@pytest.fixture
def viewer():
    client = Client(REMOTE_ADDR="127.0.0.7")
    client.force_login(make_user("vic", "viewer", password=None))
    return client


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_filters_are_the_audit_pages(viewer, trail):
    requested, failed, shutdown, denied = (r.pk for r in trail)
    assert _ids(viewer.get(LIST, {"actor": "olga"})) == [shutdown, failed, requested]
    assert _ids(viewer.get(LIST, {"action": "migration."})) == [failed, requested]  # a prefix ending in a dot
    assert _ids(viewer.get(LIST, {"action": "migration"})) == []  # otherwise exact
    assert _ids(viewer.get(LIST, {"guest": UUID.upper()})) == [failed, requested]
    assert _ids(viewer.get(LIST, {"hypervisor": "hv-b"})) == [shutdown, requested]  # a move's target counts
    assert _ids(viewer.get(LIST, {"outcome": "refused"})) == [denied]
    assert _ids(viewer.get(LIST, {"migration": 42, "outcome": "failed"})) == [failed]
    # the page shows the same rows for the same filter
    page = viewer.get(reverse("audit-list"), {"action": "migration."}).content.decode()
    assert f"audit-{failed}-row" in page or f"/audit/{failed}/" in page
    assert f"/audit/{shutdown}/" not in page


def test_since_and_until(viewer, trail):
    first = AuditEvent.objects.get(pk=trail[0].pk).created_at
    newer = _ids(viewer.get(LIST, {"since": first.isoformat(), "action": "migration."}))
    assert newer == [trail[1].pk, trail[0].pk]
    assert _ids(viewer.get(LIST, {"until": "2000-01-01T00:00:00"})) == []


def test_a_bad_filter_is_a_400_naming_it_never_a_silent_full_list(viewer, trail):
    for params, field in (
        ({"outcome": "exploded"}, "outcome"),
        ({"since": "yesterday-ish"}, "since"),
        ({"migration": "-3"}, "migration"),
        ({"guest": "a\x00b"}, "guest"),
    ):
        response = viewer.get(LIST, params)
        assert response.status_code == 400, (params, response.content)
        assert field in response.json()["errors"] and response["Content-Type"].startswith("application/problem+json")
    swapped = viewer.get(LIST, {"since": "2030-01-01T00:00:00", "until": "2020-01-01T00:00:00"})
    assert swapped.status_code == 400 and "after" in swapped.json()["detail"]


def test_cursor_pages_walk_every_row_once_newest_first(viewer):
    rows = [audit_record(action=f"test.page.{i}").pk for i in range(7)]
    assert _ids(viewer.get(LIST, {"action": "test.page.3"})) == [rows[3]]
    seen, url = [], f"{LIST}?action=test.page.&page_size=3"
    while url:
        page = viewer.get(url).json()
        seen += [r["id"] for r in page["results"]]
        url = page["next"]
        if url:  # a row appended while paging shows on no later page (newest first) and shifts nothing
            audit_record(action="test.page.late")
    assert seen == sorted(rows, reverse=True)


def test_detail_shows_the_row_and_its_chain_link(viewer, trail):
    body = viewer.get(f"{LIST}{trail[1].pk}/").json()
    assert body["action"] == "migration.failed" and body["actor_username"] == "olga"
    assert body["chain"] == {"row_ok": True, "link_ok": True, "next_ok": True, "ok": True}
    assert viewer.get(f"{LIST}999999/").status_code == 404


def test_exports_are_the_pages_csv_and_json_of_the_filter(viewer, trail):
    response = viewer.get(f"{LIST}export/", {"format": "csv", "guest": "web01"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["action"] for r in table] == ["migration.failed", "migration.requested"]
    assert table[0]["message"] == '\'=HYPERLINK("x")'  # a spreadsheet would run it as a formula
    page = viewer.get(reverse("audit-export"), {"format": "csv", "guest": "web01"})
    assert b"".join(page.streaming_content).decode().splitlines()[1:] == [
        line
        for line in b"".join(viewer.get(f"{LIST}export/", {"guest": "web01"}).streaming_content)
        .decode()
        .splitlines()[1:]
    ]  # csv is the default, and the rows are the page's export's
    as_json = json.loads(
        b"".join(viewer.get(f"{LIST}export/", {"format": "json", "outcome": "refused"}).streaming_content)
    )
    assert [r["action"] for r in as_json] == ["auth.denied"]
    wrong = viewer.get(f"{LIST}export/", {"format": "xlsx"})
    assert wrong.status_code == 400 and "format" in wrong.json()["errors"]


def test_anonymous_and_roleless_users_are_refused(trail):
    assert Client().get(LIST).status_code == 401
    nobody = Client(REMOTE_ADDR="127.0.0.7")
    nobody.force_login(make_user("nobody", None, password=None))
    refused = nobody.get(f"{LIST}export/")
    assert refused.status_code == 403 and "accounts.view_audit" in refused.json()["detail"]
    row = AuditEvent.objects.filter(action="auth.denied").latest("id")
    assert row.params["interface"] == "api" and row.params["path"] == f"{LIST}export/"
