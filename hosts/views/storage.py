"""Storage server pages and their onboarding (add / edit / delete)."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from accounts.audit import request_ip
from accounts.permissions import require_perm
from accounts.roles import Perm
from hosts import selectors
from hosts.forms import StorageServerForm
from hosts.models import StorageServer
from hosts.services import onboarding


@require_GET
@require_perm(Perm.VIEW_CLUSTER)
def storage_list(request):
    return render(request, "hosts/storage_list.html", {"servers": selectors.storage_list()})


@require_GET
@require_perm(Perm.VIEW_CLUSTER)
def storage_detail(request, pk: int):
    try:
        server = selectors.storage_detail(pk)
    except StorageServer.DoesNotExist as err:
        raise Http404("No such storage server") from err
    page = selectors.storage_guests(server, page=request.GET.get("page", 1))
    return render(request, "hosts/storage_detail.html", {"server": server, "page_obj": page})


def _storage_form(request, instance: StorageServer | None):
    form = StorageServerForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        actor, ip = request.user, request_ip(request)
        if instance is None:
            server = onboarding.storage_server_create(data=form.cleaned_data, actor=actor, source_ip=ip)
            messages.success(request, f"Storage server {server.name} added.")
        else:
            server = onboarding.storage_server_update(
                server=instance, data=form.cleaned_data, actor=actor, source_ip=ip
            )
            messages.success(request, f"Storage server {server.name} saved.")
        return redirect(server)
    status = 400 if request.method == "POST" else 200
    return render(request, "hosts/storage_form.html", {"form": form, "server": instance}, status=status)


@require_http_methods(["GET", "POST"])
@require_perm(Perm.MANAGE_HOSTS)
def storage_create(request):
    return _storage_form(request, None)


@require_http_methods(["GET", "POST"])
@require_perm(Perm.MANAGE_HOSTS)
def storage_edit(request, pk: int):
    return _storage_form(request, get_object_or_404(StorageServer, pk=pk))


@require_http_methods(["GET", "POST"])
@require_perm(Perm.MANAGE_HOSTS)
def storage_delete(request, pk: int):
    server = get_object_or_404(StorageServer, pk=pk)
    refusal = onboarding.storage_server_delete_refusal(server)
    if request.method == "POST" and not refusal:
        try:
            onboarding.storage_server_delete(server=server, actor=request.user, source_ip=request_ip(request))
        except onboarding.InUse as err:
            refusal = str(err)
        else:
            messages.success(request, f"Storage server {server.name} removed.")
            return redirect(reverse("storage-list"))
    status = 409 if request.method == "POST" and refusal else 200
    ctx = {"object": server, "kind": "storage server", "refusal": refusal, "cancel_url": server.get_absolute_url()}
    return render(request, "hosts/confirm_delete.html", ctx, status=status)
