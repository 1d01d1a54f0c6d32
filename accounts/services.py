"""User and role changes: one function per admin action, each atomic with its audit row.

Invariant: a user holds at most one role group (viewer/operator/admin); every change here writes its
audit row in the same transaction and, after commit, closes the user's websockets.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.audit import audit_record
from accounts.events import user_sessions_changed
from accounts.permissions import user_role
from accounts.roles import ROLES, sync_role_groups

User = get_user_model()


def _role_group(role: str) -> Group:
    if role not in ROLES:
        raise ValidationError(f"Unknown role “{role}”; choose one of {', '.join(ROLES)}.")
    group = Group.objects.filter(name=role).first()
    if group is None:  # e.g. a test database flushed after the data migration ran
        sync_role_groups()
        group = Group.objects.get(name=role)
    return group


def _set_role_groups(user, role: str) -> None:
    group = _role_group(role)
    user.groups.remove(*Group.objects.filter(name__in=list(ROLES)).exclude(pk=group.pk))
    user.groups.add(group)
    user._kvm_role = None


def user_create(*, username: str, password: str, role: str, actor, source_ip: str = "", email: str = ""):
    """Create an active user holding `role` (password already validated by the form)."""
    with transaction.atomic():
        user = User.objects.create_user(username=username, password=password, email=email)
        _set_role_groups(user, role)
        audit_record(
            action="user.created",
            actor=actor,
            source_ip=source_ip,
            params={"username": username, "role": role, "user_id": user.pk},
            message=f"created {username} as {role}",
        )
    return user


def _refuse_if_last_admin(user) -> None:
    """There is always one active admin left to manage users (superusers count as admins).

    Called with the target row locked; the admin rows are locked too so two admins demoting each other
    at once cannot both pass.
    """
    if not user.is_active or user_role(user) != "admin":
        return
    others = (
        User.objects.select_for_update(of=("self",))
        .filter(is_active=True)
        .exclude(pk=user.pk)
        .filter(Q(is_superuser=True) | Q(groups__name="admin"))
    )
    if not list(others.values_list("pk", flat=True)[:1]):
        raise ValidationError(f"{user.get_username()} is the last active admin; make another user admin first.")


def user_set_role(*, user, role: str, actor, source_ip: str = "") -> bool:
    """Give `user` exactly `role`. Returns False (and writes nothing) if they already had it."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        before = user_role(user)
        if before == role and not user.is_superuser:
            return False
        if user.is_superuser:
            raise ValidationError("A superuser is an admin whatever their groups; change it with manage.py.")
        if role != "admin":
            _refuse_if_last_admin(user)
        _set_role_groups(user, role)
        audit_record(
            action="user.role_changed",
            actor=actor,
            source_ip=source_ip,
            params={"username": user.get_username(), "user_id": user.pk, "from": before, "to": role},
            message=f"{user.get_username()}: {before or 'no role'} -> {role}",
        )
        user_sessions_changed(user.pk)
    return True


def user_set_active(*, user, active: bool, actor, source_ip: str = "") -> bool:
    """Deactivate (signs them out everywhere) or reactivate `user`. Returns False if nothing changed."""
    if not active and actor is not None and getattr(actor, "pk", None) == user.pk:
        raise ValidationError("You cannot deactivate your own account.")
    with transaction.atomic():
        if not active:
            _refuse_if_last_admin(User.objects.select_for_update().get(pk=user.pk))
        changed = User.objects.filter(pk=user.pk, is_active=not active).update(is_active=active)
        if not changed:
            return False
        audit_record(
            action="user.reactivated" if active else "user.deactivated",
            actor=actor,
            source_ip=source_ip,
            params={"username": user.get_username(), "user_id": user.pk},
        )
        if not active:
            _delete_sessions(user.pk)
            user_sessions_changed(user.pk)
    user.is_active = active
    return True


def _delete_sessions(user_id: int) -> None:
    """Drop the user's sessions so a deactivated account is signed out at once, not at next request."""
    stale = [
        s.pk
        for s in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if str(s.get_decoded().get("_auth_user_id")) == str(user_id)
    ]
    Session.objects.filter(pk__in=stale).delete()
