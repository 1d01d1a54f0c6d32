"""The data migration's groups carry exactly the permissions of accounts.roles.ROLES; helpers read them."""

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.test import Client, RequestFactory
from django.urls import reverse

from accounts.context_processors import roles as roles_context
from accounts.permissions import user_can, user_role
from accounts.roles import ROLES, Perm, sync_role_groups
from tests.factories import make_user


@pytest.mark.django_db
def test_each_role_group_has_exactly_its_permissions():
    for role, perms in ROLES.items():
        group = Group.objects.get(name=role)
        codenames = set(group.permissions.values_list("content_type__app_label", "codename"))
        assert codenames == {("accounts", p.codename) for p in perms}, role


@pytest.mark.django_db
def test_sync_is_idempotent_and_repairs_drift():
    admin = Group.objects.get(name="admin")
    admin.permissions.clear()
    sync_role_groups()
    sync_role_groups()
    assert admin.permissions.count() == len(ROLES["admin"])
    assert Group.objects.filter(name__in=ROLES).count() == 3


@pytest.mark.django_db
def test_perm_strings_work_with_has_perm_and_user_can():
    op = make_user("op", "operator", password=None)
    assert op.has_perm(Perm.RUN_MIGRATIONS) and user_can(op, Perm.POWER_GUESTS)
    assert not user_can(op, Perm.MANAGE_HOSTS) and not user_can(AnonymousUser(), Perm.VIEW_CLUSTER)
    op.is_active = False
    assert not user_can(op, Perm.VIEW_CLUSTER)


@pytest.mark.django_db
def test_user_role_names_the_highest_role():
    assert user_role(make_user("v", "viewer", password=None)) == "viewer"
    both = make_user("b", "viewer", password=None)
    both.groups.add(Group.objects.get(name="admin"))
    assert user_role(both) == "admin"
    assert user_role(make_user("s", None, password=None, is_superuser=True)) == "admin"
    assert user_role(make_user("n", None, password=None)) == "" and user_role(AnonymousUser()) == ""


@pytest.mark.django_db
def test_templates_get_user_role():
    request = RequestFactory().get("/")
    request.user = make_user("ctx", "operator", password=None)
    assert str(roles_context(request)["user_role"]) == "operator"


@pytest.mark.django_db
def test_pages_show_the_role_badge_and_only_permitted_nav_links():
    client = Client()
    client.force_login(make_user("nav-viewer", "viewer", password=None))
    body = client.get(reverse("audit-list")).content.decode()
    assert '<span class="role-badge">viewer</span>' in body
    assert reverse("audit-list") in body and reverse("user-list") not in body
