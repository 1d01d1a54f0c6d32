"""Template helpers of the inventory pages (`{% load hosts_ui %}`): links, storage colours, and the
topology's guest chips, storage cells and capacity bars.

The markup of chips, cells and bars is in templates/hosts/components/; the functions here only decide
what goes in them (plain strings and flags) and keep each rendering (see "guest chips" below).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from django import template
from django.template.loader import render_to_string
from django.urls import reverse

from kvmcluster.templatetags.kvm_ui import clamp_pct, level, size_from_mib

register = template.Library()


def _storage_css(pk: int) -> str:
    return f"--st-color: var(--st-{int(pk) % 8})"


@register.filter
def storage_style(pk) -> str:
    """Inline style giving a storage server its colour (by pk, so a card pushed alone keeps it)."""
    try:
        return _storage_css(pk)
    except (TypeError, ValueError):
        return ""


@functools.cache
def _power_labels() -> dict[str, str]:
    from hosts.models import Guest

    return {value: str(label) for value, label in Guest.Power.choices}


@functools.cache
def _url_prefix(list_name: str) -> str:
    """The list URL of a model; its detail pages are `<prefix><pk>/` (reverse() per row is slow)."""
    return reverse(list_name)


@register.filter
def guest_href(pk) -> str:
    return f"{_url_prefix('guest-list')}{pk}/"


@register.filter
def hypervisor_href(pk) -> str:
    return f"{_url_prefix('hypervisor-list')}{pk}/"


@register.filter
def storage_href(pk) -> str:
    return f"{_url_prefix('storage-list')}{pk}/"


# ------------------------------------------------------------------------------------ guest chips
# Chips, bars and storage cells are pure functions of a few values, and pages re-render (polls, pushes,
# reloads) far more often than those values change, so each rendering is kept, keyed by its values:
# a template render costs ~35 us and a topology page has up to 800 chips, 200 bars and 100 table rows.
# A host card whose chips did not change costs one dictionary lookup.


@functools.lru_cache(maxsize=12_000)
def _render(template_name: str, context: tuple[tuple[str, Any], ...]) -> str:
    """A pure partial's HTML (render_to_string's SafeString), kept per distinct context."""
    return render_to_string(template_name, dict(context))


class ChipView(NamedTuple):
    """What one guest's chip shows: plain values, the template escapes them."""

    id: str
    classes: str
    href: str
    title: str
    name: str
    running: bool
    power: str
    badge: tuple[int, str] | None  # (pk, name) while the guest is migrating
    recovering: int | None  # pk while an HA recovery restarts it (shown instead of the move indicator)
    dots: tuple[str, ...]  # storage colours
    local: bool
    cache: bool


def chip(g, guest_base: str) -> ChipView:
    """A hosts.selectors.Chip as its chip shows it."""
    power = g.power
    label = _power_labels().get(power, power)
    storage = g.storage
    title = [f"{g.name}: {label}, {g.vcpus} vCPU, {size_from_mib(g.memory_mib)}"]
    if storage.servers:
        title.append("on " + " ".join(s.name for s in storage.servers))
    if storage.unshared:
        title.append("NOT on shared storage: " + " ".join(storage.unshared))
    if storage.uncached:
        title.append("cache " + " ".join(storage.uncached))
    if g.recovering:
        title.append("recovering: its host failed, being restarted on a healthy host")
    return ChipView(
        id=f"guest-{g.pk}-chip",
        classes=f"chip chip--{power}"
        + (" chip--recovering" if g.recovering else " chip--migrating" if g.migrating else ""),
        href=f"{guest_base}{g.pk}/",
        title=", ".join(title),
        name=g.name,
        running=power == "running",
        power=label.lower(),
        # A migrating chip shows the move indicator hosts.events pushes progress into (guest-<pk>-move-chip).
        badge=(g.pk, g.name) if g.migrating and not g.recovering else None,
        recovering=g.pk if g.recovering else None,
        dots=tuple(_storage_css(s.pk) for s in storage.servers),
        local=bool(storage.unshared),
        cache=bool(storage.uncached),
    )


@functools.lru_cache(maxsize=2_000)
def _chips_html(chips: tuple[ChipView, ...]) -> str:
    html = tuple(_render("hosts/components/guest_chip.html", tuple(c._asdict().items())) for c in chips)
    return _render("hosts/components/guest_chips.html", (("chips", html),))


@register.simple_tag
def guest_chips(card) -> str:
    """The `<li>` chips of one host card (hosts.selectors.HostCard): templates' output, already escaped."""
    guest_base = _url_prefix("guest-list")
    return _chips_html(tuple(chip(g, guest_base) for g in card.chips))


# --------------------------------------------------------------------------- storage cell, bars


@register.simple_tag
def storage_cell(guest) -> str:
    """Where a guest's disks live, with the not-shared / cache flags (table rows, guest page)."""
    storage = guest.storage
    context = (
        ("mounts", tuple((_storage_css(s.pk), s.name) for s in storage.servers)),
        ("unshared", ", ".join(storage.unshared)),
        ("uncached", ", ".join(storage.uncached)),
    )
    return _render("hosts/components/storage_cell.html", context)


class Bar(NamedTuple):
    id: str  # DOM id of the visible text; its label is `<id>-label`
    label: str
    width: int  # 0..100
    level: str  # ok / warn / high
    text: str
    spoken: str  # aria-valuetext


def _bar(dom_id: str, label: str, pct: int, text: str, spoken: str) -> Bar:
    return Bar(dom_id, label, clamp_pct(pct), level(pct), text, spoken)


@register.simple_tag
def capacity_bars(h) -> str:
    """CPU and memory bars of a host card: visible text + role=meter with a spoken value.

    Ids: hypervisor-<pk>-cpu and hypervisor-<pk>-memory (the texts), each with a `-label`; beside them
    hypervisor-<pk>-cpu-measured, the CPU libvirt measured in the last round (allocation is not load).
    """
    measured = getattr(h, "measured_cpu_pct", None)
    cpu, mem = h.cpu_used_percent, h.memory_used_percent
    used, total = size_from_mib(h.memory_used_mib), size_from_mib(h.memory_total_mib)
    bars = (
        _bar(
            f"hypervisor-{h.pk}-cpu",
            "CPU",
            cpu,
            f"{h.vcpus_allocated}/{h.cpus} vCPU · {cpu}%",
            f"{h.vcpus_allocated} of {h.cpus} CPUs allocated to running guests, {cpu} percent",
        ),
        _bar(
            f"hypervisor-{h.pk}-memory",
            "Memory",
            mem,
            f"{used}/{total} · {mem}%",
            f"{used} of {total} in use, {mem} percent",
        ),
    )
    measured_view = (f"hypervisor-{h.pk}-cpu-measured", round(measured)) if measured is not None else None
    return _render("hosts/components/capacity_bars.html", (("bars", bars), ("measured", measured_view)))
