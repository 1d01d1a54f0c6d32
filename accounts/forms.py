"""Forms of the accounts pages: sign-in with throttling, user creation, role change, audit filters."""

from __future__ import annotations

import datetime as dt
import re

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.exceptions import ValidationError

from accounts import throttle
from accounts.audit import audit_record
from accounts.clientip import client_ip
from accounts.denials import UNKNOWN_USER, keyed_hash
from accounts.models import AuditEvent
from accounts.roles import ROLE_LABELS, ROLE_ORDER

ROLE_CHOICES = [(role, ROLE_LABELS[role]) for role in reversed(ROLE_ORDER)]


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's sign-in form, refusing (before the password is checked) while the pair is locked."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed sign-ins for this account or from your address. Sign-in is locked until "
        "%(until)s UTC; try again then, or ask an admin.",
    }
    throttled = False

    def clean(self):
        username = self.cleaned_data.get("username")
        if username:
            ip = client_ip(self.request)
            # Counted before the password is looked at, atomically with the check (accounts.throttle).
            reservation = throttle.reserve(username, ip)
            who = {"username": username[:150]} if reservation_names_user(username) else unknown_params(username)
            for bucket, until in reservation.started:
                audit_record(
                    action="auth.login_throttled",
                    source_ip=ip,
                    params={**who, "bucket": bucket, "until": until},
                    outcome="refused",
                    message=f"too many sign-in attempts ({bucket}); sign-in refused until the lock ends",
                )
            if reservation.locked_until is not None:
                self.throttled = True
                audit_record(
                    action="auth.login_refused",
                    source_ip=ip,
                    params={**who, "bucket": reservation.refused_by},
                    outcome="refused",
                    message=f"sign-in refused: too many recent attempts ({reservation.refused_by})",
                )
                raise ValidationError(
                    self.error_messages["throttled"],
                    code="throttled",
                    params={"until": reservation.locked_until.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")},
                )
        return super().clean()


def reservation_names_user(username: str) -> bool:
    return get_user_model().objects.filter(username__iexact=username.strip()).exists()


def unknown_params(username: str) -> dict:
    """What the audit keeps of a name that is no user: not the text (it may be a password), a keyed hash."""
    return {"username": UNKNOWN_USER, "username_hmac": keyed_hash(username)}


class UserCreateForm(UserCreationForm):
    """Username, role and a password checked by the project's validators (settings)."""

    role = forms.ChoiceField(choices=ROLE_CHOICES, initial="viewer", widget=forms.RadioSelect)
    email = forms.EmailField(required=False, help_text="Optional.")

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES, widget=forms.RadioSelect)


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class AuditFilterForm(forms.Form):
    """The audit list's filters; every field optional, invalid ones are reported and ignored."""

    actor = forms.CharField(
        required=False,
        max_length=150,
        label="Actor (username)",
        widget=forms.TextInput(attrs={"list": "audit-actors", "autocomplete": "off"}),
    )
    action = forms.CharField(
        required=False,
        max_length=64,
        label="Action",
        help_text="Exact, or a prefix ending in a dot: “migration.”",
    )
    guest = forms.CharField(required=False, max_length=255, label="Guest (name or UUID)")
    hypervisor = forms.CharField(required=False, max_length=255)
    outcome = forms.ChoiceField(required=False, choices=[("", "any"), *AuditEvent.Outcome.choices])
    migration = forms.IntegerField(required=False, min_value=1, max_value=2**62, label="Guest migration #")
    since = forms.DateTimeField(
        required=False,
        label="From (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    until = forms.DateTimeField(
        required=False,
        label="To (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            raise ValidationError("“From” is after “To”.")
        return data

    def filters(self) -> dict:
        """The valid, non-empty filters as queryset lookups."""
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        if not data and self.is_bound:
            data = {k: v for k, v in getattr(self, "cleaned_data", {}).items() if k not in self.errors}
        lookups: dict = {}
        if data.get("actor"):
            lookups["actor_username"] = data["actor"].strip()
        action = (data.get("action") or "").strip()
        if action:
            lookups["action__startswith" if action.endswith(".") else "action"] = action
        guest = (data.get("guest") or "").strip()
        if guest:
            lookups["guest_uuid" if _UUID.match(guest) else "guest"] = guest.lower() if _UUID.match(guest) else guest
        if data.get("hypervisor"):
            lookups["hypervisor"] = data["hypervisor"].strip()
        if data.get("outcome"):
            lookups["outcome"] = data["outcome"]
        if data.get("migration"):
            lookups["migration_id"] = data["migration"]
        if data.get("since"):
            lookups["created_at__gte"] = data["since"]
        if data.get("until"):
            lookups["created_at__lte"] = data["until"]
        return lookups


class ApiTokenForm(forms.Form):
    """A new API token for yourself: how long it lives and a note to recognise it by."""

    days = forms.IntegerField(min_value=1, max_value=3650, initial=90, label="Valid for (days)")
    note = forms.CharField(required=False, max_length=200, help_text="Optional: what the token is for.")
