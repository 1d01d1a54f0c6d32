"""The Migrate form: target, mode and the options (docs/migrations.md). Validation only; services decide."""

from __future__ import annotations

from django import forms

from hosts.models import Guest, Hypervisor
from migrations_app.choices import AUTO_TARGET as AUTO
from migrations_app.choices import Kind, TimeoutAction

# Which options matter for which mode (the job page lists only those).
LIVE_OPTIONS = (
    "bandwidth_mibps",
    "max_downtime_ms",
    "auto_converge",
    "allow_postcopy",
    "compressed",
    "tls",
    "completion_timeout_s",
    "timeout_action",
    "persist_dest",
    "undefine_source",
)
OFFLINE_OPTIONS = ("shutdown_first", "shutdown_timeout_s", "start_on_target", "undefine_source")


class TargetField(forms.ModelChoiceField):
    """A hypervisor, or "auto": the view asks services.auto_target for the best open one."""

    def to_python(self, value):
        return AUTO if value == AUTO else super().to_python(value)

    def validate(self, value):
        if value != AUTO:
            super().validate(value)


class MigrationRequestForm(forms.Form):
    target = TargetField(
        queryset=Hypervisor.objects.none(), widget=forms.RadioSelect, empty_label=None, label="Target hypervisor"
    )
    kind = forms.ChoiceField(choices=Kind.choices, initial=Kind.LIVE, widget=forms.RadioSelect, label="Mode")
    bandwidth_mibps = forms.IntegerField(
        min_value=0,
        max_value=100_000,
        required=False,
        initial=0,
        label="Bandwidth cap (MiB/s)",
        help_text="0 = unlimited",
    )
    max_downtime_ms = forms.IntegerField(
        min_value=0,
        max_value=60_000,
        required=False,
        initial=0,
        label="Max downtime (ms)",
        help_text="0 = QEMU default (300 ms)",
    )
    auto_converge = forms.BooleanField(required=False, label="Auto-converge (throttle the guest's CPU if needed)")
    allow_postcopy = forms.BooleanField(
        required=False,
        label="Allow post-copy",
        help_text="Risky: if the move fails after the switch the guest can be lost.",
    )
    compressed = forms.BooleanField(required=False, label="Compress memory pages")
    tls = forms.BooleanField(
        required=False,
        label="Encrypted (TLS)",
        help_text="Guest memory crosses the link encrypted, between QEMUs that check each other's certificate.",
    )
    completion_timeout_s = forms.IntegerField(
        min_value=0, max_value=86_400, required=False, initial=0, label="Completion timeout (s)", help_text="0 = none"
    )
    timeout_action = forms.ChoiceField(
        choices=TimeoutAction.choices, initial=TimeoutAction.ABORT, label="When the timeout hits"
    )
    persist_dest = forms.BooleanField(required=False, initial=True, label="Keep the definition on the target")
    undefine_source = forms.BooleanField(required=False, initial=True, label="Remove the definition from the source")
    shutdown_first = forms.BooleanField(required=False, label="Offline: shut the guest down gracefully first")
    shutdown_timeout_s = forms.IntegerField(
        min_value=1, max_value=3600, required=False, initial=60, label="Shutdown timeout (s)"
    )
    start_on_target = forms.BooleanField(required=False, label="Offline: start the guest on the target afterwards")

    OPTION_FIELDS = LIVE_OPTIONS + ("shutdown_first", "shutdown_timeout_s", "start_on_target")

    def __init__(self, *args, guest: Guest, **kwargs):
        super().__init__(*args, **kwargs)
        self.guest = guest
        self.fields["target"].queryset = Hypervisor.objects.exclude(pk=guest.hypervisor_id)
        # On by default where the source is set up for it; a target that is not says so in its checks.
        self.fields["tls"].initial = guest.hypervisor.migration_tls

    def clean(self):
        data = super().clean()
        if data.get("timeout_action") == TimeoutAction.POSTCOPY and not data.get("allow_postcopy"):
            self.add_error("timeout_action", "Switching to post-copy on timeout needs “Allow post-copy”.")
        return data

    def options(self) -> dict:
        out = {}
        for name in self.OPTION_FIELDS:
            value = self.cleaned_data.get(name)
            if value is None:
                value = self.fields[name].initial or 0
            out[name] = value
        return out


# How a stored 0 reads to an operator.
_ZERO_MEANS = {
    "bandwidth_mibps": "unlimited",
    "max_downtime_ms": "QEMU default (300 ms)",
    "completion_timeout_s": "none",
}


def option_rows(kind: str, options: dict) -> list[tuple[str, str]]:
    """(label, value) of the options a job was requested with, worded as the form words them."""
    fields = MigrationRequestForm.base_fields
    names = list(LIVE_OPTIONS if kind == Kind.LIVE else OFFLINE_OPTIONS)
    if kind == Kind.LIVE and not options.get("completion_timeout_s"):
        names.remove("timeout_action")  # no timeout, no action
    if kind == Kind.OFFLINE and not options.get("shutdown_first"):
        names.remove("shutdown_timeout_s")
    rows = []
    for name in names:
        value = options.get(name)
        if value is None and isinstance(fields[name], forms.BooleanField):
            value = False  # a job from before the option existed (e.g. "tls") did not use it
        if isinstance(value, bool):
            text = "yes" if value else "no"
        elif name in _ZERO_MEANS and not value:
            text = _ZERO_MEANS[name]
        elif name == "timeout_action":
            text = str(dict(TimeoutAction.choices).get(value, value))
        else:
            text = str(value)
        rows.append((str(fields[name].label).removeprefix("Offline: "), text))
    return rows


class BandwidthForm(forms.Form):
    mibps = forms.IntegerField(min_value=1, max_value=100_000, label="Bandwidth (MiB/s)")


class MaintenanceForm(forms.Form):
    """The confirmation of a drain: stop after the first failed move, or go on with the others."""

    stop_on_first_failure = forms.BooleanField(required=False, label="Stop on first failure")
    force = forms.BooleanField(
        required=False, label="Move the movable guests even though some cannot move (the host stays occupied)"
    )
