"""Role x endpoint matrix, generated from the URL configuration and the websocket routes.

Every URL pattern (walked from `get_resolver()`) and every route in kvmcluster.routing is requested as
anonymous, viewer, operator and admin, and the status must match RULES / WS_RULES below. An endpoint that
has no rule FAILS `test_every_endpoint_has_a_rule`: add a line when you add a URL.

How a rule reads: `Rule(perm, get=..., post=...)`. Anonymous users are sent to the login page (302);
a signed-in user without `perm` gets 403 (or 405 for a method the view never takes); a user with it gets
the `get` / `post` status. POST is sent with an empty body: it must be refused as a form error (or act
harmlessly), never a 5xx. `perm=None` means public. Pages are requested with objects that exist
(see the `objects` fixture); hypervisors there use libvirt's built-in test:/// driver only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from asgiref.sync import sync_to_async as _plain_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from knox.models import AuthToken

from accounts.roles import ROLES, Perm
from tests.factories import make_user

ROLE_NAMES = ("anonymous", "viewer", "operator", "admin")
LOGIN = 302  # anonymous: redirect to the login page


@dataclass(frozen=True)
class Rule:
    perm: Perm | None
    get: int | frozenset[int]
    post: int | frozenset[int]
    kwargs: str = ""  # which fixture object fills <pk>: "guest", "hypervisor", "storage", "migration", ...
    anonymous_get: int | None = None  # for public URLs
    anonymous_post: int | None = None


# fmt: off
RULES: dict[str, Rule] = {
    # hosts
    "topology":                   Rule(Perm.VIEW_CLUSTER, get=200, post=405),
    "inventory-refresh":          Rule(Perm.REFRESH_INVENTORY, get=405, post=302),
    "guest-list":                 Rule(Perm.VIEW_CLUSTER, get=200, post=405),
    "guest-detail":               Rule(Perm.VIEW_CLUSTER, get=200, post=405, kwargs="guest"),
    "guest-power":                Rule(Perm.POWER_GUESTS, get=405, post=302, kwargs="guest"),
    "guest-ha":                   Rule(Perm.POWER_GUESTS, get=405, post=302, kwargs="guest"),
    "hypervisor-health-clear":    Rule(Perm.POWER_GUESTS, get=405, post=302, kwargs="hypervisor"),
    "guest-load":                 Rule(Perm.VIEW_CLUSTER, get=200, post=405, kwargs="guest"),
    "hypervisor-load":            Rule(Perm.VIEW_CLUSTER, get=200, post=405, kwargs="hypervisor"),
    "hypervisor-list":            Rule(Perm.VIEW_CLUSTER, get=200, post=405),
    "hypervisor-create":          Rule(Perm.MANAGE_HOSTS, get=200, post=400),
    "hypervisor-test-connection": Rule(Perm.MANAGE_HOSTS, get=405, post=200),
    "hypervisor-detail":          Rule(Perm.VIEW_CLUSTER, get=200, post=405, kwargs="hypervisor"),
    "hypervisor-edit":            Rule(Perm.MANAGE_HOSTS, get=200, post=400, kwargs="hypervisor"),
    "hypervisor-delete":          Rule(Perm.MANAGE_HOSTS, get=200, post=409, kwargs="hypervisor"),
    "hypervisor-refresh":         Rule(Perm.REFRESH_INVENTORY, get=405, post=302, kwargs="hypervisor"),
    "storage-list":               Rule(Perm.VIEW_CLUSTER, get=200, post=405),
    "storage-create":             Rule(Perm.MANAGE_HOSTS, get=200, post=400),
    "storage-detail":             Rule(Perm.VIEW_CLUSTER, get=200, post=405, kwargs="storage"),
    "storage-edit":               Rule(Perm.MANAGE_HOSTS, get=200, post=400, kwargs="storage"),
    "storage-delete":             Rule(Perm.MANAGE_HOSTS, get=200, post=302, kwargs="storage"),
    # guest migrations
    "migration-list":             Rule(Perm.VIEW_CLUSTER, get=200, post=405),
    "migration-detail":           Rule(Perm.VIEW_CLUSTER, get=200, post=405, kwargs="migration"),
    "migration-progress":         Rule(Perm.VIEW_CLUSTER, get=200, post=405, kwargs="migration"),
    "migration-cancel":           Rule(Perm.RUN_MIGRATIONS, get=405, post=302, kwargs="migration"),
    "migration-bandwidth":        Rule(Perm.RUN_MIGRATIONS, get=405, post=400, kwargs="migration"),
    "migration-postcopy":         Rule(Perm.RUN_MIGRATIONS, get=405, post=409, kwargs="migration"),
    "guest-migrate":              Rule(Perm.RUN_MIGRATIONS, get=200, post=400, kwargs="guest"),
    "guest-migrate-targets":      Rule(Perm.RUN_MIGRATIONS, get=200, post=405, kwargs="guest"),
    "hypervisor-drain-plan":      Rule(Perm.VIEW_CLUSTER, get=200, post=405, kwargs="hypervisor"),
    "hypervisor-readiness":       Rule(Perm.VIEW_CLUSTER, get=200, post=405),
    "hypervisor-maintenance":     Rule(Perm.RUN_MIGRATIONS, get=200, post=409, kwargs="hypervisor"),
    "hypervisor-maintenance-exit": Rule(Perm.RUN_MIGRATIONS, get=405, post=409, kwargs="hypervisor"),
    "hypervisor-maintenance-return": Rule(Perm.RUN_MIGRATIONS, get=200, post=409, kwargs="hypervisor"),
    "operation-detail":           Rule(Perm.VIEW_CLUSTER, get=200, post=405, kwargs="operation"),
    "operation-progress":         Rule(Perm.VIEW_CLUSTER, get=200, post=405, kwargs="operation"),
    "operation-pause":            Rule(Perm.RUN_MIGRATIONS, get=405, post=302, kwargs="operation"),
    "operation-resume":           Rule(Perm.RUN_MIGRATIONS, get=405, post=409, kwargs="operation"),
    "operation-cancel":           Rule(Perm.RUN_MIGRATIONS, get=405, post=302, kwargs="operation"),
    # the load balancer: Apply's pre-flight fails on the test driver's default host (409), Dismiss acts
    "balancer-proposals":         Rule(Perm.VIEW_CLUSTER, get=200, post=405),
    "balancer-proposal-apply":    Rule(Perm.RUN_MIGRATIONS, get=200, post=409, kwargs="balancer_proposal"),
    "balancer-proposal-dismiss":  Rule(Perm.RUN_MIGRATIONS, get=405, post=302, kwargs="balancer_proposal"),
    "balancer-policy":            Rule(Perm.MANAGE_BALANCING, get=200, post=400),
    # accounts (login: a signed-in user is sent on to the topology)
    "login":                      Rule(None, get=302, post=302, anonymous_get=200, anonymous_post=200),
    "logout":                     Rule(None, get=405, post=302, anonymous_get=LOGIN, anonymous_post=302),
    "user-list":                  Rule(Perm.MANAGE_USERS, get=200, post=405),
    "user-create":                Rule(Perm.MANAGE_USERS, get=200, post=400),
    "user-role":                  Rule(Perm.MANAGE_USERS, get=200, post=400, kwargs="user"),
    "user-deactivate":            Rule(Perm.MANAGE_USERS, get=200, post=302, kwargs="user"),
    "user-reactivate":            Rule(Perm.MANAGE_USERS, get=200, post=302, kwargs="user"),
    # your own API tokens (any signed-in user); another user's token is a 404 (prefixes cannot be probed)
    "token-list":                 Rule(None, get=200, post=400),
    "token-revoke":               Rule(None, get=404, post=404, kwargs="api_token"),
    "audit-list":                 Rule(Perm.VIEW_AUDIT, get=200, post=405),
    "audit-export":               Rule(Perm.VIEW_AUDIT, get=200, post=405),
    "audit-detail":               Rule(Perm.VIEW_AUDIT, get=200, post=405, kwargs="audit"),
    # notifications (webhook and email targets, admin only)
    "notification-target-list":   Rule(Perm.MANAGE_NOTIFICATIONS, get=200, post=405),
    "notification-target-create": Rule(Perm.MANAGE_NOTIFICATIONS, get=200, post=400),
    "notification-target-detail": Rule(Perm.MANAGE_NOTIFICATIONS, get=200, post=405, kwargs="notification_target"),
    "notification-target-edit":   Rule(Perm.MANAGE_NOTIFICATIONS, get=200, post=400, kwargs="notification_target"),
    "notification-target-delete": Rule(Perm.MANAGE_NOTIFICATIONS, get=200, post=302, kwargs="notification_target"),
    # Prometheus: no session; a loopback client (the test client's 127.0.0.8) or the bearer token
    "metrics":                    Rule(None, get=200, post=405, anonymous_get=200, anonymous_post=405),
    # static files (DEBUG only; the test runner turns DEBUG off, so the view answers 404)
    "static":                     Rule(None, get=frozenset({200, 404}), post=frozenset({200, 404, 405}),
                                       anonymous_get=frozenset({200, 404}), anonymous_post=frozenset({200, 404, 405}),
                                       kwargs="static"),
}

# Websocket routes: the permission needed to connect (anonymous is always refused).
WS_RULES: dict[str, tuple[Perm, str]] = {
    "ws/topology/":                   (Perm.VIEW_CLUSTER, "/ws/topology/"),
    "ws/migrations/active/":          (Perm.VIEW_CLUSTER, "/ws/migrations/active/"),
    "ws/migrations/<int:pk>/":        (Perm.VIEW_CLUSTER, "/ws/migrations/{migration}/"),
    "ws/operations/<int:pk>/":        (Perm.VIEW_CLUSTER, "/ws/operations/{operation}/"),
    "ws/hypervisors/<int:pk>/load/":  (Perm.VIEW_CLUSTER, "/ws/hypervisors/{hypervisor}/load/"),
    "ws/guests/<int:pk>/load/":       (Perm.VIEW_CLUSTER, "/ws/guests/{guest}/load/"),
}
# fmt: on


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield pattern.name or _unnamed(prefix + str(pattern.pattern)), prefix + str(pattern.pattern), pattern


def _unnamed(route: str) -> str:
    return "static" if "static" in route else route


ENDPOINTS = sorted({name: route for name, route, _ in _walk(get_resolver().url_patterns)}.items())


def _ws_routes() -> list[str]:
    from kvmcluster.routing import websocket_urlpatterns

    return [str(p.pattern) for p in websocket_urlpatterns]


def test_every_endpoint_has_a_rule():
    # the REST API has its own table (tests/integration/test_api.py: API_RULES), checked the same way
    missing = [f"{name} ({route})" for name, route in ENDPOINTS if name not in RULES and not name.startswith("api-")]
    assert not missing, f"add a rule to RULES in {__file__} for: {', '.join(missing)}"
    missing_ws = [route for route in _ws_routes() if route not in WS_RULES]
    assert not missing_ws, f"add a rule to WS_RULES in {__file__} for: {', '.join(missing_ws)}"


def test_rules_match_the_permission_the_views_declare():
    """The table is the spec; the views' @require_perm must say the same (keeps both honest)."""
    declared = {name: getattr(p.callback, "required_perm", None) for name, _, p in _walk(get_resolver().url_patterns)}
    wrong = {n: (declared[n], RULES[n].perm) for n in declared if n in RULES and declared[n] != RULES[n].perm}
    assert not wrong, f"view declares != table says: {wrong}"


