"""Reviewing the audit trail: filters, keyset pages, the detail page, CSV/JSON export of the current filter."""

import csv
import io
import json

import pytest
from django.test import Client
from django.urls import reverse

from accounts.audit import audit_record
from accounts.models import AuditEvent
from tests.factories import make_user

UUID = "6b3f1e0a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"


@pytest.fixture
def viewer(db):
    client = Client()
    client.force_login(make_user("vic", "viewer"))
    return client


@pytest.fixture
def trail(db):
    op = make_user("olga", "operator")
    audit_record(
        action="migration.requested",
        actor=op,
        guest="web01",
        guest_uuid=UUID,
        hypervisor="hv-a",
        migration_id=42,
        params={"kind": "live", "target": "hv-b"},
    )
    audit_record(
        action="migration.failed",
        actor=op,
        guest="web01",
        guest_uuid=UUID,
        hypervisor="hv-a",
        migration_id=42,
        outcome="failed",
        message='=HYPERLINK("x") unable to connect to hv-b',
    )
    audit_record(action="hypervisor.created", actor=op, hypervisor="hv-c")
    return op


def _ids(response) -> list[int]:
    return [e.pk for e in response.context["page"].events]


def test_list_shows_newest_first_with_an_empty_state_for_no_match(viewer, trail):
    response = viewer.get(reverse("audit-list"))
    assert response.status_code == 200
    ids = _ids(response)
    assert ids == sorted(ids, reverse=True) and "migration.failed" in response.content.decode()
    empty = viewer.get(reverse("audit-list"), {"actor": "nobody-at-all"})
    assert _ids(empty) == [] and "No audit events match this filter" in empty.content.decode()


@pytest.mark.parametrize(
    "query, expected_actions",
    [
        ({"guest": "web01"}, {"migration.requested", "migration.failed"}),
        ({"guest": UUID.upper()}, {"migration.requested", "migration.failed"}),
        ({"action": "migration."}, {"migration.requested", "migration.failed"}),
        ({"action": "migration.failed"}, {"migration.failed"}),
        ({"outcome": "failed"}, {"migration.failed"}),
        ({"hypervisor": "hv-c"}, {"hypervisor.created"}),
        ({"migration": "42", "actor": "olga"}, {"migration.requested", "migration.failed"}),
    ],
)
def test_filters_narrow_the_list(viewer, trail, query, expected_actions):
    response = viewer.get(reverse("audit-list"), query)
    assert {e.action for e in response.context["page"].events} == expected_actions


def test_time_range_filter(viewer, trail):
    first = AuditEvent.objects.filter(action="migration.failed").get()
    since = first.created_at.strftime("%Y-%m-%dT%H:%M:%S.%f")
    response = viewer.get(reverse("audit-list"), {"since": since, "action": "migration."})
    assert {e.action for e in response.context["page"].events} == {"migration.failed"}
    bad = viewer.get(reverse("audit-list"), {"since": "2026-12-01T00:00", "until": "2026-01-01T00:00"})
    assert bad.status_code == 200 and "is after" in bad.content.decode()


def test_htmx_filter_returns_only_the_results_partial(viewer, trail):
    response = viewer.get(reverse("audit-list"), {"outcome": "failed"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<div id="audit-results"')
    assert "<html" not in body and "migration.failed" in body
    assert 'href="/audit/export/?outcome=failed&amp;format=csv"' in body  # export follows the swapped filter


def test_keyset_pages_walk_every_row_once(viewer, db):
    for i in range(120):
        audit_record(action="test.paging", params={"i": i})
    seen, before, pages = [], None, 0
    while True:
        query = {"action": "test.paging", **({"before": before} if before else {})}
        page = viewer.get(reverse("audit-list"), query).context["page"]
        seen += [e.pk for e in page.events]
        pages += 1
        if not page.older_than:
            break
        before = page.older_than
    assert pages == 3 and len(seen) == 120 == len(set(seen))
    # and back: "newer" from the last page returns the page before it
    back = viewer.get(reverse("audit-list"), {"action": "test.paging", "after": seen[100]}).context["page"]
    assert [e.pk for e in back.events] == seen[50:100]


def test_list_query_count_does_not_grow_with_rows(viewer, db, django_assert_max_num_queries):
    for i in range(60):
        audit_record(action="test.count", params={"i": i})
    with django_assert_max_num_queries(8):
        viewer.get(reverse("audit-list"))


def test_detail_page_shows_everything_and_the_hash_check(viewer, trail):
    event = AuditEvent.objects.get(action="migration.requested")
    response = viewer.get(reverse("audit-detail", args=[event.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "olga" in body and "web01" in body and UUID in body and "#42" in body and "hv-b" in body
    assert "linked in the chain and matches its hash" in body and "content matches its keyed hash" in body
    assert "/audit/?migration=42" in body  # every row of that guest migration, one click away
    assert viewer.get(reverse("audit-detail", args=[10**9])).status_code == 404


def test_csv_export_follows_the_filter_and_defuses_formulas(viewer, trail):
    response = viewer.get(reverse("audit-export"), {"guest": "web01", "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {row["action"] for row in table} == {"migration.requested", "migration.failed"}
    failed = next(row for row in table if row["action"] == "migration.failed")
    assert failed["message"].startswith("'=HYPERLINK") and len(failed["hash"]) == 64


def test_json_export_follows_the_filter(viewer, trail):
    response = viewer.get(reverse("audit-export"), {"outcome": "failed", "format": "json"})
    data = json.loads(b"".join(response.streaming_content))
    assert [row["action"] for row in data] == ["migration.failed"]
    assert data[0]["migration_id"] == 42 and data[0]["guest_uuid"] == UUID


def test_unknown_export_format_is_a_400_with_a_reason(viewer, trail):
    response = viewer.get(reverse("audit-export"), {"format": "xlsx"})
    assert response.status_code == 400 and b"format=csv" in response.content


def test_no_role_means_no_audit(db):
    client = Client()
    client.force_login(make_user("norole"))
    response = client.get(reverse("audit-list"))
    assert response.status_code == 403 and "no role" in response.content.decode()
