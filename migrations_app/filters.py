"""Forms for the GET parameters of the guest migration pages: no query string reaches a query unchecked.

Django's CharField refuses NUL characters (PostgreSQL refuses them in a string literal: a raw
parameter there was a 500) and the choice fields refuse anything not offered.
"""

from __future__ import annotations

from django import forms

from migrations_app.choices import Kind, State

READINESS_OPTIONS = ("compressed", "tls", "shutdown_first", "start_on_target")
# The options a move's prediction follows (planning.prediction): the cap, the pause, the ways to end it.
PREDICTION_OPTIONS = ("bandwidth_mibps", "max_downtime_ms", "auto_converge", "allow_postcopy")


class QueryForm(forms.Form):
    def problems(self) -> str:
        """The refusals in one line, for a 400 or the page's notice."""
        return "; ".join(f"{name}: {' '.join(errs)}" for name, errs in self.errors.items())


class MigrationFilterForm(QueryForm):
    """The history's filters. Invalid input is a 400 that names the field; the list is then unfiltered."""

    guest = forms.CharField(required=False, max_length=128, strip=True)
    state = forms.ChoiceField(required=False, choices=[("", "any"), *State.choices])
    page = forms.IntegerField(required=False, min_value=1)

    def filters(self) -> dict:
        data = self.cleaned_data if self.is_valid() else {}
        return {k: data[k] for k in ("guest", "state") if data.get(k)}


class TargetsQueryForm(QueryForm):
    """The Migrate form's readiness query: the mode, a preselected target and the options that change checks."""

    kind = forms.ChoiceField(required=False, choices=Kind.choices)
    # a hypervisor id, or "auto" (the form's default option)
    target = forms.RegexField(required=False, regex=r"^(auto|[1-9][0-9]{0,17})$", max_length=18)
    compressed = forms.BooleanField(required=False)
    tls = forms.BooleanField(required=False)
    shutdown_first = forms.BooleanField(required=False)
    start_on_target = forms.BooleanField(required=False)
    bandwidth_mibps = forms.IntegerField(required=False, min_value=0, max_value=100_000)
    max_downtime_ms = forms.IntegerField(required=False, min_value=0, max_value=60_000)
    auto_converge = forms.BooleanField(required=False)
    allow_postcopy = forms.BooleanField(required=False)

    def prediction_options(self) -> dict:
        data = self.cleaned_data if self.is_valid() else {}
        return {key: data.get(key) or 0 for key in PREDICTION_OPTIONS}

    def readiness_options(self, default_tls: bool = False) -> dict:
        """The ticked options; on the page's first render (no mode sent yet) TLS is the form's default
        (on where the source host is set up for it), not an unticked box."""
        data = self.cleaned_data if self.is_valid() else {}
        options = {key: bool(data.get(key)) for key in READINESS_OPTIONS}
        if "kind" not in self.data:
            options["tls"] = default_tls
        return options
