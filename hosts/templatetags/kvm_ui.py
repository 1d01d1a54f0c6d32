"""Small template helpers shared by every page (loaded as `{% load kvm_ui %}`)."""

import functools
from html import escape  # the stdlib one: django's is lazy-wrapped, 3x slower per call

from django import template
from django.template.exceptions import TemplateDoesNotExist
from django.template.loader import get_template, render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import mark_safe

register = template.Library()


@register.simple_tag(takes_context=True)
def optional_include(context, template_name: str) -> str:
    """Render `template_name` with the current context, or nothing if no app provides it yet.

    Lets base.html and the guest page leave a slot for another app's component (the active guest
    migrations panel, the Migrate button) without a hard dependency on that app's templates.
    """
    try:
        tpl = get_template(template_name)
    except TemplateDoesNotExist:
        return ""
    return tpl.render(context.flatten(), context.get("request"))


@register.filter
def mib(value) -> str:
    """Human memory size from MiB: 512 -> '512 MiB', 2048 -> '2 GiB', 1536 -> '1.5 GiB'."""
    try:
        value = int(value)
    except (TypeError, ValueError):
        return "—"
    if value < 1024:
        return f"{value} MiB"
    gib = value / 1024
    return f"{gib:.0f} GiB" if gib == int(gib) or gib >= 100 else f"{gib:.1f} GiB"


@register.filter
def clamp_pct(value) -> int:
    """A percentage clamped to 0..100 for a bar's width (the text still shows the real figure)."""
    try:
        return max(0, min(100, int(value)))
    except (TypeError, ValueError):
        return 0


@register.filter
def level(value) -> str:
    """'ok' / 'warn' / 'high' for a usage percentage, so bars change colour and text, not only colour."""
    try:
        value = int(value)
    except (TypeError, ValueError):
        return "ok"
    return "high" if value >= 90 else "warn" if value >= 70 else "ok"


@register.simple_tag
def optional_url(name: str, *args) -> str:
    """`reverse(name)` or '' while the app owning that URL has not shipped it yet."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


@register.filter
def storage_style(pk) -> str:
    """Inline style giving a storage server its colour (by pk, so a card pushed alone keeps it)."""
    try:
        return f"--st-color: var(--st-{int(pk) % 8})"
    except (TypeError, ValueError):
        return ""


# --- hot paths of the topology picture and the guest table, rendered in Python -------------------
# A page shows up to 100 hosts x CHIPS_PER_HOST chips; as template markup each chip cost ~0.5 ms
# (variable lookups and number localisation), so the chip and storage-cell HTML is built here.


def _storage_css(pk: int) -> str:
    return f"--st-color: var(--st-{int(pk) % 8})"


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


def _move_badge(g) -> str:
    """A migrating chip's move indicator: the partial hosts.events pushes progress into (id guest-<pk>-move-chip)."""
    ctx = {"guest_id": g.pk, "guest_name": g.name, "place": "chip"}
    return render_to_string("hosts/components/guest_move.html#badge", ctx).strip()


def _chip(g, guest_base: str) -> str:
    power = g.power
    label = _power_labels().get(power, power)
    name = escape(g.name)
    storage = g.storage
    title = [f"{g.name}: {label}, {g.vcpus} vCPU, {mib(g.memory_mib)}"]
    if storage.servers:
        title.append("on " + " ".join(s.name for s in storage.servers))
    if storage.unshared:
        title.append("NOT on shared storage: " + " ".join(storage.unshared))
    if storage.uncached:
        title.append("cache " + " ".join(storage.uncached))
    extra = (
        '<span class="visually-hidden"> running</span>'
        if power == "running"
        else f' <span class="chip__power">{escape(label.lower())}</span>'
    )
    if g.migrating:  # few at a time (per-host limits), so the shared template costs nothing here
        extra += " " + _move_badge(g)
    extra += "".join(
        f'<span class="st-dot" style="{_storage_css(s.pk)}" aria-hidden="true"></span>' for s in storage.servers
    )
    if storage.unshared:
        extra += ' <span class="flag flag--bad">local</span>'
    if storage.uncached:
        extra += ' <span class="flag">cache</span>'
    classes = f"chip chip--{escape(power)}" + (" chip--migrating" if g.migrating else "")
    title_text = escape(", ".join(title))
    return (
        f'<li><a id="guest-{g.pk}-chip" class="{classes}" href="{guest_base}{g.pk}/" title="{title_text}">'
        f'<span class="chip__state" aria-hidden="true"></span><span class="chip__name">{name}</span>{extra}</a></li>'
    )


@register.simple_tag
def guest_chips(card) -> str:
    """The `<li>` chips of one host card (hosts.selectors.HostCard)."""
    guest_base = _url_prefix("guest-list")
    return mark_safe("".join(_chip(g, guest_base) for g in card.chips))  # noqa: S308 (every value escaped above)


@register.simple_tag
def storage_cell(guest) -> str:
    """Where a guest's disks live, with the not-shared / cache flags (table rows, guest page)."""
    storage = guest.storage
    parts = [f'<span class="mount" style="{_storage_css(s.pk)}">{escape(s.name)}</span>' for s in storage.servers]
    if not parts and not storage.unshared:
        parts.append('<span class="muted">no disks</span>')
    if storage.unshared:
        parts.append(
            '<span class="flag flag--bad" title="Disks not on shared storage block a live guest migration">'
            f"not shared: {escape(', '.join(storage.unshared))}</span>"
        )
    if storage.uncached:
        parts.append(
            '<span class="flag" title="Live guest migration on shared storage wants cache=none">'
            f"cache: {escape(', '.join(storage.uncached))}</span>"
        )
    return mark_safe(" ".join(parts))  # noqa: S308 (every value escaped above)


def _bar(dom_id: str, label: str, pct: int, text: str, spoken: str) -> str:
    width = clamp_pct(pct)
    return (
        f'<div class="bar"><span class="bar__label" id="{dom_id}-label">{label}</span>'
        f'<div class="bar__track" role="meter" aria-labelledby="{dom_id}-label" aria-valuemin="0" '
        f'aria-valuemax="100" aria-valuenow="{width}" aria-valuetext="{escape(spoken)}">'
        f'<div class="bar__fill bar__fill--{level(pct)}" style="width:{width}%"></div></div>'
        f'<span class="bar__text" id="{dom_id}">{escape(text)}</span></div>'
    )


@register.simple_tag
def capacity_bars(h) -> str:
    """CPU and memory bars of a host card: visible text + role=meter with a spoken value.

    Ids: hypervisor-<pk>-cpu and hypervisor-<pk>-memory (the texts), each with a `-label`.
    """
    cpu, mem = h.cpu_used_percent, h.memory_used_percent
    used, total = mib(h.memory_used_mib), mib(h.memory_total_mib)
    return mark_safe(  # noqa: S308 (every value escaped above)
        '<div class="bars">'
        + _bar(
            f"hypervisor-{h.pk}-cpu",
            "CPU",
            cpu,
            f"{h.vcpus_allocated}/{h.cpus} vCPU · {cpu}%",
            f"{h.vcpus_allocated} of {h.cpus} CPUs allocated to running guests, {cpu} percent",
        )
        + _bar(
            f"hypervisor-{h.pk}-memory",
            "Memory",
            mem,
            f"{used}/{total} · {mem}%",
            f"{used} of {total} in use, {mem} percent",
        )
        + "</div>"
    )
