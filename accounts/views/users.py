"""User admin pages (Perm.MANAGE_USERS): list, create with a role, change role, deactivate/reactivate."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from accounts import services
from accounts.audit import request_ip
from accounts.forms import RoleForm, UserCreateForm
from accounts.permissions import require_perm, role_of_groups, user_role
from accounts.roles import Perm

User = get_user_model()


@require_perm(Perm.MANAGE_USERS)
@require_http_methods(["GET"])
def user_list(request):
    users = list(User.objects.order_by("username").prefetch_related("groups"))
    for user in users:
        user.role = "admin" if user.is_superuser else role_of_groups(g.name for g in user.groups.all())
    return render(request, "accounts/user_list.html", {"users": users})


@require_perm(Perm.MANAGE_USERS)
@require_http_methods(["GET", "POST"])
def user_create(request):
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.user_create(
            username=form.cleaned_data["username"],
            password=form.cleaned_data["password1"],
            email=form.cleaned_data.get("email") or "",
            role=form.cleaned_data["role"],
            actor=request.user,
            source_ip=request_ip(request),
        )
        messages.success(request, f"Created {user.get_username()} as {form.cleaned_data['role']}.")
        return redirect("user-list")
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/user_form.html", {"form": form}, status=status)


@require_perm(Perm.MANAGE_USERS)
@require_http_methods(["GET", "POST"])
def user_role_change(request, pk: int):
    target = get_object_or_404(User, pk=pk)
    form = RoleForm(request.POST or None, initial={"role": user_role(target) or "viewer"})
    if request.method == "POST" and form.is_valid():
        try:
            changed = services.user_set_role(
                user=target, role=form.cleaned_data["role"], actor=request.user, source_ip=request_ip(request)
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            if changed:
                messages.success(request, f"{target.get_username()} is now {form.cleaned_data['role']}.")
            else:
                messages.info(request, f"{target.get_username()} already had that role.")
            return redirect("user-list")
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/user_role.html", {"target": target, "form": form}, status=status)


def _set_active(request, pk: int, active: bool):
    target = get_object_or_404(User, pk=pk)
    error = ""
    if request.method == "POST":
        try:
            changed = services.user_set_active(
                user=target, active=active, actor=request.user, source_ip=request_ip(request)
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            verb = "reactivated" if active else "deactivated"
            if changed:
                messages.success(request, f"{target.get_username()} {verb}.")
            else:
                messages.info(request, f"{target.get_username()} was already {verb}.")
            return redirect("user-list")
    return render(
        request,
        "accounts/user_active_confirm.html",
        {"target": target, "active": active, "error": error},
        status=400 if error else 200,
    )


@require_perm(Perm.MANAGE_USERS)
@require_http_methods(["GET", "POST"])
def user_deactivate(request, pk: int):
    return _set_active(request, pk, active=False)


@require_perm(Perm.MANAGE_USERS)
@require_http_methods(["GET", "POST"])
def user_reactivate(request, pk: int):
    return _set_active(request, pk, active=True)
