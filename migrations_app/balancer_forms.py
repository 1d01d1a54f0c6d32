"""Forms of the balancing pages: the panel's query and the admin's policy form (rules by guest name)."""

from __future__ import annotations

from typing import Any

from django import forms

from migrations_app.models import BalancerPolicy
from migrations_app.services.balancer_policy import SCALARS, UnknownGuests, guests_by_name


class ProposalsQueryForm(forms.Form):
    """?hypervisor=<id>: only the proposals moving a guest off or onto that host."""

    hypervisor = forms.IntegerField(required=False, min_value=1, max_value=2**31 - 1)


GROUPS_HELP = "One group per line, guest names separated by commas (two or more per group)."


class BalancerPolicyForm(forms.ModelForm):
    never_move = forms.CharField(
        label="Never move automatically",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="Guest names, one per line or separated by commas. People may still move them.",
    )
    keep_apart = forms.CharField(
        label="Keep apart (never on one host)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text=GROUPS_HELP,
    )
    keep_together = forms.CharField(
        label="Keep together (the balancer moves none of them)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text=GROUPS_HELP,
    )

    class Meta:
        model = BalancerPolicy
        fields = list(SCALARS)
        widgets = {"mode": forms.RadioSelect, "host_load_from": forms.RadioSelect}

    @staticmethod
    def initial_from(policy: dict[str, Any]) -> dict[str, Any]:
        return {
            **{f: policy[f] for f in SCALARS},
            "never_move": "\n".join(policy["never_move"]),
            "keep_apart": "\n".join(", ".join(g) for g in policy["keep_apart"]),
            "keep_together": "\n".join(", ".join(g) for g in policy["keep_together"]),
        }

    def _names(self, field: str, groups: list[list[str]]) -> None:
        try:
            guests_by_name(n for g in groups for n in g)
        except UnknownGuests as err:
            self.add_error(field, str(err))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        never = [n.strip() for line in data.get("never_move", "").splitlines() for n in line.split(",") if n.strip()]
        data["never_move"] = sorted(set(never))
        self._names("never_move", [data["never_move"]])
        for field in ("keep_apart", "keep_together"):
            groups = []
            for number, line in enumerate(data.get(field, "").splitlines(), start=1):
                names = sorted({n.strip() for n in line.split(",") if n.strip()})
                if len(names) == 1:
                    self.add_error(field, f"line {number}: a group needs two or more guests")
                elif names:
                    groups.append(names)
            data[field] = groups
            self._names(field, groups)
        return data

    def changes(self) -> dict[str, Any]:
        return {f: self.cleaned_data[f] for f in (*SCALARS, "never_move", "keep_apart", "keep_together")}
