"""Helpers shared by the hosts views: the guest table (used on three pages) and safe redirects."""

from django.http import HttpRequest
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

from hosts import selectors
from hosts.forms import GuestFilterForm

TABLE_TARGET = "guest-table"


def guest_table_context(request: HttpRequest, *, hypervisors=None, fixed_host: int | None = None) -> dict:
    """Filter form + one page of guests from the GET parameters (bad values are ignored, not a 500)."""
    if hypervisors is None:
        hypervisors = selectors.hypervisor_choices() if fixed_host is None else []
    form = GuestFilterForm(request.GET or None, hypervisors=hypervisors)
    filters = form.filters()
    if fixed_host is not None:
        filters["hypervisor_id"] = fixed_host
    page = selectors.guest_page(page=request.GET.get("page", 1), **filters)
    return {"filter_form": form, "page_obj": page, "sort": filters["sort"], "fixed_host": fixed_host}


def wants_table_only(request: HttpRequest) -> bool:
    """An htmx request aimed at the guest table (filter, sort, page, live re-fetch)."""
    return bool(request.htmx and request.htmx.target == TABLE_TARGET)


def render_table(request: HttpRequest, ctx: dict):
    return render(request, "hosts/guest_list.html#guest-table", ctx)


def safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default
