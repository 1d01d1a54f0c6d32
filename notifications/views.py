"""Notification target pages (Perm.MANAGE_NOTIFICATIONS): list, add, detail with the delivery log, edit, delete."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from accounts.audit import request_ip
from accounts.permissions import require_perm
from accounts.roles import Perm
from notifications import selectors, services
from notifications.forms import TargetForm
from notifications.models import Target


def _show_generated_secret(request, generated: str) -> None:
    """A secret we generated is shown once, in the flash message after saving; it is never shown again."""
    if generated:
        messages.info(request, f"Its shared secret (shown only now, copy it to the receiver): {generated}")


@require_perm(Perm.MANAGE_NOTIFICATIONS)
@require_http_methods(["GET"])
def target_list(request):
    return render(request, "notifications/target_list.html", {"targets": selectors.targets_with_last_delivery()})


@require_perm(Perm.MANAGE_NOTIFICATIONS)
@require_http_methods(["GET", "POST"])
def target_create(request):
    form = TargetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        target, generated = services.target_create(
            fields=form.target_fields(),
            secret=form.cleaned_data["secret"],
            actor=request.user,
            source_ip=request_ip(request),
        )
        messages.success(request, f"Added {target.name}.")
        _show_generated_secret(request, generated)
        return redirect(target.get_absolute_url())
    status = 400 if request.method == "POST" else 200
    return render(request, "notifications/target_form.html", {"form": form}, status=status)


@require_perm(Perm.MANAGE_NOTIFICATIONS)
@require_http_methods(["GET"])
def target_detail(request, pk: int):
    target = get_object_or_404(Target, pk=pk)
    context = {"target": target, "deliveries": selectors.delivery_log(target)}
    return render(request, "notifications/target_detail.html", context)


@require_perm(Perm.MANAGE_NOTIFICATIONS)
@require_http_methods(["GET", "POST"])
def target_edit(request, pk: int):
    target = get_object_or_404(Target, pk=pk)
    form = TargetForm(request.POST or None, instance=target)
    if request.method == "POST" and form.is_valid():
        target, generated = services.target_update(
            target=target,
            fields=form.target_fields(),
            secret=form.cleaned_data["secret"],
            actor=request.user,
            source_ip=request_ip(request),
        )
        messages.success(request, f"Saved {target.name}.")
        _show_generated_secret(request, generated)
        return redirect(target.get_absolute_url())
    status = 400 if request.method == "POST" else 200
    return render(request, "notifications/target_form.html", {"form": form, "target": target}, status=status)


@require_perm(Perm.MANAGE_NOTIFICATIONS)
@require_http_methods(["GET", "POST"])
def target_delete(request, pk: int):
    target = get_object_or_404(Target, pk=pk)
    if request.method == "POST":
        services.target_delete(target=target, actor=request.user, source_ip=request_ip(request))
        messages.success(request, f"Removed {target.name}.")
        return redirect("notification-target-list")
    return render(request, "notifications/target_confirm_delete.html", {"target": target})
