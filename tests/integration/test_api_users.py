"""Admins manage users over the API through the user pages' service functions: the same audit rows, the
same refusals (the last active admin keeps the role; nobody deactivates themselves), the same password rules."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from knox.models import AuthToken

from accounts.models import AuditEvent
from accounts.permissions import user_role
from accounts.roles import PERMISSION_LABELS, ROLES
from tests.factories import make_user
from tests.integration.accounts_support import rows

pytestmark = pytest.mark.django_db
USERS = "/api/v1/users/"
User = get_user_model()


@pytest.fixture
def admin():
    return make_user("ada", "admin", password=None)


@pytest.fixture
def api(admin):
    client = Client(REMOTE_ADDR="127.0.0.7")
    client.force_login(admin)
    return client


def _post(client, url, body=None):
    return client.post(url, body or {}, content_type="application/json")


def test_the_list_shows_each_users_role_and_whether_active(api, admin):
    make_user("olga", "operator", password=None)
    make_user("gone", "viewer", password=None, is_active=False)
    listed = {u["username"]: u for u in api.get(USERS).json()["results"]}
    assert (listed["ada"]["role"], listed["olga"]["role"], listed["gone"]["role"]) == ("admin", "operator", "viewer")
    assert listed["gone"]["is_active"] is False and listed["olga"]["is_active"] is True
    assert "password" not in listed["olga"]
    assert api.get(f"{USERS}{admin.pk}/").json()["username"] == "ada"


def test_an_admin_creates_a_user_with_a_role_under_the_password_rules(api):
    weak = _post(api, USERS, {"username": "newbie", "password": "123", "role": "operator"})
    assert weak.status_code == 400 and "password" in weak.json()["errors"]
    bad_role = _post(api, USERS, {"username": "newbie", "password": "Corr3ct-Horse-Battery", "role": "root"})
    assert bad_role.status_code == 400 and "role" in bad_role.json()["errors"]
    assert not User.objects.filter(username="newbie").exists()
    made = _post(api, USERS, {"username": "newbie", "password": "Corr3ct-Horse-Battery", "role": "operator"})
    assert made.status_code == 201 and made.json()["role"] == "operator"
    user = User.objects.get(username="newbie")
    assert user.check_password("Corr3ct-Horse-Battery") and user_role(user) == "operator"
    assert rows("user.created")[-1].actor_username == "ada"
    again = _post(api, USERS, {"username": "newbie", "password": "Corr3ct-Horse-Battery"})
    assert again.status_code == 400 and "username" in again.json()["errors"]


def test_role_changes_are_audited_and_the_last_admin_keeps_the_role(api, admin):
    olga = make_user("olga", "operator", password=None)
    changed = _post(api, f"{USERS}{olga.pk}/role/", {"role": "viewer"})
    assert changed.status_code == 200 and changed.json()["role"] == "viewer"
    row = rows("user.role_changed")[-1]
    assert (row.params["from"], row.params["to"], row.actor_username) == ("operator", "viewer", "ada")
    last = _post(api, f"{USERS}{admin.pk}/role/", {"role": "operator"})
    assert last.status_code == 409 and "last active admin" in last.json()["detail"]
    assert user_role(User.objects.get(pk=admin.pk)) == "admin"
    assert len(rows("user.role_changed")) == 1
    # with a second admin the first may step down
    _post(api, f"{USERS}{olga.pk}/role/", {"role": "admin"})
    assert _post(api, f"{USERS}{admin.pk}/role/", {"role": "operator"}).json()["role"] == "operator"


def test_deactivating_refuses_yourself_and_stops_the_users_tokens(api, admin):
    selfish = _post(api, f"{USERS}{admin.pk}/deactivate/")
    assert selfish.status_code == 409 and "your own account" in selfish.json()["detail"]
    olga = make_user("olga", "operator", password=None)
    _, token = AuthToken.objects.create(user=olga)
    as_olga = Client(REMOTE_ADDR="127.0.0.7", HTTP_AUTHORIZATION=f"Token {token}")
    assert as_olga.get("/api/v1/guests/").status_code == 200
    done = _post(api, f"{USERS}{olga.pk}/deactivate/")
    assert done.status_code == 200 and done.json()["is_active"] is False
    assert rows("user.deactivated")[-1].params["username"] == "olga"
    refused = as_olga.get("/api/v1/guests/")
    assert refused.status_code == 401
    denial = AuditEvent.objects.filter(action="auth.denied").latest("id")
    assert denial.params["interface"] == "api" and "inactive" in denial.message
    assert _post(api, f"{USERS}{olga.pk}/reactivate/").json()["is_active"] is True
    assert as_olga.get("/api/v1/guests/").status_code == 200


def test_an_admin_deactivated_by_another_leaves_the_actor_as_the_last_admin(api, admin):
    other = make_user("root2", "admin", password=None)
    assert _post(api, f"{USERS}{other.pk}/deactivate/").status_code == 200
    # root2 is inactive, so ada is the one active admin left: she keeps the role
    last = _post(api, f"{USERS}{admin.pk}/role/", {"role": "viewer"})
    assert last.status_code == 409 and "last active admin" in last.json()["detail"]
    assert user_role(User.objects.get(pk=admin.pk)) == "admin"


def test_roles_are_the_one_table(api):
    listed = api.get("/api/v1/roles/").json()
    assert [r["name"] for r in listed] == ["viewer", "operator", "admin"]
    for role in listed:
        assert {p["codename"] for p in role["permissions"]} == {str(p) for p in ROLES[role["name"]]}
        assert all(p["label"] in PERMISSION_LABELS.values() for p in role["permissions"])


def test_operators_may_not_manage_users(admin):
    op = Client(REMOTE_ADDR="127.0.0.7")
    op.force_login(make_user("olga", "operator", password=None))
    refused = _post(op, f"{USERS}{admin.pk}/role/", {"role": "viewer"})
    assert refused.status_code == 403 and "accounts.manage_users" in refused.json()["detail"]
    assert user_role(User.objects.get(pk=admin.pk)) == "admin" and not rows("user.role_changed")