@pytest.fixture
def objects(db):
    """One of everything a <pk> can point at. Hypervisors use libvirt's built-in test driver URIs only."""
    from accounts.audit import audit_record
    from hosts.models import Guest, Hypervisor, StorageServer

    storage = StorageServer.objects.create(name="matrix-nfs", address="127.0.0.1", export_path="/srv/images")
    source = Hypervisor.objects.create(name="matrix-a", uri="test:///default")
    target = Hypervisor.objects.create(name="matrix-b", uri="test:///default?b")
    guest = Guest.objects.create(uuid=uuid.uuid4(), name="matrix-g1", hypervisor=source)
    out = {"storage": storage.pk, "hypervisor": source.pk, "guest": guest.pk}
    target_user = make_user("matrix-target", "viewer", password=None)
    out["user"] = target_user.pk
    out["api_token"] = AuthToken.objects.create(user=target_user)[0].token_key
    out["audit"] = audit_record(action="test.matrix").pk
    out["migration"] = _migration(guest, source, target)
    out["operation"] = _operation(target)
    out["balancer_proposal"] = _balancer_proposal(guest, source, target)
    out["static"] = "css/app.css"
    out["notification_target"] = _notification_target()
    return out


def _migration(guest, source, target) -> int:
    from migrations_app.models import MigrationJob

    job = MigrationJob.objects.create(
        guest=guest, guest_name=guest.name, guest_uuid=guest.uuid, source=source, target=target
    )
    return job.pk


