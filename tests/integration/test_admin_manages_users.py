"""An admin creates users with a role, changes roles, deactivates and reactivates; each change is audited."""

import pytest
from accounts_support import rows
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from accounts.permissions import user_role
from tests.factories import PASSWORD, make_user

User = get_user_model()


@pytest.fixture
def admin_client(db):
    admin = make_user("root-admin", "admin")
    client = Client(REMOTE_ADDR="127.0.0.7")
    client.force_login(admin)
    client.user = admin
    return client


def test_user_list_shows_accounts_and_roles(admin_client):
    make_user("vera", "viewer")
    response = admin_client.get(reverse("user-list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "vera" in body and "viewer" in body and "root-admin" in body and "Add user" in body


def test_admin_creates_an_operator(admin_client):
    response = admin_client.post(
        reverse("user-create"),
        {"username": "otto", "password1": "Sturdy-Plank-4471", "password2": "Sturdy-Plank-4471", "role": "operator"},
    )
    assert response.status_code == 302 and response["Location"] == reverse("user-list")
    otto = User.objects.get(username="otto")
    assert user_role(otto) == "operator" and otto.check_password("Sturdy-Plank-4471")
    [created] = rows("user.created")
    assert created.actor_username == "root-admin" and created.source_ip == "127.0.0.7"
    assert created.params == {"username": "otto", "role": "operator", "user_id": otto.pk}


@pytest.mark.parametrize(
    "password, message",
    [
        ("short1A!", "too short"),
        ("password1234", "too common"),
        ("48213957203948", "entirely numeric"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(admin_client, password, message):
    response = admin_client.post(
        reverse("user-create"), {"username": "weak", "password1": password, "password2": password, "role": "viewer"}
    )
    assert response.status_code == 400 and message in response.content.decode()
    assert not User.objects.filter(username="weak").exists() and not rows("user.created")


def test_role_change_is_audited_with_before_and_after(admin_client):
    otto = make_user("otto", "operator")
    response = admin_client.post(reverse("user-role", args=[otto.pk]), {"role": "viewer"})
    assert response.status_code == 302
    assert user_role(User.objects.get(pk=otto.pk)) == "viewer"
    [changed] = rows("user.role_changed")
    assert changed.params["from"] == "operator" and changed.params["to"] == "viewer"
    # Same role again: nothing changes, nothing is written.
    admin_client.post(reverse("user-role", args=[otto.pk]), {"role": "viewer"})
    assert len(rows("user.role_changed")) == 1


def test_unknown_role_is_a_form_error(admin_client):
    otto = make_user("otto", "operator")
    response = admin_client.post(reverse("user-role", args=[otto.pk]), {"role": "root"})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert user_role(otto) == "operator"


def test_deactivation_asks_first_then_signs_the_user_out(admin_client):
    victim = make_user("vic", "operator")
    victim_client = Client()
    victim_client.force_login(victim)
    assert victim_client.get(reverse("audit-list")).status_code == 200

    page = admin_client.get(reverse("user-deactivate", args=[victim.pk]))
    assert page.status_code == 200 and "Deactivate vic?" in page.content.decode()
    assert User.objects.get(pk=victim.pk).is_active  # the GET only asked

    assert admin_client.post(reverse("user-deactivate", args=[victim.pk])).status_code == 302
    assert not User.objects.get(pk=victim.pk).is_active
    assert rows("user.deactivated")[0].params["username"] == "vic"
    response = victim_client.get(reverse("audit-list"))
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert Client().post(reverse("login"), {"username": "vic", "password": PASSWORD}).status_code == 200

    assert admin_client.post(reverse("user-reactivate", args=[victim.pk])).status_code == 302
    assert User.objects.get(pk=victim.pk).is_active and rows("user.reactivated")


def test_admin_cannot_deactivate_themselves(admin_client):
    response = admin_client.post(reverse("user-deactivate", args=[admin_client.user.pk]))
    assert response.status_code == 400 and "your own account" in response.content.decode()
    assert User.objects.get(pk=admin_client.user.pk).is_active and not rows("user.deactivated")


def test_operator_is_refused_user_admin_with_a_reason(db):
    client = Client()
    client.force_login(make_user("opal", "operator"))
    response = client.get(reverse("user-list"))
    assert response.status_code == 403
    assert "can manage users and roles" in response.content.decode() and "operator" in response.content.decode()
    htmx = client.post(reverse("user-create"), {"username": "x"}, headers={"HX-Request": "true"})
    assert htmx.status_code == 403 and htmx["Content-Type"].startswith("text/plain")
    assert not User.objects.filter(username="x").exists()


def test_demo_accounts_prints_one_working_login_per_role(db, capsys):
    from django.core.management import call_command

    call_command("demo_accounts")
    lines = capsys.readouterr().out.split("\n")
    parsed = [line.split() for line in lines if line.strip()]
    assert [p[0] for p in parsed] == ["viewer", "operator", "admin"]
    for role, username, password in parsed:
        user = User.objects.get(username=username)
        assert user_role(user) == role and user.check_password(password)
    call_command("demo_accounts")  # a reset gives new passwords
    again = {p[0]: p[2] for p in (line.split() for line in capsys.readouterr().out.split("\n") if line.strip())}
    assert all(again[role] != password for role, _, password in parsed)
