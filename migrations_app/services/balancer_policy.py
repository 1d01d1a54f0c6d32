"""The balancing policy as a whole (the singleton row plus the per-guest rules): read it, change it.

Invariants kept here:
- only an admin (Perm.MANAGE_BALANCING) changes it, through `policy_update`, in one transaction with one
  `balancer.policy_changed` audit row holding the whole policy before and after (a change that changes
  nothing writes nothing);
- rules name guests by id in the database and by name to people; a name that matches no guest, or more
  than one, is refused by `guests_by_name` before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from accounts.audit import audit_record
from accounts.roles import Perm
from hosts.models import Guest
from migrations_app.models import BalancerPolicy, GuestAffinity, GuestNeverMove
from migrations_app.services.audit import require

SCALARS = (
    "mode",
    "cpu_high_pct",
    "host_load_from",
    "memory_high_pct",
    "hold_s",
    "margin_pct",
    "max_moves_per_round",
    "max_moves_per_hour",
    "cooldown_s",
)
RULES = ("never_move", "keep_apart", "keep_together")


class UnknownGuests(ValueError):
    """Names that match no guest or several: the message lists them."""


def guests_by_name(names: Iterable[str]) -> dict[str, int]:
    """Guest id of each name; raises UnknownGuests naming the unknown and ambiguous ones (one query)."""
    wanted = {n.strip() for n in names if n.strip()}
    found: dict[str, list[int]] = {}
    for pk, name in Guest.objects.filter(name__in=wanted).values_list("pk", "name"):
        found.setdefault(name, []).append(pk)
    unknown = sorted(wanted - set(found))
    ambiguous = sorted(n for n, pks in found.items() if len(pks) > 1)
    problems = []
    if unknown:
        problems.append(f"no guest is called {', '.join(unknown)}")
    if ambiguous:
        problems.append(f"several guests are called {', '.join(ambiguous)}")
    if problems:
        raise UnknownGuests("; ".join(problems))
    return {n: pks[0] for n, pks in found.items()}


def policy_as_dict(policy: BalancerPolicy | None = None) -> dict[str, Any]:
    """The policy with its rules by guest name (what the page, the API and the audit rows show)."""
    policy = policy or BalancerPolicy.get()
    out: dict[str, Any] = {f: getattr(policy, f) for f in SCALARS}
    out["never_move"] = sorted(GuestNeverMove.objects.values_list("guest__name", flat=True))
    groups: dict[int, tuple[str, list[str]]] = {}
    for pk, kind, name in GuestAffinity.objects.order_by("id").values_list("pk", "kind", "guests__name"):
        groups.setdefault(pk, (kind, []))[1].extend([name] if name else [])
    for kind, key in ((GuestAffinity.Kind.APART, "keep_apart"), (GuestAffinity.Kind.TOGETHER, "keep_together")):
        out[key] = [sorted(names) for k, names in groups.values() if k == kind]
    out["updated_at"] = policy.updated_at
    return out


def policy_update(*, changes: dict[str, Any], actor: Any, source_ip: str = "") -> dict[str, Any]:
    """Change the fields present in `changes` (scalars by value; never_move as guest names; keep_apart and
    keep_together as lists of guest-name groups, each replacing the whole list). Returns the new policy."""
    require(actor, Perm.MANAGE_BALANCING)
    names = [*changes.get("never_move", []), *(n for key in RULES[1:] for g in changes.get(key, []) for n in g)]
    ids = guests_by_name(names)
    try:
        return _update(changes, ids, actor, source_ip)
    except _NothingChanged:
        return policy_as_dict()  # rolled back: no new updated_by, no audit row


class _NothingChanged(Exception):
    pass


def _update(changes: dict[str, Any], ids: dict[str, int], actor: Any, source_ip: str) -> dict[str, Any]:
    with transaction.atomic():
        policy = BalancerPolicy.objects.select_for_update().filter(pk=BalancerPolicy.SINGLETON).first()
        policy = policy or BalancerPolicy.get()
        before = _comparable(policy_as_dict(policy))
        for field in SCALARS:
            if field in changes:
                setattr(policy, field, changes[field])
        policy.updated_by = actor
        policy.save()
        if "never_move" in changes:
            GuestNeverMove.objects.all().delete()
            GuestNeverMove.objects.bulk_create(GuestNeverMove(guest_id=ids[n]) for n in set(changes["never_move"]))
        for key, kind in (("keep_apart", GuestAffinity.Kind.APART), ("keep_together", GuestAffinity.Kind.TOGETHER)):
            if key in changes:
                GuestAffinity.objects.filter(kind=kind).delete()
                for group in changes[key]:
                    GuestAffinity.objects.create(kind=kind).guests.set([ids[n] for n in group])
        after = _comparable(policy_as_dict(policy))
        changed = [k for k in after if after[k] != before[k]]
        if not changed:
            raise _NothingChanged
        audit_record(
            action="balancer.policy_changed",
            actor=actor,
            source_ip=source_ip,
            params={"before": before, "after": after, "changed": changed},
            message="; ".join(f"{k}: {_short(before[k])} → {_short(after[k])}" for k in changed),
        )
    return policy_as_dict(policy)


def _comparable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != "updated_at"}


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "…"
