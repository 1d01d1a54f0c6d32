"""Audit review (Perm.VIEW_AUDIT): filterable keyset-paged list, detail, streaming CSV/JSON export."""

import json

from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts import selectors
from accounts.chain import link_status
from accounts.forms import AuditFilterForm
from accounts.models import AuditEvent
from accounts.permissions import require_perm
from accounts.roles import Perm


def _cursor(value: str | None) -> int | None:
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if 0 < number < 2**62 else None


def _filter_form(request) -> AuditFilterForm:
    params = {k: v for k, v in request.GET.items() if k in AuditFilterForm.base_fields}
    return AuditFilterForm(params or None)


@require_perm(Perm.VIEW_AUDIT)
@require_http_methods(["GET"])
def audit_list(request):
    form = _filter_form(request)
    filters = form.filters() if form.is_bound else {}
    page = selectors.audit_page(
        filters, before=_cursor(request.GET.get("before")), after=_cursor(request.GET.get("after"))
    )
    query = request.GET.copy()
    for key in ("before", "after", "format"):
        query.pop(key, None)
    context = {"form": form, "page": page, "query": query.urlencode(), "filtered": bool(filters)}
    if not request.htmx:
        context["actors"] = selectors.known_actors()
    template = "accounts/audit_list.html#results" if request.htmx and not request.htmx.boosted else None
    return render(request, template or "accounts/audit_list.html", context)


@require_perm(Perm.VIEW_AUDIT)
@require_http_methods(["GET"])
def audit_detail(request, pk: int):
    event = get_object_or_404(AuditEvent, pk=pk)
    context = {
        "event": event,
        # The badge checks the chain link (previous row's hash + this row's HMAC), not only the row.
        "chain": link_status(event),
        "params_json": json.dumps(event.params, indent=2, sort_keys=True, ensure_ascii=False),
        "previous": AuditEvent.objects.filter(id__lt=pk).order_by("-id").values_list("id", flat=True).first(),
        "next": AuditEvent.objects.filter(id__gt=pk).order_by("id").values_list("id", flat=True).first(),
    }
    return render(request, "accounts/audit_detail.html", context)


@require_perm(Perm.VIEW_AUDIT)
@require_http_methods(["GET"])
def audit_export(request):
    fmt = request.GET.get("format", "csv")
    if fmt not in ("csv", "json"):
        return HttpResponseBadRequest("Unknown export format: use format=csv or format=json.")
    form = _filter_form(request)
    filters = form.filters() if form.is_bound else {}
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    if fmt == "csv":
        response = StreamingHttpResponse(selectors.export_csv(filters), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(selectors.export_json(filters), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{fmt}"'
    return response
