"""Property tests: junk in any GET parameter of any page -> 200 or a 4xx with a reason, never a 5xx.

The endpoints come from the URL configuration (as in the role matrix): every URL that answers GET is
listed in GET_PARAMS with the query parameters its view reads, and a new URL without a line fails
`test_every_get_endpoint_lists_its_parameters`. Values include NUL bytes, which PostgreSQL refuses in
a string literal (a raw parameter in a filter was a 500 there), so this file runs in both profiles.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_role_matrix import ENDPOINTS, RULES, _url, objects  # noqa: F401 - objects is a fixture

from tests.factories import make_user

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
PAGING = ["page"]
READINESS = ["kind", "target", "compressed", "shutdown_first", "start_on_target", "bandwidth_mibps", "max_downtime_ms"]
AUDIT_FILTERS = ["actor", "action", "guest", "hypervisor", "outcome", "migration", "since", "until"]
AUDIT = [*AUDIT_FILTERS, "before", "after"]

# fmt: off
GET_PARAMS: dict[str, list[str]] = {
    "topology":              [],
    "guest-list":            ["q", "host", "state", "sort", *PAGING],
    "guest-detail":          [],
    "hypervisor-list":       [],
    "hypervisor-create":     [],
    "hypervisor-detail":     [],
    "hypervisor-edit":       [],
    "hypervisor-delete":     ["next"],
    "storage-list":          [],
    "storage-create":        [],
    "storage-detail":        PAGING,
    "storage-edit":          [],
    "storage-delete":        ["next"],
    "migration-list":        ["guest", "state", *PAGING],
    "migration-detail":      [],
    "migration-progress":    [],
    "guest-migrate":         READINESS,
    "guest-migrate-targets": READINESS,
    "hypervisor-drain-plan": [],
    "hypervisor-readiness":  [],
    "hypervisor-maintenance": [],
    "hypervisor-maintenance-return": [],
    "operation-detail":      [],
    "operation-progress":    [],
    "balancer-proposals":    ["hypervisor"],
    "balancer-proposal-apply": [],
    "balancer-policy":       [],
    "hypervisor-load":       [],
    "guest-load":            [],
    "login":                 ["next"],
    "user-list":             [],
    "user-create":           [],
    "user-role":             [],
    "user-deactivate":       [],
    "user-reactivate":       [],
    "audit-list":            [*AUDIT, *PAGING],
    "audit-export":          [*AUDIT, "format"],
    "audit-detail":          [],
    "token-list":            [],
    "token-revoke":          [],
    "notification-target-list":   [],
    "notification-target-create": [],
    "notification-target-detail": [],
    "notification-target-edit":   [],
    "notification-target-delete": [],
    "metrics":               [],
}
# fmt: on

# The REST API's GET routes (their permissions are in tests/integration/test_api.py): url name -> (the
# object key its <pk> takes, the query parameters its view reads).
API_GET_PARAMS: dict[str, tuple[str, list[str]]] = {
    "api-storage-server-list": ("", ["cursor", "page_size"]),
    "api-storage-server-detail": ("storage", []),
    "api-hypervisor-list": ("", ["cursor", "page_size"]),
    "api-hypervisor-detail": ("hypervisor", []),
    "api-guest-list": ("", ["q", "hypervisor", "power", "cursor", "page_size"]),
    "api-guest-detail": ("guest", []),
    "api-guest-targets-list": ("guest", READINESS),
    "api-drain-plan-list": ("hypervisor", []),
    "api-hypervisor-readiness-list": ("", []),
    "api-migration-list": ("", ["guest", "state", "cursor", "page_size"]),
    "api-migration-detail": ("migration", []),
    "api-operation-detail": ("operation", []),
    "api-balancer-proposal-list": ("", ["state", "hypervisor", "cursor", "page_size"]),
    "api-balancer-policy": ("", []),
    "api-audit-event-list": ("", [*AUDIT_FILTERS, "cursor", "page_size"]),
    "api-audit-event-detail": ("audit", []),
    "api-audit-event-export": ("", [*AUDIT_FILTERS, "format"]),
    "api-user-list": ("", ["cursor", "page_size"]),
    "api-user-detail": ("user", []),
    "api-role-list": ("", []),
}

junk = st.one_of(
    st.text(max_size=80),
    st.text(max_size=10).map(lambda s: s + "\x00"),
    st.sampled_from(
        ["", "\x00", "a\x00b", "\u202e\x00nul", "-1", "0", "9" * 30, "1e309", "NaN", "on", "live", "☃" * 200]
    ),
)


def _get_endpoints() -> list[str]:
    return [name for name, _ in ENDPOINTS if name in RULES and RULES[name].get != 405 and name != "static"]


def test_every_get_endpoint_lists_its_parameters():
    missing = [name for name in _get_endpoints() if name not in GET_PARAMS]
    assert not missing, f"add the GET parameters of {', '.join(missing)} to GET_PARAMS in {__file__}"
    from test_api import API_RULES

    api_gets = {name for name, rules in API_RULES.items() if any(method == "GET" for method, *_ in rules)}
    assert api_gets == set(API_GET_PARAMS), f"API_GET_PARAMS in {__file__} must list {sorted(api_gets)}"


@pytest.fixture
def admin_client(db):
    client = Client(REMOTE_ADDR="127.0.0.9")
    client.force_login(make_user("fuzz-admin", "admin", password=None))
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(GET_PARAMS))
def test_junk_get_parameters_never_give_a_server_error(objects, admin_client, name):  # noqa: F811
    url = _url(name, RULES[name], objects)
    names = GET_PARAMS[name] or ["x"]

    @SETTINGS
    @given(params=st.dictionaries(st.sampled_from(names), junk, max_size=len(names)))
    def check(params):
        response = admin_client.get(url, params)
        assert response.status_code < 500, (url, params, response.status_code)
        if response.status_code == 400:
            assert response.content.strip(), "a 400 must say why"

    check()


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(API_GET_PARAMS))
def test_junk_api_query_parameters_never_give_a_server_error(objects, admin_client, name):  # noqa: F811
    key, names = API_GET_PARAMS[name]
    kwarg = {"api-guest-targets-list": "guest_pk", "api-drain-plan-list": "hypervisor_pk"}.get(name, "pk")
    url = reverse(name, kwargs={kwarg: objects[key]} if key else None)

    @SETTINGS
    @given(params=st.dictionaries(st.sampled_from(names or ["x"]), junk, max_size=len(names or ["x"])))
    def check(params):
        response = admin_client.get(url, params)
        assert response.status_code < 500, (url, params, response.status_code)
        if response.status_code >= 400:
            assert response.json()["detail"], "an API refusal is a problem document that says why"

    check()


@pytest.mark.django_db
def test_a_nul_byte_in_the_history_filter_is_a_400_naming_the_field(admin_client):
    response = admin_client.get("/migrations/", {"guest": "a\x00b"})
    assert response.status_code == 400
    assert "Filter ignored: guest: Null characters are not allowed." in response.content.decode()