def _operation(hypervisor) -> int:
    from migrations_app.models import Operation

    return Operation.objects.create(hypervisor=hypervisor, plan={"moves": []}).pk


def _balancer_proposal(guest, source, target) -> int:
    from django.utils import timezone

    from migrations_app.models import BalancerProposal, BalancerRound

    now = timezone.now()
    rnd = BalancerRound.objects.create(at=now, mode="recommend", imbalance=30.0, hot=[source.name])
    return BalancerProposal.objects.create(
        round=rnd, guest=guest, guest_name=guest.name, source=source, target=target, imbalance_before=30.0,
        imbalance_after=10.0, predicted_s=2.0, why="matrix", created_at=now, updated_at=now,
    ).pk  # fmt: skip


def _notification_target() -> int:
    from notifications.models import Target

    return Target.objects.create(name="matrix-hook", url="http://127.0.0.1:9/hook", events=["host.offline"]).pk


def _client(role: str) -> Client:
    client = Client(REMOTE_ADDR="127.0.0.8")
    if role != "anonymous":
        client.force_login(make_user(f"matrix-{role}", role, password=None))
    return client


def _url(name: str, rule: Rule, objects: dict) -> str:
    if not rule.kwargs:
        return reverse(name)
    if rule.kwargs == "static":
        return "/" + settings.STATIC_URL.strip("/") + "/" + objects["static"]
    return reverse(name, kwargs={"pk": objects[rule.kwargs]})


