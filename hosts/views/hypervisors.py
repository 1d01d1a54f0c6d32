"""Hypervisor pages and onboarding (add / edit / delete / test connection)."""

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.audit import request_ip
from accounts.permissions import require_perm
from accounts.roles import Perm
from hosts import load_selectors, selectors
from hosts.forms import ConnectionTestForm, HypervisorForm
from hosts.models import Hypervisor
from hosts.services import ha_detection, onboarding
from hosts.views.common import guest_table_context, render_table, wants_table_only


@require_GET
@require_perm(Perm.VIEW_CLUSTER)
def hypervisor_list(request):
    return render(request, "hosts/hypervisor_list.html", {"hypervisors": selectors.hypervisor_list()})


@require_GET
@require_perm(Perm.VIEW_CLUSTER)
def hypervisor_detail(request, pk: int):
    try:
        card = selectors.hypervisor_detail(pk)
    except Hypervisor.DoesNotExist as err:
        raise Http404("No such hypervisor") from err
    ctx = guest_table_context(request, fixed_host=pk)
    if wants_table_only(request):
        return render_table(request, ctx)
    panel = load_selectors.host_load_panel(pk)
    ha = {"grace_s": settings.HA_GRACE_SECONDS, "lockspace": settings.HA_LOCKSPACE}
    return render(
        request,
        "hosts/hypervisor_detail.html",
        {"card": card, "hypervisor": card.hypervisor, "load_panel": panel, "ha": ha, **ctx},
    )


@require_POST
@require_perm(Perm.POWER_GUESTS)
def hypervisor_health_clear(request, pk: int):
    """A failed or suspect host back to healthy (and into placement), by an operator's word."""
    hv = get_object_or_404(Hypervisor, pk=pk)
    hv = ha_detection.hypervisor_health_clear(hypervisor=hv, actor=request.user, source_ip=request_ip(request))
    messages.success(request, f"{hv.name} is healthy again by your word; it takes guests again.")
    return redirect(hv)


def _probe(form_data) -> dict:
    """Run the connection test on the URI in `form_data`; the template shows result or errors."""
    test_form = ConnectionTestForm(form_data)
    if not test_form.is_valid():
        return {"probe_errors": test_form.errors.get("uri", [])}
    return {"probe": onboarding.connection_test(test_form.cleaned_data["uri"])}


def _hypervisor_form(request, instance: Hypervisor | None):
    """Shared by add and edit: "Test connection" (no JS: a submit button named `test`) or save."""
    form = HypervisorForm(request.POST or None, instance=instance)
    ctx = {"form": form, "hypervisor": instance}
    if request.method == "POST" and "test" in request.POST:
        form = HypervisorForm(initial=_initial(request.POST), instance=instance)  # no "required" noise
        return render(request, "hosts/hypervisor_form.html", {**ctx, "form": form, **_probe(request.POST)})
    if request.method == "POST" and form.is_valid():
        actor, ip = request.user, request_ip(request)
        if instance is None:
            hv = onboarding.hypervisor_create(data=form.cleaned_data, actor=actor, source_ip=ip)
            messages.success(request, f"Hypervisor {hv.name} added; inventory is reading it now.")
        else:
            hv = onboarding.hypervisor_update(hypervisor=instance, data=form.cleaned_data, actor=actor, source_ip=ip)
            messages.success(request, f"Hypervisor {hv.name} saved.")
        return redirect(hv)
    status = 400 if request.method == "POST" else 200
    return render(request, "hosts/hypervisor_form.html", ctx, status=status)


def _initial(post) -> dict:
    data = {k: post.get(k, "") for k in ("name", "uri", "migration_address")}
    data["storage_servers"] = post.getlist("storage_servers")
    data["maintenance"] = bool(post.get("maintenance"))
    data["migration_tls"] = bool(post.get("migration_tls"))
    return data


@require_http_methods(["GET", "POST"])
@require_perm(Perm.MANAGE_HOSTS)
def hypervisor_create(request):
    return _hypervisor_form(request, None)


@require_http_methods(["GET", "POST"])
@require_perm(Perm.MANAGE_HOSTS)
def hypervisor_edit(request, pk: int):
    return _hypervisor_form(request, get_object_or_404(Hypervisor, pk=pk))


@require_POST
@require_perm(Perm.MANAGE_HOSTS)
def hypervisor_test_connection(request):
    """htmx target of the "Test connection" button: just the result box."""
    return render(request, "hosts/hypervisor_form.html#probe-result", _probe(request.POST))


@require_http_methods(["GET", "POST"])
@require_perm(Perm.MANAGE_HOSTS)
def hypervisor_delete(request, pk: int):
    hypervisor = get_object_or_404(Hypervisor, pk=pk)
    refusal = onboarding.hypervisor_delete_refusal(hypervisor)
    if request.method == "POST" and not refusal:
        try:
            onboarding.hypervisor_delete(hypervisor=hypervisor, actor=request.user, source_ip=request_ip(request))
        except onboarding.InUse as err:  # a guest appeared since the check
            refusal = str(err)
        else:
            messages.success(request, f"Hypervisor {hypervisor.name} removed.")
            return redirect(reverse("hypervisor-list"))
    status = 409 if request.method == "POST" and refusal else 200
    ctx = {"object": hypervisor, "kind": "hypervisor", "refusal": refusal, "cancel_url": hypervisor.get_absolute_url()}
    return render(request, "hosts/confirm_delete.html", ctx, status=status)
