"""Forms of the hosts app: the guest table's filters and the onboarding of hypervisors and storage."""

import re

from django import forms

from hosts.drivers.uri import UriNotAllowed, parse_uri, valid_host
from hosts.models import Guest, Hypervisor, StorageServer
from hosts.selectors import GUEST_SORTS

SORT_CHOICES = [("", "Name")] + [(k, k) for k in GUEST_SORTS] + [(f"-{k}", f"-{k}") for k in GUEST_SORTS]


class GuestFilterForm(forms.Form):
    """GET parameters of the guest table. Invalid values are dropped (the table still renders)."""

    q = forms.CharField(required=False, max_length=128, label="Name contains")
    host = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Hypervisor")
    state = forms.ChoiceField(required=False, label="State", choices=[("", "Any state"), *Guest.Power.choices])
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES, widget=forms.HiddenInput)

    def __init__(self, *args, hypervisors: list[tuple[int, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["host"].choices = [("", "Any hypervisor"), *hypervisors]

    def filters(self) -> dict:
        """Selector keyword arguments from the valid fields only."""
        data = {}
        if self.is_bound:
            self.is_valid()
        clean = getattr(self, "cleaned_data", {})
        if clean.get("q"):
            data["q"] = clean["q"]
        if clean.get("host"):
            data["hypervisor_id"] = clean["host"]
        if clean.get("state"):
            data["power"] = clean["state"]
        data["sort"] = clean.get("sort") or "name"
        return data


class HypervisorForm(forms.ModelForm):
    """Add or edit a hypervisor. The facts (CPUs, memory, guests) come from inventory, not from here."""

    maintenance = forms.BooleanField(
        required=False,
        label="In maintenance",
        help_text="Keeps the host out of guest migration targets; inventory still reads it.",
    )

    class Meta:
        model = Hypervisor
        fields = ["name", "uri", "migration_address", "migration_tls", "ha_host_id", "storage_servers"]
        labels = {"uri": "libvirt URI", "storage_servers": "Storage servers mounted"}
        widgets = {
            "name": forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
            "uri": forms.TextInput(attrs={"placeholder": "qemu+tcp://10.0.0.2/system", "spellcheck": "false"}),
            "migration_address": forms.TextInput(attrs={"placeholder": "10.0.1.2", "spellcheck": "false"}),
            "storage_servers": forms.CheckboxSelectMultiple,
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["maintenance"].initial = self.instance.state == Hypervisor.State.MAINTENANCE
        else:
            del self.fields["maintenance"]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise forms.ValidationError("Use letters, digits, dots, dashes and underscores (e.g. hv-a).")
        return name

    def clean_uri(self) -> str:
        uri = self.cleaned_data["uri"].strip()
        try:
            parse_uri(uri)  # the driver's own check: what it refuses to open, the form refuses to save
        except UriNotAllowed as err:
            raise forms.ValidationError(
                f"{err.message}. Examples: qemu+tcp://10.0.0.2/system, qemu+tls://hv-a/system, "
                "qemu+ssh://root@hv-a/system."
            ) from err
        return uri

    def clean_migration_address(self) -> str:
        addr = self.cleaned_data["migration_address"].strip()
        if addr and not valid_host(addr.strip("[]")):
            raise forms.ValidationError("A host name or IP address, without scheme or port (e.g. 10.0.1.2).")
        return addr


class ConnectionTestForm(forms.Form):
    """Just the URI, for the "Test connection" button (works before the hypervisor is saved)."""

    uri = forms.CharField(max_length=255, label="libvirt URI")

    clean_uri = HypervisorForm.clean_uri


class StorageServerForm(forms.ModelForm):
    """Add or edit a storage server; `mount_path` is how inventory tells which disks live on it."""

    class Meta:
        model = StorageServer
        fields = ["name", "address", "protocol", "export_path", "mount_path"]
        widgets = {
            "name": forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
            "address": forms.TextInput(attrs={"placeholder": "10.0.0.10", "spellcheck": "false"}),
            "export_path": forms.TextInput(attrs={"placeholder": "/srv/images", "spellcheck": "false"}),
            "mount_path": forms.TextInput(attrs={"spellcheck": "false"}),
        }

    def clean_name(self) -> str:
        return HypervisorForm.clean_name(self)

    def clean_address(self) -> str:
        addr = self.cleaned_data["address"].strip()
        if not re.fullmatch(r"[A-Za-z0-9.:\[\]-]+", addr):
            raise forms.ValidationError("A host name or IP address (e.g. nfs1.example.org or 10.0.0.10).")
        return addr

    def _absolute(self, field: str) -> str:
        path = self.cleaned_data[field].strip()
        if not path.startswith("/") or ".." in path.split("/"):
            raise forms.ValidationError("An absolute path such as /srv/images.")
        return path.rstrip("/") or "/"

    def clean_export_path(self) -> str:
        return self._absolute("export_path")

    def clean_mount_path(self) -> str:
        return self._absolute("mount_path")


class GuestHaForm(forms.Form):
    """The guest page's redundancy panel (and the API's body): restart on failure, and its priority."""

    restart = forms.BooleanField(required=False, label="Restart on a healthy host when its host fails")
    priority = forms.IntegerField(
        required=False, initial=0, min_value=-1000, max_value=1000, label="Priority (higher restarts first)"
    )

    def clean_priority(self) -> int:
        return self.cleaned_data.get("priority") or 0
