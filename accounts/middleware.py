"""HTTP middleware of accounts: a Content-Security-Policy on every response, login redirects for htmx.

CSP (settings.CONTENT_SECURITY_POLICY overrides the default): scripts only from our own origin (htmx and
app.js are vendored files, no inline script, no eval); websockets to the same origin; inline styles are
allowed because the topology's bars and colours are style attributes.
"""

from django.conf import settings
from django.shortcuts import resolve_url
from django_htmx.http import HttpResponseClientRedirect

DEFAULT_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = getattr(settings, "CONTENT_SECURITY_POLICY", DEFAULT_POLICY)

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response


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
