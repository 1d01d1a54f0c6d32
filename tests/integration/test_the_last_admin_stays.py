"""There is always an active admin: no form and no service call removes the last one; demo_accounts
leaves accounts an admin deactivated alone."""

import pytest
from accounts_support import rows
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.permissions import user_role
from tests.factories import make_user

User = get_user_model()


@pytest.fixture
def admin_client(db):
    admin = make_user("only-admin", "admin", password=None)
    client = Client(REMOTE_ADDR="127.0.0.7")
    client.force_login(admin)
    client.user = admin
    return client


def test_the_last_admin_cannot_demote_themselves(admin_client):
    url = reverse("user-role", kwargs={"pk": admin_client.user.pk})
    response = admin_client.post(url, {"role": "viewer"})
    assert response.status_code == 400
    assert "last active admin" in response.content.decode()
    assert user_role(User.objects.get(pk=admin_client.user.pk)) == "admin"


def test_an_admin_can_demote_another_while_one_remains(admin_client):
    other = make_user("ada", "admin", password=None)
    response = admin_client.post(reverse("user-role", kwargs={"pk": other.pk}), {"role": "viewer"})
    assert response.status_code == 302 and user_role(User.objects.get(pk=other.pk)) == "viewer"


def test_the_service_refuses_to_deactivate_or_demote_the_last_admin(db):
    admin = make_user("lone", "admin", password=None)
    make_user("ada", "admin", password=None, is_active=False)  # an inactive admin does not count
    with pytest.raises(ValidationError, match="last active admin"):
        services.user_set_active(user=admin, active=False, actor=None)
    with pytest.raises(ValidationError, match="last active admin"):
        services.user_set_role(user=admin, role="operator", actor=None)
    admin.refresh_from_db()
    assert admin.is_active and user_role(admin) == "admin"
    assert not rows("user.deactivated") and not rows("user.role_changed")


def test_demo_accounts_leaves_a_deactivated_account_alone(db, capsys):
    make_user("keeper", "admin", password=None)
    call_command("demo_accounts")
    viewer = User.objects.get(username="viewer")
    services.user_set_active(user=viewer, active=False, actor=None)
    capsys.readouterr()
    call_command("demo_accounts")
    out = capsys.readouterr()
    assert "viewer was deactivated by an admin" in out.err
    assert [line.split()[0] for line in out.out.splitlines() if line.strip()] == ["operator", "admin"]
    assert not User.objects.get(username="viewer").is_active
