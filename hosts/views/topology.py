"""The home page: storage -> hypervisors -> guests picture and the guest table; the Refresh button."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.audit import request_ip
from accounts.permissions import require_perm
from accounts.roles import Perm
from hosts import selectors
from hosts.models import Hypervisor
from hosts.services import inventory
from hosts.views.common import guest_table_context, render_table, safe_next, wants_table_only


@require_GET
@require_perm(Perm.VIEW_CLUSTER)
def topology(request):
    if wants_table_only(request):
        return render_table(request, guest_table_context(request))
    topo = selectors.topology()
    if request.htmx and request.htmx.target == "topology-graph":  # app.js polls while the socket is down
        return render(request, "hosts/topology.html#poll", {"topology": topo})
    choices = [(c.hypervisor.pk, c.hypervisor.name) for c in topo.cards]
    ctx = {"topology": topo, **guest_table_context(request, hypervisors=choices)}
    return render(request, "hosts/topology.html", ctx)


@require_POST
@require_perm(Perm.REFRESH_INVENTORY)
def inventory_refresh(request, pk: int | None = None):
    """Enqueue a refresh of one host (pk) or all; the page updates live when the hosts answer."""
    hypervisor = get_object_or_404(Hypervisor, pk=pk) if pk is not None else None
    inventory.request_refresh(hypervisor=hypervisor, actor=request.user, source_ip=request_ip(request))
    scope = hypervisor.name if hypervisor else "all hypervisors"
    text = f"Refresh of {scope} requested; the page updates as hosts answer."
    if request.htmx:
        return HttpResponse(text, content_type="text/plain; charset=utf-8")
    messages.info(request, text)
    return redirect(safe_next(request, reverse("topology")))
