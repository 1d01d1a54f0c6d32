"""The REST API: every route answers each role as the pages' rules say, errors are problem documents,
the committed schema is the code's, and a token works where a session does."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.test import Client
from django.urls import get_resolver, reverse
from knox.models import AuthToken

from accounts.roles import ROLES, Perm
from hosts.models import Guest, Hypervisor, StorageServer
from migrations_app.models import MigrationJob, Operation
from tests.factories import make_user

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]

# url name -> (method, permission, kwargs fixture key, expected status for a permitted user)
API_RULES = {
    "api-storage-server-list": [("GET", Perm.VIEW_CLUSTER, "", 200)],
    "api-storage-server-detail": [("GET", Perm.VIEW_CLUSTER, "storage", 200)],
    "api-hypervisor-list": [("GET", Perm.VIEW_CLUSTER, "", 200)],
    "api-hypervisor-detail": [("GET", Perm.VIEW_CLUSTER, "hypervisor", 200)],
    "api-guest-list": [("GET", Perm.VIEW_CLUSTER, "", 200)],
    "api-guest-detail": [("GET", Perm.VIEW_CLUSTER, "guest", 200)],
    "api-guest-power": [("POST", Perm.POWER_GUESTS, "guest", 400)],
    "api-guest-ha": [("POST", Perm.POWER_GUESTS, "guest", 400)],
    "api-guest-targets-list": [("GET", Perm.RUN_MIGRATIONS, "guest_pk", 200)],
    "api-drain-plan-list": [("GET", Perm.VIEW_CLUSTER, "hypervisor_pk", 200)],
    "api-hypervisor-readiness-list": [("GET", Perm.VIEW_CLUSTER, "", 200)],
    "api-maintenance-list": [("POST", Perm.RUN_MIGRATIONS, "hypervisor_pk", 409)],
    "api-maintenance-exit": [("POST", Perm.RUN_MIGRATIONS, "hypervisor_pk", 409)],
    "api-maintenance-return": [("POST", Perm.RUN_MIGRATIONS, "hypervisor_pk", 409)],
    "api-operation-detail": [("GET", Perm.VIEW_CLUSTER, "operation", 200)],
    "api-operation-pause": [("POST", Perm.RUN_MIGRATIONS, "operation", 202)],
    "api-operation-resume": [("POST", Perm.RUN_MIGRATIONS, "operation", 409)],
    "api-operation-cancel": [("POST", Perm.RUN_MIGRATIONS, "operation", 202)],
    "api-balancer-proposal-list": [("GET", Perm.VIEW_CLUSTER, "", 200)],
    "api-balancer-proposal-apply": [("POST", Perm.RUN_MIGRATIONS, "balancer_proposal", 409)],
    "api-balancer-proposal-dismiss": [("POST", Perm.RUN_MIGRATIONS, "balancer_proposal", 200)],
    "api-balancer-policy": [("GET", Perm.VIEW_CLUSTER, "", 200), ("PATCH", Perm.MANAGE_BALANCING, "", 200)],
    "api-migration-list": [("GET", Perm.VIEW_CLUSTER, "", 200), ("POST", Perm.RUN_MIGRATIONS, "", 400)],
    "api-migration-detail": [("GET", Perm.VIEW_CLUSTER, "migration", 200)],
    "api-migration-cancel": [("POST", Perm.RUN_MIGRATIONS, "migration", 202)],
    "api-migration-bandwidth": [("POST", Perm.RUN_MIGRATIONS, "migration", 400)],
    "api-migration-postcopy": [("POST", Perm.RUN_MIGRATIONS, "migration", 409)],
    "api-audit-event-list": [("GET", Perm.VIEW_AUDIT, "", 200)],
    "api-audit-event-detail": [("GET", Perm.VIEW_AUDIT, "audit", 200)],
    "api-audit-event-export": [("GET", Perm.VIEW_AUDIT, "", 200)],
    "api-user-list": [("GET", Perm.MANAGE_USERS, "", 200), ("POST", Perm.MANAGE_USERS, "", 400)],
    "api-user-detail": [("GET", Perm.MANAGE_USERS, "user", 200)],
    "api-user-role": [("POST", Perm.MANAGE_USERS, "user", 400)],
    "api-user-deactivate": [("POST", Perm.MANAGE_USERS, "user", 200)],
    "api-user-reactivate": [("POST", Perm.MANAGE_USERS, "user", 200)],
    "api-role-list": [("GET", Perm.MANAGE_USERS, "", 200)],
}
SCHEMA_PAGES = ("api-schema", "api-docs", "api-redoc")


def _api_names() -> set[str]:
    resolver = get_resolver()
    return {name for name in resolver.reverse_dict if isinstance(name, str) and name.startswith("api-")}


def test_every_api_route_has_a_rule():
    missing = _api_names() - set(API_RULES) - set(SCHEMA_PAGES)
    missing = {n for n in missing if not n.endswith("-detail") or n in API_RULES} - set(API_RULES)
    assert not missing, f"add {sorted(missing)} to API_RULES in {__file__}"


@pytest.fixture
def objects():
    storage = StorageServer.objects.create(name="api-nfs", address="127.0.0.1", export_path="/srv/images")
    source = Hypervisor.objects.create(name="api-a", uri="test:///default")
    target = Hypervisor.objects.create(name="api-b", uri="test:///default?b")
    guest = Guest.objects.create(uuid=uuid.uuid4(), name="api-g1", hypervisor=source)
    job = MigrationJob.objects.create(
        guest=guest, guest_name=guest.name, guest_uuid=guest.uuid, source=source, target=target, state="queued"
    )
    from accounts.audit import audit_record

    operation = Operation.objects.create(hypervisor=target, plan={"moves": []})
    from test_role_matrix import _balancer_proposal

    return {
        "balancer_proposal": _balancer_proposal(guest, source, target),
        "operation": operation.pk,
        "user": make_user("api-target", "viewer", password=None).pk,
        "audit": audit_record(action="test.api").pk,
        "storage": storage.pk,
        "hypervisor": source.pk,
        "guest": guest.pk,
        "guest_pk": guest.pk,
        "hypervisor_pk": source.pk,
        "migration": job.pk,
    }


def _client(role: str) -> Client:
    client = Client(REMOTE_ADDR="127.0.0.7")
    if role != "anonymous":
        client.force_login(make_user(f"api-{role}", role, password=None))
    return client


CASES = [
    pytest.param(name, method, perm, key, ok, role, id=f"{name}-{method}-{role}")
    for name, rules in API_RULES.items()
    for method, perm, key, ok in rules
    for role in ("anonymous", "viewer", "operator", "admin")
]


@pytest.mark.parametrize("name, method, perm, key, ok, role", CASES)
def test_api_route_answers_each_role_as_the_table_says(objects, name, method, perm, key, ok, role):
    url = reverse(name, kwargs={key if key.endswith("_pk") else "pk": objects[key]} if key else None)
    response = _client(role).generic(method, url, "{}", content_type="application/json")
    expected = 401 if role == "anonymous" else (ok if perm in ROLES[role] else 403)
    assert response.status_code == expected, response.content
    if expected >= 400:
        body = response.json()
        assert response["Content-Type"].startswith("application/problem+json")
        assert body["status"] == expected and body["detail"], body
    if expected == 403:
        assert "Permission denied: this needs" in response.json()["detail"]


def test_the_committed_schema_is_the_codes(tmp_path):
    out = tmp_path / "openapi.yaml"
    call_command("spectacular", "--file", str(out), "--validate", "--fail-on-warn")
    committed = yaml.safe_load((ROOT / "docs/openapi.yaml").read_text())
    assert yaml.safe_load(out.read_text()) == committed, (
        "docs/openapi.yaml is stale: run `python manage.py spectacular --file docs/openapi.yaml`"
    )


def test_swagger_ui_is_served_from_vendored_files_for_a_signed_in_user():
    page = _client("viewer").get(reverse("api-docs")).content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page and "cdn" not in page.lower()
    assert _client("anonymous").get(reverse("api-docs")).status_code == 401


def test_a_token_authenticates_like_a_session(objects):
    user = make_user("api-token-op", "operator", password=None)
    _, token = AuthToken.objects.create(user=user)
    client = Client(REMOTE_ADDR="127.0.0.7", HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get(reverse("api-guest-list")).json()["results"][0]["name"] == "api-g1"
    bad = Client(REMOTE_ADDR="127.0.0.7", HTTP_AUTHORIZATION="Token not-a-token")
    assert bad.get(reverse("api-guest-list")).status_code == 401


def test_the_uri_is_shown_only_to_those_who_manage_hosts(objects):
    url = reverse("api-hypervisor-detail", kwargs={"pk": objects["hypervisor"]})
    assert _client("viewer").get(url).json()["uri"] is None
    assert _client("admin").get(url).json()["uri"] == "test:///default"


def test_bad_filters_and_bodies_are_400s_naming_the_field(objects):
    client = _client("operator")
    nul = client.get(reverse("api-migration-list"), {"guest": "a\x00b"})
    assert nul.status_code == 400 and "guest" in nul.json()["errors"]
    wrong_state = client.get(reverse("api-migration-list"), {"state": "exploded"})
    assert wrong_state.status_code == 400 and "state" in wrong_state.json()["errors"]
    body = {"guest": objects["guest"], "target": objects["hypervisor"], "options": {"bandwidth_mibps": -5}}
    refused = client.post(reverse("api-migration-list"), body, content_type="application/json")
    assert refused.status_code == 400
    assert set(refused.json()["errors"]) == {"target", "bandwidth_mibps"}  # own host; negative cap
    unknown = {"guest": objects["guest"], "target": 999999, "options": {"rm_rf": True}}
    assert (
        "unknown option"
        in client.post(reverse("api-migration-list"), unknown, content_type="application/json").json()["detail"]
    )
    assert not MigrationJob.objects.exclude(pk=objects["migration"]).exists()


def test_a_refused_preflight_is_a_409_listing_the_failing_checks(objects):
    """libvirt's test driver guest 'test' on api-a; api-b's own test driver cannot take it (real answers)."""
    guest = Guest.objects.create(
        uuid="6695eb01-f6a4-8304-79aa-97f2502e193f", name="test", hypervisor_id=objects["hypervisor"], power="running"
    )
    target = Hypervisor.objects.get(name="api-b")
    body = {"guest": guest.pk, "target": target.pk, "kind": "live", "options": {"compressed": True}}
    client = _client("operator")
    response = client.post(reverse("api-migration-list"), body, content_type="application/json")
    assert response.status_code == 409, response.content
    problem = response.json()
    assert problem["detail"].startswith("pre-flight refused the move")
    assert problem["checks"] and all(c["status"] == "fail" for c in problem["checks"])
    assert {"compression"} <= {c["key"] for c in problem["checks"]}
    targets = client.get(reverse("api-guest-targets-list", kwargs={"guest_pk": guest.pk}), {"kind": "live"})
    assert targets.status_code == 200 and targets.json()[0]["target_name"] == "api-b"
    assert targets.json()[0]["verdict"] == "ready" or targets.json()[0]["checks"]  # no option: no compression check


def test_an_operator_shuts_a_guest_down_and_gets_libvirts_answer(objects):
    guest = Guest.objects.create(
        uuid="6695eb01-f6a4-8304-79aa-97f2502e193f", name="test", hypervisor_id=objects["hypervisor"], power="running"
    )
    client = _client("operator")
    url = reverse("api-guest-power", kwargs={"pk": guest.pk})
    forced = client.post(url, {"action": "destroy"}, content_type="application/json")
    assert forced.status_code == 400 and "confirm" in forced.json()["errors"]
    done = client.post(url, {"action": "shutdown"}, content_type="application/json")
    assert done.status_code == 200 and done.json()["power"] == "shutoff", done.content  # re-read from libvirt
    again = client.post(url, {"action": "shutdown"}, content_type="application/json")
    assert again.status_code == 409 and again.json()["detail"]  # libvirt's own refusal text
    # test:///default is one shared machine per process: put the guest back as other tests expect it
    assert client.post(url, {"action": "start"}, content_type="application/json").json()["power"] == "running"


def test_job_controls_refuse_in_the_wrong_state_with_the_reason(objects):
    client = _client("operator")
    url = reverse("api-migration-bandwidth", kwargs={"pk": objects["migration"]})
    assert client.post(url, {"mibps": 0}, content_type="application/json").json()["errors"]["mibps"]
    waiting = client.post(url, {"mibps": 50}, content_type="application/json")
    assert waiting.status_code == 409 and waiting.json()["detail"]


def test_guest_by_name_and_target_auto_with_no_open_target_is_a_409_per_target(objects):
    """'auto' takes the best open target by the pre-flight. Here the only other host is libvirt's same
    shared test:///default machine, which already has a domain "test": blocked, and the problem
    document names the host and the check (the open-target case runs on the lab with kvmctl)."""
    Guest.objects.create(
        uuid="6695eb01-f6a4-8304-79aa-97f2502e193f", name="test", hypervisor_id=objects["hypervisor"], power="running"
    )
    client = _client("operator")
    unknown = client.post(
        reverse("api-migration-list"), {"guest": "nope", "target": "auto"}, content_type="application/json"
    )
    assert unknown.status_code == 400 and "guest" in unknown.json()["errors"]
    body = {"guest": "test", "target": "auto", "kind": "live"}
    response = client.post(reverse("api-migration-list"), body, content_type="application/json")
    assert response.status_code == 409
    assert response.json()["detail"].startswith("no hypervisor can take test now: api-b fails “")
    assert {(c["target"], c["key"]) for c in response.json()["checks"]} >= {("api-b", "not_on_target")}


@pytest.fixture
def movable(tmp_path):
    """Two independent test-driver hosts on shared storage: web01 (shut off) on mv-a can go to mv-b offline
    (libvirt's test driver reports no free memory, so a live move would be refused: that is its answer)."""
    from hosts.services import inventory
    from tests.libvirt_nodes import NodeDomain, write_node

    nfs = StorageServer.objects.create(
        name="mv-nfs", address="127.0.0.1", export_path="/srv", mount_path="/var/lib/libvirt/images"
    )
    a = write_node(
        tmp_path / "a.xml", [NodeDomain("web01", running=False, disk_path="/var/lib/libvirt/images/web01.qcow2")]
    )
    b = write_node(tmp_path / "b.xml", [])
    hosts = [Hypervisor.objects.create(name=n, uri=u) for n, u in (("mv-a", a), ("mv-b", b))]
    for hv in hosts:
        hv.storage_servers.set([nfs])
    inventory.refresh_all()
    return Guest.objects.get(name="web01")


def test_a_retried_request_with_the_same_idempotency_key_returns_the_same_job(movable):
    client = _client("operator")
    body = {"guest": "web01", "target": "mv-b", "kind": "offline"}
    post = lambda data, key: client.post(  # noqa: E731
        reverse("api-migration-list"), data, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
    )
    first = post(body, "retry-1")
    assert first.status_code == 201, first.content
    again = post(body, "retry-1")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    other = post({**body, "kind": "live"}, "retry-1")
    assert other.status_code == 422 and f"#{first.json()['id']}" in other.json()["detail"]
    assert post(body, "bad key with spaces").status_code == 400
    assert MigrationJob.objects.filter(guest=movable).count() == 1
    # without a key the same request is refused: the guest already has an active move
    assert client.post(reverse("api-migration-list"), body, content_type="application/json").status_code == 409


def test_the_guest_list_costs_the_same_queries_for_3_or_30_guests(objects):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = _client("viewer")
    hv = Hypervisor.objects.get(pk=objects["hypervisor"])

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("api-guest-list")).status_code == 200
        return len(ctx.captured_queries)

    Guest.objects.bulk_create(Guest(uuid=uuid.uuid4(), name=f"q-{i}", hypervisor=hv) for i in range(2))
    few = queries()
    Guest.objects.bulk_create(Guest(uuid=uuid.uuid4(), name=f"q-more-{i}", hypervisor=hv) for i in range(27))
    assert queries() == few  # no query per row (a deferred column once cost 50 more per page)
