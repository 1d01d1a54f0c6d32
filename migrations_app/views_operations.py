"""Maintenance mode pages: the confirmation of a drain, an operation's page (pushed over its websocket,
polled by htmx until then) with its controls, leaving maintenance and bringing the guests back. Each view
makes one call into services.operations / operation_controls / operation_return and renders its result."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.audit import request_ip
from accounts.permissions import forbidden, require_perm, user_can
from accounts.roles import Perm
from hosts.models import Hypervisor
from migrations_app.forms import MaintenanceForm
from migrations_app.models import Operation
from migrations_app.services import MigrationError, drain, operation_controls, operation_return, operations

OPERATION = "migrations_app/operation_detail.html"


@require_http_methods(["GET", "POST"])
@require_perm(Perm.RUN_MIGRATIONS)
def hypervisor_maintenance(request, pk: int):
    """Confirm entering maintenance: the plan as it stands now, the "stop on first failure" choice."""
    hypervisor = get_object_or_404(Hypervisor, pk=pk)
    form = MaintenanceForm(request.POST if request.method == "POST" else None)
    error, status = "", 200
    if request.method == "POST" and form.is_valid():
        try:
            op = operations.maintenance_enter(
                hypervisor=hypervisor, actor=request.user, source_ip=request_ip(request), **form.cleaned_data
            )
            return redirect(op.get_absolute_url())
        except PermissionDenied:
            return forbidden(request, Perm.RUN_MIGRATIONS)
        except MigrationError as err:
            error, status = str(err), 409
    plan = drain.drain_plan(hypervisor)
    context = {"hypervisor": hypervisor, "plan": plan, "form": form, "error": error}
    return render(request, "migrations_app/maintenance_confirm.html", context, status=status)


@require_POST
@require_perm(Perm.RUN_MIGRATIONS)
def hypervisor_maintenance_exit(request, pk: int):
    """Leave maintenance; the page offers the guests that left, back (the reverse of the last drain)."""
    hypervisor = get_object_or_404(Hypervisor, pk=pk)
    try:
        out = operation_controls.maintenance_exit(
            hypervisor=hypervisor, actor=request.user, source_ip=request_ip(request)
        )
    except PermissionDenied:
        return forbidden(request, Perm.RUN_MIGRATIONS)
    except MigrationError as err:
        context = {"hypervisor": hypervisor, "error": str(err), "reverse_plan": []}
        return render(request, "migrations_app/maintenance_exited.html", context, status=409)
    context = {"hypervisor": hypervisor, "error": "", "reverse_plan": out["reverse_plan"], "form": MaintenanceForm()}
    return render(request, "migrations_app/maintenance_exited.html", context)


@require_http_methods(["GET", "POST"])
@require_perm(Perm.RUN_MIGRATIONS)
def hypervisor_maintenance_return(request, pk: int):
    """Bring the guests of the last drain back as one operation: GET shows the reverse plan to confirm,
    POST confirms it (then the operation's page)."""
    hypervisor = get_object_or_404(Hypervisor, pk=pk)
    form = MaintenanceForm(request.POST if request.method == "POST" else None)
    error, status = "", 200
    if request.method == "POST" and form.is_valid():
        try:
            op = operation_return.return_start(
                hypervisor=hypervisor,
                actor=request.user,
                source_ip=request_ip(request),
                stop_on_first_failure=form.cleaned_data["stop_on_first_failure"],
            )
            return redirect(op.get_absolute_url())
        except PermissionDenied:
            return forbidden(request, Perm.RUN_MIGRATIONS)
        except MigrationError as err:
            error, status = str(err), 409
    context = {
        "hypervisor": hypervisor,
        "error": error,
        "confirming": True,
        "reverse_plan": operation_controls.reverse_plan(hypervisor),
        "form": form,
    }
    return render(request, "migrations_app/maintenance_exited.html", context, status=status)


def _operation_context(request, op: Operation, **extra) -> dict:
    return {
        "op": op,
        "progress": operations.operation_progress(op),
        "can_run": user_can(request.user, Perm.RUN_MIGRATIONS),
        **extra,
    }


@require_GET
@require_perm(Perm.VIEW_CLUSTER)
def operation_detail(request, pk: int):
    op = get_object_or_404(Operation.objects.select_related("hypervisor", "requested_by"), pk=pk)
    return render(request, OPERATION, _operation_context(request, op))


@require_GET
@require_perm(Perm.VIEW_CLUSTER)
def operation_progress(request, pk: int):
    """The htmx poll: counts, bar and children of the operation."""
    op = get_object_or_404(Operation.objects.select_related("hypervisor", "requested_by"), pk=pk)
    return render(request, f"{OPERATION}#operation-progress", _operation_context(request, op))


def _control(request, pk: int, service):
    op = get_object_or_404(Operation.objects.select_related("hypervisor"), pk=pk)
    try:
        service(operation=op, actor=request.user, source_ip=request_ip(request))
    except PermissionDenied:
        return forbidden(request, Perm.RUN_MIGRATIONS)
    except MigrationError as err:
        op.refresh_from_db()
        # htmx swaps no 4xx answer: the panel with the reason comes back as a 200 to an htmx request
        status = 200 if request.htmx else 409
        return render(request, OPERATION, _operation_context(request, op, control_error=str(err)), status=status)
    return redirect(op.get_absolute_url())


@require_POST
@require_perm(Perm.RUN_MIGRATIONS)
def operation_pause(request, pk: int):
    return _control(request, pk, operation_controls.operation_pause)


@require_POST
@require_perm(Perm.RUN_MIGRATIONS)
def operation_resume(request, pk: int):
    return _control(request, pk, operation_controls.operation_resume)


@require_POST
@require_perm(Perm.RUN_MIGRATIONS)
def operation_cancel(request, pk: int):
    return _control(request, pk, operation_controls.operation_cancel)
