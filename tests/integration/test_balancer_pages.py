"""The balancing pages: the admin's policy page (audited with before and after, refused to others), the
proposals panel the topology and the hypervisor page load, Apply through its confirmation, Dismiss, and
the API's policy and proposal routes."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from hosts.models import Guest, Hypervisor
from migrations_app.models import BalancerPolicy, BalancerProposal, BalancerRound, GuestAffinity, GuestNeverMove
from tests.factories import make_user

pytestmark = pytest.mark.django_db

POLICY = {
    "mode": "recommend",
    "cpu_high_pct": "75",
    "host_load_from": "guests",
    "memory_high_pct": "90",
    "hold_s": "120",
    "margin_pct": "5",
    "max_moves_per_round": "2",
    "max_moves_per_hour": "6",
    "cooldown_s": "1800",
    "never_move": "db1",
    "keep_apart": "web1, web2",
    "keep_together": "",
}


def client_as(role: str) -> Client:
    from django.contrib.auth import get_user_model

    client = Client(REMOTE_ADDR="127.0.0.6")
    user = get_user_model().objects.filter(username=f"bp-{role}").first() or make_user(
        f"bp-{role}", role, password=None
    )
    client.force_login(user)
    return client


@pytest.fixture
def world():
    a = Hypervisor.objects.create(name="bp-a", uri="test:///default", state="online")
    b = Hypervisor.objects.create(name="bp-b", uri="test:///default?b", state="online")
    guests = {n: Guest.objects.create(uuid=uuid.uuid4(), name=n, hypervisor=a, power="running") for n in
              ("db1", "web1", "web2")}  # fmt: skip
    now = timezone.now()
    rnd = BalancerRound.objects.create(at=now, mode="recommend", imbalance=28.3, hot=["bp-a"])
    proposal = BalancerProposal.objects.create(
        round=rnd, guest=guests["web1"], guest_name="web1", source=a, target=b, imbalance_before=28.3,
        imbalance_after=11.7, predicted_s=2.4, why="bp-a has been above 80 % CPU for 6 min", created_at=now,
        updated_at=now,
    )  # fmt: skip
    return {"a": a, "b": b, "guests": guests, "proposal": proposal}


def test_an_admin_changes_the_policy_and_the_audit_row_holds_before_and_after(world):
    response = client_as("admin").post(reverse("balancer-policy"), POLICY)
    assert response.status_code == 302
    policy = BalancerPolicy.get()
    assert (policy.mode, policy.cpu_high_pct, policy.hold_s, policy.host_load_from) == (
        "recommend",
        75.0,
        120,
        "guests",
    )
    assert list(GuestNeverMove.objects.values_list("guest__name", flat=True)) == ["db1"]
    group = GuestAffinity.objects.get(kind="apart")
    assert sorted(group.guests.values_list("name", flat=True)) == ["web1", "web2"]
    row = AuditEvent.objects.get(action="balancer.policy_changed")
    assert row.actor_username == "bp-admin" and row.source_ip == "127.0.0.6"
    assert row.params["before"]["mode"] == "off" and row.params["after"]["mode"] == "recommend"
    assert row.params["after"]["keep_apart"] == [["web1", "web2"]] and "cpu_high_pct" in row.params["changed"]
    # the same values again change nothing and write nothing
    client_as("admin").post(reverse("balancer-policy"), POLICY)
    assert AuditEvent.objects.filter(action="balancer.policy_changed").count() == 1


def test_the_policy_page_is_refused_to_operators_and_unknown_guests_are_a_form_error(world):
    response = client_as("operator").post(reverse("balancer-policy"), POLICY)
    assert response.status_code == 403 and "accounts.manage_balancing" in response.content.decode()
    assert BalancerPolicy.get().mode == "off"
    assert AuditEvent.objects.filter(action="auth.denied", actor_username="bp-operator").exists()
    response = client_as("admin").post(reverse("balancer-policy"), {**POLICY, "keep_apart": "web1, nosuch"})
    assert response.status_code == 400 and "no guest is called nosuch" in response.content.decode()
    response = client_as("admin").post(reverse("balancer-policy"), {**POLICY, "keep_apart": "web1"})
    assert "line 1: a group needs two or more guests" in response.content.decode()
    assert not AuditEvent.objects.filter(action="balancer.policy_changed").exists()


def test_the_topology_and_the_host_page_load_the_proposals_panel(world):
    client = client_as("operator")
    assert 'hx-get="/balancer/proposals/"' in client.get(reverse("topology")).content.decode()
    page = client.get(reverse("hypervisor-detail", args=[world["a"].pk])).content.decode()
    assert f'hx-get="/balancer/proposals/?hypervisor={world["a"].pk}"' in page
    panel = client.get(reverse("balancer-proposals"), {"hypervisor": world["a"].pk}, HTTP_HX_REQUEST="true")
    html = panel.content.decode()
    assert "move web1 from bp-a to bp-b: imbalance from 28.3 to 11.7" in html
    assert "Why this guest: bp-a has been above 80 % CPU for 6 min" in html and "Apply…" in html
    assert "<html" not in html  # the partial only
    other = client.get(reverse("balancer-proposals"), {"hypervisor": 999999}, HTTP_HX_REQUEST="true")
    assert "No proposals now" in other.content.decode() or "Balancing is off" in other.content.decode()
    viewer = client_as("viewer").get(reverse("balancer-proposals")).content.decode()
    assert "imbalance from 28.3 to 11.7" in viewer and "Apply…" not in viewer


def test_apply_shows_a_confirmation_then_runs_the_pre_flight_and_starts_the_move(world, monkeypatch):
    from migrations_app.services import admission

    monkeypatch.setattr(admission, "_enqueue", lambda job_id: None)
    client = client_as("operator")
    url = reverse("balancer-proposal-apply", args=[world["proposal"].pk])
    page = client.get(url).content.decode()
    assert "Move web1 from bp-a to bp-b?" in page and "Start the move" in page
    Hypervisor.objects.filter(pk=world["b"].pk).update(state="maintenance")  # went into maintenance since
    response = client.post(url)
    assert response.status_code == 409 and "pre-flight refused the move" in response.content.decode()
    assert "bp-b is in maintenance" in response.content.decode()
    refused = AuditEvent.objects.get(action="balancer.proposal_applied")
    assert refused.outcome == "refused" and refused.actor_username == "bp-operator"
    world["proposal"].refresh_from_db()
    assert world["proposal"].state == "proposed"
    Hypervisor.objects.filter(pk=world["b"].pk).update(state="online")
    response = client.post(url)
    world["proposal"].refresh_from_db()
    assert response.status_code == 302 and response["Location"] == f"/migrations/{world['proposal'].job_id}/"
    assert AuditEvent.objects.filter(action="balancer.proposal_applied", outcome="ok").count() == 1


def test_dismiss_from_the_panel_returns_the_panel_without_the_proposal(world):
    client = client_as("operator")
    url = reverse("balancer-proposal-dismiss", args=[world["proposal"].pk])
    html = client.post(url, {"hypervisor": world["a"].pk}, HTTP_HX_REQUEST="true").content.decode()
    assert "Dismissed: web1 stays on bp-a." in html and "Apply…" not in html
    assert AuditEvent.objects.filter(action="balancer.proposal_dismissed", outcome="ok").exists()
    again = client.post(url)
    assert again.status_code == 409 and "is dismissed: it can no longer be dismissed" in again.content.decode()


def test_the_api_lists_proposals_and_only_an_admin_patches_the_policy(world):
    body = client_as("viewer").get(reverse("api-balancer-proposal-list"), {"state": "proposed"}).json()
    assert [p["headline"] for p in body["results"]] == ["move web1 from bp-a to bp-b: imbalance from 28.3 to 11.7"]
    url = reverse("api-balancer-policy")
    denied = client_as("operator").patch(url, {"mode": "automatic"}, content_type="application/json")
    assert denied.status_code == 403
    ok = client_as("admin").patch(url, {"mode": "automatic", "never_move": ["db1"]}, content_type="application/json")
    assert ok.status_code == 200 and ok.json()["mode"] == "automatic" and ok.json()["never_move"] == ["db1"]
    bad = client_as("admin").patch(url, {"keep_apart": [["web1", "nosuch"]]}, content_type="application/json")
    assert bad.status_code == 400 and "nosuch" in str(bad.json())
    assert client_as("viewer").get(url).json()["mode"] == "automatic"
    row = AuditEvent.objects.get(action="balancer.policy_changed")
    assert row.params["changed"] == ["mode", "never_move"] and row.actor_username == "bp-admin"
    wrong = client_as("admin").patch(url, {"host_load_from": "moon"}, content_type="application/json")
    assert wrong.status_code == 400 and "host_load_from" in str(wrong.json())
    guests = client_as("admin").patch(url, {"host_load_from": "guests"}, content_type="application/json")
    assert guests.status_code == 200 and guests.json()["host_load_from"] == "guests"
    assert BalancerPolicy.get().host_load_from == "guests"
    dismissed = client_as("operator").post(reverse("api-balancer-proposal-dismiss", args=[world["proposal"].pk]))
    assert dismissed.status_code == 200 and dismissed.json()["state"] == "dismissed"