def _expected(rule: Rule, role: str, method: str) -> frozenset[int]:
    if role == "anonymous":
        public = rule.anonymous_get if method == "GET" else rule.anonymous_post
        value = public if public is not None else LOGIN
    elif rule.perm is not None and rule.perm not in ROLES[role]:
        # A method the view never accepts may be refused before the permission is looked at: both refuse.
        value = frozenset({403, 405}) if (rule.get if method == "GET" else rule.post) == 405 else 403
    else:
        value = rule.get if method == "GET" else rule.post
    return value if isinstance(value, frozenset) else frozenset({value})


CASES = [
    pytest.param(name, role, method, id=f"{name}-{role}-{method}")
    for name, _ in ENDPOINTS
    if name in RULES
    for role in ROLE_NAMES
    for method in ("GET", "POST")
]


@pytest.mark.parametrize("name, role, method", CASES)
def test_endpoint_answers_each_role_as_the_table_says(objects, name, role, method):
    rule = RULES[name]
    client = _client(role)
    url = _url(name, rule, objects)
    response = client.get(url) if method == "GET" else client.post(url, {})
    expected = _expected(rule, role, method)
    assert response.status_code in expected, (
        f"{method} {url} as {role}: got {response.status_code}, table says {sorted(expected)}"
    )
    if role == "anonymous" and expected == {LOGIN} and response.status_code == LOGIN:
        assert response["Location"].startswith(reverse("login"))
    if response.status_code == 403:
        body = response.content.decode()
        assert "Permission denied" in body and (rule.perm.value in body), "403 must say what was missing"
        # ... and the refusal is an audit row naming who, their role, the method, the path and the address
        from accounts.models import AuditEvent

        row = AuditEvent.objects.filter(action="auth.denied", actor_username=f"matrix-{role}").last()
        assert row is not None, f"{method} {url} as {role}: refused without an auth.denied row"
        assert (row.params["method"], row.params["path"], row.params["role"]) == (method, url, role)
        assert row.source_ip == "127.0.0.8" and row.outcome == "refused"


