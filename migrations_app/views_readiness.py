"""The host-pair readiness matrix page (/hypervisors/readiness/): one call into services.readiness."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.permissions import require_perm
from accounts.roles import Perm
from migrations_app.services import readiness


@require_GET
@require_perm(Perm.VIEW_CLUSTER)
def hypervisor_readiness(request):
    """Every source × target pair with its checks and their evidence; facts only, nothing starts."""
    return render(request, "migrations_app/hypervisor_readiness.html", {"matrix": readiness.readiness_matrix()})
