"""HTTP middleware of accounts: login redirects for htmx (the CSP middleware is kvmcluster.middleware)."""

from django.conf import settings
from django.shortcuts import resolve_url
from django_htmx.http import HttpResponseClientRedirect


class HtmxLoginRedirectMiddleware:
    """An htmx request whose session has ended gets `HX-Redirect` to the login page, not a 302.

    htmx follows a 302 silently and would swap the whole login page into a progress card or table cell;
    with HX-Redirect the browser goes to the login page (and comes back via ?next=). Sits before
    LoginRequiredMiddleware in MIDDLEWARE so it sees that middleware's redirect.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.headers.get("HX-Request") == "true" and response.status_code == 302 and _to_login(response):
            return HttpResponseClientRedirect(response["Location"])
        return response


def _to_login(response) -> bool:
    return response.get("Location", "").split("?", 1)[0] == resolve_url(settings.LOGIN_URL)
