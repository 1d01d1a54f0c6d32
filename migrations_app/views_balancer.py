"""Balancing pages: the proposals panel (the topology and the hypervisor page load it), Apply (a
confirmation, then a guest migration), Dismiss, and the admin's policy page. Each view makes one call into
services.balancer_actions / services.balancer_policy or balancer_selectors and renders what it returns."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.audit import request_ip
from accounts.permissions import forbidden, require_perm
from accounts.roles import Perm
from migrations_app import balancer_selectors
from migrations_app.balancer_forms import BalancerPolicyForm, ProposalsQueryForm
from migrations_app.models import BalancerProposal
from migrations_app.services import MigrationError, balancer_actions, balancer_policy

PANEL = "migrations_app/balancer_proposals.html"


def _panel(request, hypervisor_id: int | None, status: int = 200, **extra):
    ctx = {**balancer_selectors.panel(hypervisor_id), **extra}
    template = PANEL + ("#panel" if request.htmx else "")
    return render(request, template, ctx, status=status)


def _bad_query(form) -> HttpResponse:
    reasons = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
    return HttpResponse(f"bad query: {reasons}", status=400, content_type="text/plain; charset=utf-8")


@require_GET
@require_perm(Perm.VIEW_CLUSTER)
def balancer_proposals(request):
    """The balancer's open proposals (all, or those touching ?hypervisor=<id>) and its last round."""
    form = ProposalsQueryForm(request.GET)
    if not form.is_valid():
        return _bad_query(form)
    return _panel(request, form.cleaned_data["hypervisor"])


def _proposal(pk: int) -> BalancerProposal:
    return get_object_or_404(BalancerProposal.objects.select_related("source", "target", "guest", "round"), pk=pk)


@require_http_methods(["GET", "POST"])
@require_perm(Perm.RUN_MIGRATIONS)
def balancer_proposal_apply(request, pk: int):
    """GET: what Apply will do; POST: start the move (pre-flight as always), then its job page."""
    proposal = _proposal(pk)
    error, status = "", 200
    if request.method == "POST":
        try:
            job = balancer_actions.proposal_apply(proposal=proposal, actor=request.user, source_ip=request_ip(request))
        except PermissionDenied:
            return forbidden(request, Perm.RUN_MIGRATIONS)
        except MigrationError as err:
            error, status = str(err), 409
            proposal.refresh_from_db()
        else:
            if request.htmx:
                return HttpResponseClientRedirect(job.get_absolute_url())
            return redirect(job.get_absolute_url())
    ctx = {"p": proposal, "error": error}
    return render(request, "migrations_app/balancer_apply_confirm.html", ctx, status=status)


@require_POST
@require_perm(Perm.RUN_MIGRATIONS)
def balancer_proposal_dismiss(request, pk: int):
    """Dismiss; htmx gets the panel back (for the host it was shown on), a plain form the proposals page."""
    proposal = _proposal(pk)
    query = ProposalsQueryForm(request.POST)
    hypervisor_id = query.cleaned_data["hypervisor"] if query.is_valid() else None
    try:
        balancer_actions.proposal_dismiss(proposal=proposal, actor=request.user, source_ip=request_ip(request))
    except PermissionDenied:
        return forbidden(request, Perm.RUN_MIGRATIONS)
    except MigrationError as err:
        if request.htmx:
            return _panel(request, hypervisor_id, status=409, error=str(err))
        return HttpResponse(str(err), status=409, content_type="text/plain; charset=utf-8")
    if request.htmx:
        return _panel(request, hypervisor_id, message=f"Dismissed: {proposal.guest_name} stays on {proposal.source}.")
    messages.info(request, f"Dismissed: {proposal.guest_name} stays on {proposal.source}.")
    return redirect(reverse("balancer-proposals"))


@require_http_methods(["GET", "POST"])
@require_perm(Perm.MANAGE_BALANCING)
def balancer_policy_edit(request):
    """The cluster-wide policy (admins): mode, marks, hold, margin, limits, cooldown and per-guest rules."""
    current = balancer_policy.policy_as_dict()
    form = BalancerPolicyForm(request.POST or None, initial=BalancerPolicyForm.initial_from(current))
    if request.method == "POST" and form.is_valid():
        try:
            balancer_policy.policy_update(changes=form.changes(), actor=request.user, source_ip=request_ip(request))
        except PermissionDenied:
            return forbidden(request, Perm.MANAGE_BALANCING)
        except balancer_policy.UnknownGuests as err:  # a guest renamed or removed since the form checked
            form.add_error(None, str(err))
        else:
            messages.success(request, "Balancing policy saved.")
            return redirect(reverse("balancer-policy"))
    status = 400 if request.method == "POST" else 200
    ctx = {"form": form, "policy": current, **balancer_selectors.panel(None)}
    return render(request, "migrations_app/balancer_policy.html", ctx, status=status)
