"""Guest table and guest page; the power buttons of the guest page."""

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.audit import request_ip
from accounts.permissions import require_perm
from accounts.roles import Perm
from hosts import load_selectors, selectors
from hosts.models import Guest
from hosts.services import power
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
    return render(
        request, "hosts/guest_detail.html", {"guest": guest, "power_actions": power.ACTIONS, "load_panel": panel}
    )


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
