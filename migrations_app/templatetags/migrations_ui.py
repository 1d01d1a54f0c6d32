from django import template

from migrations_app import display

register = template.Library()


@register.simple_tag
def active_migrations_list():
    from migrations_app.selectors import active_jobs

    return active_jobs()


@register.filter
def bytes_per_s(value) -> str:
    """1234567 -> '1.2 MiB/s'."""
    try:
        v = float(value or 0)
    except (TypeError, ValueError):
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if v < 1024 or unit == "GiB":
            return f"{v:.1f} {unit}/s" if unit != "B" else f"{int(v)} B/s"
        v /= 1024
    return f"{v:.1f} GiB/s"


@register.filter
def mib_from_bytes(value) -> str:
    """A byte count in MiB, one decimal: 1572864 -> '1.5 MiB' (kvm_ui's size_from_mib takes MiB)."""
    try:
        return f"{int(value or 0) / 1048576:.1f} MiB"
    except (TypeError, ValueError):
        return "–"


@register.filter
def check_icon(status: str) -> str:
    return {"pass": "✔", "warn": "⚠", "fail": "✖"}.get(status, "?")


# The progress card's and the banner's wording, decided in migrations_app.display (pure, unit-tested).
register.filter("move_percent", display.move_percent)
register.filter("phase_line", display.phase_line)
register.filter("eta_text", display.eta_text)
register.filter("stall_note", display.stall_note)


@register.simple_tag
def guest_moves_last_hour(guest_id, guest=None) -> dict:
    """The guest's moves that ended within its load chart's hour, as markers (display.move_mark).
    `guest_id` from a push, else the page's `guest`: {"guest_id": ..., "moves": [...]}."""
    from datetime import timedelta

    from django.utils import timezone

    from migrations_app.selectors import guest_moves_since

    pk = int(guest_id) if guest_id else getattr(guest, "pk", None)
    if pk is None:
        return {"guest_id": None, "moves": []}
    since = timezone.now() - timedelta(hours=1)
    return {"guest_id": pk, "moves": [display.move_mark(j) for j in guest_moves_since(pk, since)]}