WS_CASES = [pytest.param(route, role, id=f"{route}-{role}") for route in WS_RULES for role in ROLE_NAMES]


@pytest.mark.django_db(transaction=True, databases="__all__")
@pytest.mark.parametrize("route, role", WS_CASES)
async def test_websocket_accepts_each_role_as_the_table_says(route, role):
    from channels.db import database_sync_to_async

    from kvmcluster.asgi import application

    perm, path = WS_RULES[route]
    objects_, cookie = await database_sync_to_async(_ws_setup)(role)
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    communicator = WebsocketCommunicator(application, path.format(**objects_), headers=headers)
    connected, _ = await communicator.connect(timeout=10)
    allowed = role != "anonymous" and perm in ROLES[role]
    assert connected is allowed, f"{path} as {role}: connected={connected}, table says {allowed}"
    if not allowed:
        denied = await database_sync_to_async(_denied_paths)()
        assert path.format(**objects_) in denied, f"{path} as {role}: refused socket without an auth.denied row"
    if connected:
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True, databases="__all__")
async def test_websocket_from_a_foreign_origin_is_refused():
    from channels.db import database_sync_to_async

    from kvmcluster.asgi import application

    _, cookie = await database_sync_to_async(_ws_setup)("admin")
    headers = [(b"origin", b"http://evil.example"), (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())]
    communicator = WebsocketCommunicator(application, "/ws/topology/", headers=headers)
    connected, _ = await communicator.connect(timeout=10)
    assert connected is False


def _denied_paths() -> set[str]:
    from accounts.models import AuditEvent

    return {p["path"] for p in AuditEvent.objects.filter(action="auth.denied").values_list("params", flat=True)}


def _ws_setup(role: str):
    from hosts.models import Guest, Hypervisor

    source = Hypervisor.objects.create(name=f"ws-a-{uuid.uuid4().hex[:6]}", uri=f"test:///default?{uuid.uuid4()}")
    target = Hypervisor.objects.create(name=f"ws-b-{uuid.uuid4().hex[:6]}", uri=f"test:///default?{uuid.uuid4()}")
    guest = Guest.objects.create(uuid=uuid.uuid4(), name="ws-g", hypervisor=source)
    objects_ = {
        "migration": _migration(guest, source, target),
        "operation": _operation(source),
        "hypervisor": source.pk,
        "guest": guest.pk,
    }
    if role == "anonymous":
        return objects_, ""
    client = Client()
    client.force_login(make_user(f"ws-{role}-{uuid.uuid4().hex[:6]}", role, password=None))
    return objects_, client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.fixture(autouse=True)
async def _close_thread_connections():
    """Consumers query through asgiref's shared sync thread; close its connections so the test database
    can be dropped at the end (CONN_MAX_AGE would otherwise keep them open)."""
    yield
    await _plain_sync_to_async(connections.close_all)()
