"""Template helpers every app's pages use (`{% load kvm_ui %}`; registered in settings.TEMPLATES).

Sizes say their unit in the name: `size_from_mib` takes MiB (a guest's memory), migrations_ui's
`mib_from_bytes` takes bytes (data a move sent).
"""

from django import template
from django.template.exceptions import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import NoReverseMatch, reverse

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


@register.simple_tag
def optional_url(name: str, *args) -> str:
    """`reverse(name)` or '' while the app owning that URL has not shipped it yet."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


@register.filter
def size_from_mib(value) -> str:
    """Human size of a figure in MiB: 512 -> '512 MiB', 2048 -> '2 GiB', 1536 -> '1.5 GiB'."""
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
