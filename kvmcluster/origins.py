"""Websocket origin check: scheme, host and port must match the page's own origin (or a trusted one).

Channels' AllowedHostsOriginValidator compares only the host, so a page on http://host:8081 (another
service on the same machine) could open our sockets with the user's cookie. Here the Origin header must
equal the origin the socket was opened on (ws -> http, wss -> https, same Host header, same port, default
ports made explicit) or be listed in CSRF_TRUSTED_ORIGINS; the Host must pass ALLOWED_HOSTS too. Behind
a TLS-ending reverse proxy listed in KVMCLUSTER_TRUSTED_PROXIES, the proxy's X-Forwarded-Proto says
whether the browser's side was https (docs/deploy.md).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

_DEFAULT_PORT = {"http": 80, "https": 443}


def _origin_tuple(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = (parts.scheme or "").lower()
    if scheme not in _DEFAULT_PORT or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORT[scheme]


def _socket_is_secure(scope, headers: dict) -> bool:
    """wss, or plain ws from a configured reverse proxy that says the browser's side was https (the
    proxy ends TLS and talks plain ws to us; only a trusted proxy's X-Forwarded-Proto counts)."""
    if scope.get("scheme") == "wss":
        return True
    from accounts.clientip import from_trusted_proxy

    peer = (scope.get("client") or ("", 0))[0]
    proto = headers.get(b"x-forwarded-proto", b"").decode("latin1").strip().lower()
    return proto == "https" and from_trusted_proxy(peer)


def origin_allowed(scope) -> bool:
    headers = dict(scope.get("headers") or [])
    origin = headers.get(b"origin", b"").decode("latin1")
    host = headers.get(b"host", b"").decode("latin1")
    seen = _origin_tuple(origin)
    if seen is None or not host:
        return False
    domain, _ = split_domain_port(host)
    allowed_hosts = settings.ALLOWED_HOSTS or (["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    if not domain or not validate_host(domain, allowed_hosts):
        return False
    scheme = "https" if _socket_is_secure(scope, headers) else "http"
    if seen == _origin_tuple(f"{scheme}://{host}"):
        return True
    return seen in {_origin_tuple(o) for o in getattr(settings, "CSRF_TRUSTED_ORIGINS", [])}


class SameOriginValidator:
    """ASGI middleware: refuses (HTTP 403 at the handshake) a websocket from any other origin."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)
