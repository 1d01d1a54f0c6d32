"""The target form: which fields an admin fills in, checked before anything is saved."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from notifications.addresses import AddressRefused, checked_address
from notifications.events import EVENTS
from notifications.models import Target


class TargetForm(forms.ModelForm):
    secret = forms.CharField(
        required=False,
        max_length=128,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        label="Shared secret",
        help_text="Signs every webhook body (HMAC-SHA256). Leave blank to keep the current one, or to have one "
        "generated for a new target (shown once).",
    )
    url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        label="Webhook URL",
        help_text="http(s) URL called with a POST for each event. Loopback and private addresses are refused "
        "unless KVMCLUSTER_WEBHOOK_ALLOW allows them.",
    )
    events = forms.MultipleChoiceField(
        choices=list(EVENTS.items()), widget=forms.CheckboxSelectMultiple, label="Events"
    )

    class Meta:
        model = Target
        fields = ["name", "kind", "url", "recipients", "events", "enabled"]
        labels = {"recipients": "Email recipients", "enabled": "Enabled"}
        widgets = {"kind": forms.RadioSelect, "recipients": forms.Textarea(attrs={"rows": 3})}

    def clean_recipients(self) -> str:
        text = self.cleaned_data.get("recipients", "")
        addresses = [r.strip() for r in text.replace("\n", ",").split(",") if r.strip()]
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError as err:
                raise ValidationError(f"{address!r} is not an email address") from err
        return "\n".join(addresses)

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind == Target.Kind.WEBHOOK:
            url = data.get("url")
            if not url:
                if "url" not in self.errors:
                    self.add_error("url", "A webhook needs a URL.")
            else:
                try:
                    checked_address(url)
                except AddressRefused as err:
                    self.add_error("url", str(err))
        elif kind == Target.Kind.EMAIL and not data.get("recipients") and "recipients" not in self.errors:
            self.add_error("recipients", "Email needs at least one recipient.")
        return data

    def target_fields(self) -> dict:
        data = self.cleaned_data
        webhook = data["kind"] == Target.Kind.WEBHOOK
        return {
            "name": data["name"],
            "kind": data["kind"],
            "url": data["url"] if webhook else "",
            "recipients": "" if webhook else data["recipients"],
            "events": [e for e in EVENTS if e in data["events"]],
            "enabled": data["enabled"],
        }
