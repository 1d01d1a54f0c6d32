"""Measured load as JSON for the pages' charts to poll: the last hour, as the page's json_script has it."""

from django.http import Http404, JsonResponse
from django.views.decorators.http import require_GET

from accounts.permissions import require_perm
from accounts.roles import Perm
from hosts import load_selectors
from hosts.models import Guest, Hypervisor


@require_GET
@require_perm(Perm.VIEW_CLUSTER)
def hypervisor_load(request, pk: int):
    if not Hypervisor.objects.filter(pk=pk).exists():
        raise Http404("No such hypervisor")
    return JsonResponse(load_selectors.host_load_panel(pk).series)


@require_GET
@require_perm(Perm.VIEW_CLUSTER)
def guest_load(request, pk: int):
    if not Guest.objects.filter(pk=pk).exists():
        raise Http404("No such guest")
    return JsonResponse(load_selectors.guest_load_panel(pk).series)
