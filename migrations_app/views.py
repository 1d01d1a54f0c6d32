"""Thin views: one call into services/selectors each, turning results and refusals into HTML.

(docs/architecture.md, "Thin interfaces".)
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.audit import request_ip
from accounts.permissions import forbidden, require_perm, user_can
from accounts.roles import Perm
from hosts.models import Guest, Hypervisor
from migrations_app import selectors, services
from migrations_app import state_machine as sm
from migrations_app.choices import AUTO_TARGET, State
from migrations_app.filters import MigrationFilterForm, TargetsQueryForm
from migrations_app.forms import BandwidthForm, MigrationRequestForm, option_rows
from migrations_app.orchestrator import facts
from migrations_app.services import auto_target, drain, predictions

DETAIL = "migrations_app/migration_detail.html"


@require_GET
@require_perm(Perm.VIEW_CLUSTER)
def migration_list(request):
    form = MigrationFilterForm(request.GET)
    filters = form.filters()
    page = Paginator(selectors.job_history(**filters), 50).get_page(
        form.cleaned_data.get("page") if form.is_valid() else 1
    )
    ctx = {"page": page, "jobs": page.object_list, "states": State.choices, "filter_error": form.problems(), **filters}
    return render(request, "migrations_app/migration_list.html", ctx, status=200 if form.is_valid() else 400)


def _detail_context(request, job, **extra) -> dict:
    allow_postcopy = bool(job.options.get("allow_postcopy"))
    controls = sm.controls(job.state, job.kind, allow_postcopy, job.postcopy_started)
    later = sm.controls(State.RUNNING, job.kind, allow_postcopy)
    return {
        "job": job,
        "can_run": user_can(request.user, Perm.RUN_MIGRATIONS),
        "controls": controls,
        # Shown greyed out while the job waits; the page's script enables them when it starts running.
        "later_controls": later - controls if job.state in (State.PENDING, State.QUEUED) else frozenset(),
        "chart_samples": selectors.samples_for_chart(job),
        "chart_id": f"migration-{job.pk}-samples",
        "option_rows": option_rows(job.kind, job.options),
        "timeline": job.events.all()[:500],
        **extra,
    }


@require_GET
@require_perm(Perm.VIEW_CLUSTER)
def migration_detail(request, pk: int):
    job = get_object_or_404(selectors.jobs(), pk=pk)
    return render(request, DETAIL, _detail_context(request, job))


@require_GET
@require_perm(Perm.VIEW_CLUSTER)
def migration_progress(request, pk: int):
    """The htmx poll fallback: the same partial the worker pushes over the socket."""
    job = get_object_or_404(selectors.jobs(), pk=pk)
    return render(request, f"{DETAIL}#progress", {"job": job, "oob": False})


def _controls(request, job, status: int = 200, **extra):
    job = selectors.jobs().get(pk=job.pk)
    if not request.htmx:
        return redirect(job.get_absolute_url())
    if job.is_terminal or not user_can(request.user, Perm.RUN_MIGRATIONS):
        return render(
            request,
            f"{DETAIL}#controls-closed",
            {"job": job, "control_message": extra.get("control_message", "")},
            status=status,
        )
    return render(request, f"{DETAIL}#controls", _detail_context(request, job, **extra), status=status)


def _act(request, pk: int, action, ok: str, **kwargs):
    job = get_object_or_404(selectors.jobs(), pk=pk)
    try:
        action(job=job, actor=request.user, source_ip=request_ip(request), **kwargs)
    except PermissionDenied:
        return forbidden(request, Perm.RUN_MIGRATIONS)
    except services.MigrationError as err:
        if not request.htmx:
            return HttpResponse(str(err), status=409, content_type="text/plain; charset=utf-8")
        return _controls(request, job, control_error=str(err))
    return _controls(request, job, control_message=ok)


@require_POST
@require_perm(Perm.RUN_MIGRATIONS)
def migration_cancel(request, pk: int):
    return _act(request, pk, services.migration_cancel, "Cancel requested: libvirt is aborting the move.")


@require_POST
@require_perm(Perm.RUN_MIGRATIONS)
def migration_bandwidth(request, pk: int):
    form = BandwidthForm(request.POST)
    if not form.is_valid():
        job = get_object_or_404(selectors.jobs(), pk=pk)
        msg = "; ".join(e for errs in form.errors.values() for e in errs)
        if not request.htmx:
            return HttpResponse(msg, status=400, content_type="text/plain; charset=utf-8")
        return _controls(request, job, control_error=msg)
    mibps = form.cleaned_data["mibps"]
    return _act(request, pk, services.migration_set_bandwidth, f"Bandwidth set to {mibps} MiB/s.", mibps=mibps)


@require_POST
@require_perm(Perm.RUN_MIGRATIONS)
def migration_postcopy(request, pk: int):
    return _act(request, pk, services.migration_switch_postcopy, "Switched to post-copy.")


@require_http_methods(["GET", "POST"])
@require_perm(Perm.RUN_MIGRATIONS)
def migration_create(request, pk: int):
    guest = get_object_or_404(Guest.objects.select_related("hypervisor"), pk=pk)
    form = MigrationRequestForm(request.POST or None, guest=guest)
    query = TargetsQueryForm(request.POST if request.method == "POST" else request.GET)
    shown = None  # the readiness of every target: asked of libvirt only when "Auto" or the page needs it
    error = ""
    if request.method == "POST" and form.is_valid():
        target, reason = form.cleaned_data["target"], ""
        if target == AUTO_TARGET:
            shown = _targets(guest, query)
            target, reason = shown[2].target, shown[2].stored
        try:
            if target is None:
                raise services.MigrationError(f"No hypervisor can take {guest.name}: {shown[2].reason}")
            job = services.migration_request(
                guest=guest,
                target=target,
                kind=form.cleaned_data["kind"],
                options=form.options(),
                actor=request.user,
                source_ip=request_ip(request),
                target_reason=reason,
            )
        except PermissionDenied:
            return forbidden(request, Perm.RUN_MIGRATIONS)
        except services.PreflightFailed as err:
            error = str(err)
        except services.MigrationError as err:
            error = str(err)
        else:
            if request.htmx:
                return HttpResponseClientRedirect(job.get_absolute_url())
            return redirect(job.get_absolute_url())
    kind, targets, auto = shown or _targets(guest, query)
    ctx = {
        "guest": guest,
        "form": form,
        "error": error,
        "kind": kind,
        "targets": targets,
        "auto": auto,
        "selected": _selected(query),
    }
    status = 400 if request.method == "POST" and not request.htmx else 200
    template = "migrations_app/migration_form.html"
    if request.htmx and request.method == "POST":
        template += "#form"
    return render(request, template, ctx, status=status)


def _targets(guest: Guest, query: TargetsQueryForm) -> tuple[str, list[dict], auto_target.AutoChoice]:
    """The mode, every target's readiness with its predicted move, and the "Auto" choice among them."""
    clean = query.cleaned_data if query.is_valid() else {}
    kind = clean.get("kind") or "live"
    options = query.readiness_options(default_tls=guest.hypervisor.migration_tls)
    targets = facts.readiness(guest, kind, options)
    _with_predictions(guest, targets, kind, query.prediction_options())
    return kind, targets, auto_target.auto_choice(guest, kind, options, targets)


