"""Guest table and guest page; the power buttons of the guest page."""

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts import selectors as audit_selectors
from accounts.audit import request_ip
from accounts.permissions import require_perm
from accounts.roles import Perm
from hosts import load_selectors, selectors
from hosts.forms import GuestHaForm
from hosts.models import Guest
from hosts.services import ha, power
from hosts.views.common import guest_table_context, render_table, wants_table_only


@require_GET
@require_perm(Perm.VIEW_CLUSTER)
def guest_list(request):
    ctx = guest_table_context(request)
    if wants_table_only(request):
        return render_table(request, ctx)
    return render(request, "hosts/guest_list.html", ctx)


@require_GET
@require_perm(Perm.VIEW_CLUSTER)
def guest_detail(request, pk: int):
    try:
        guest = selectors.guest_detail(pk)
    except Guest.DoesNotExist as err:
        raise Http404("No such guest") from err
    panel = load_selectors.guest_load_panel(pk)
    ctx = {"guest": guest, "power_actions": power.ACTIONS, "load_panel": panel, **_ha_context(guest)}
    return render(request, "hosts/guest_detail.html", ctx)


def _ha_context(guest: Guest, form: GuestHaForm | None = None, reasons: list[str] | None = None) -> dict:
    initial = {"restart": guest.ha_restart, "priority": guest.ha_priority}
    return {
        "ha_form": form or GuestHaForm(initial=initial),
        "ha_checks": ha.guest_ha_checks(guest),
        "ha_reasons": reasons or [],
        # what happened the last time its host failed: refused (the old host may still run it) or started
        "ha_last": audit_selectors.latest_event("guest.ha_restart", guest_uuid=str(guest.uuid)),
    }


@require_POST
@require_perm(Perm.POWER_GUESTS)
def guest_ha(request, pk: int):
    """The redundancy panel's form: "restart on failure" and its priority, refused with the failing checks."""
    guest = get_object_or_404(Guest.objects.select_related("hypervisor"), pk=pk)
    form = GuestHaForm(request.POST)
    reasons: list[str] = []
    if form.is_valid():
        try:
            guest = ha.guest_ha_set(
                guest=guest,
                restart=form.cleaned_data["restart"],
                priority=form.cleaned_data["priority"],
                actor=request.user,
                source_ip=request_ip(request),
            )
        except ha.HaRefused as err:
            reasons = err.reasons
        else:
            if not request.htmx:
                messages.success(request, f"{guest.name}: restart on failure {'on' if guest.ha_restart else 'off'}.")
                return redirect(guest)
    refused = not form.is_valid() or bool(reasons)
    ctx = {"guest": guest, **_ha_context(guest, form if refused else None, reasons)}
    if request.htmx:
        # htmx swaps only 2xx answers: the panel itself says what was refused.
        return render(request, "hosts/guest_detail.html#ha-panel", ctx)
    ctx |= {
        "guest": selectors.guest_detail(pk),
        "power_actions": power.ACTIONS,
        "load_panel": load_selectors.guest_load_panel(pk),
    }
    return render(request, "hosts/guest_detail.html", ctx, status=422)


@require_POST
@require_perm(Perm.POWER_GUESTS)
def guest_power(request, pk: int):
    guest = get_object_or_404(Guest.objects.select_related("hypervisor"), pk=pk)
    action = request.POST.get("action", "")
    if action == "destroy" and request.POST.get("confirmed") != "yes":
        return render(request, "hosts/guest_power_confirm.html", {"guest": guest, "action": action})
    try:
        guest = power.guest_power(guest=guest, action=action, actor=request.user, source_ip=request_ip(request))
    except power.PowerRefused as err:
        if request.htmx:
            return HttpResponse(err.message, status=409, content_type="text/plain; charset=utf-8")
        messages.error(request, f"{guest.name}: {err.message}")
    else:
        messages.success(request, f"{guest.name}: libvirt reports {guest.get_power_display().lower()}.")
    return redirect(guest)