def _with_predictions(guest: Guest, targets: list[dict], kind: str, options: dict) -> None:
    """Each open target's predicted move ("≈ 6 s, 2 passes, converges" / "will not converge: ...")."""
    for row in targets:
        if row["verdict"] != "blocked":
            row["prediction"] = predictions.predict_move(guest, guest.hypervisor, row["target"], kind, options)


def _selected(query: TargetsQueryForm) -> str:
    """The target ticked: the one asked for (a "Move back…" link, a redisplayed form), else "Auto"."""
    return (query.cleaned_data.get("target") if query.is_valid() else "") or AUTO_TARGET


@require_GET
@require_perm(Perm.RUN_MIGRATIONS)
def migration_targets(request, pk: int):
    """Per-target readiness for the chosen mode and the options that change the checks (htmx swap)."""
    guest = get_object_or_404(Guest.objects.select_related("hypervisor"), pk=pk)
    query = TargetsQueryForm(request.GET)
    if not query.is_valid():
        return HttpResponse(f"bad query: {query.problems()}", status=400, content_type="text/plain")
    # The options that change a pre-flight check, so the readiness shown follows them as they are ticked.
    kind, targets, auto = _targets(guest, query)
    return render(
        request,
        "migrations_app/migration_form.html#targets",
        {
            "guest": guest,
            "form": MigrationRequestForm(guest=guest),
            "targets": targets,
            "auto": auto,
            "selected": _selected(query),
            "kind": kind,
        },
    )


@require_GET
@require_perm(Perm.VIEW_CLUSTER)
def hypervisor_drain_plan(request, pk: int):
    """The drain plan ("can I take this host down?"), computed from facts (nothing moves). Viewers read it;
    the htmx load on the hypervisor page swaps in the panel, a plain visit gets the page around it."""
    hypervisor = get_object_or_404(Hypervisor, pk=pk)
    plan = drain.drain_plan(hypervisor)
    drain.drain_plan_shown(hypervisor=hypervisor, plan=plan, actor=request.user, source_ip=request_ip(request))
    template = "migrations_app/drain_plan.html" + ("#drain-plan" if request.htmx else "")
    return render(request, template, {"hypervisor": hypervisor, "plan": plan})
