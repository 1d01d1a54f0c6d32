"""Behind a TLS-ending reverse proxy the socket arrives as plain ws: the proxy's word on https counts
only when the proxy is a configured trusted one."""

import pytest

from kvmcluster.origins import origin_allowed


def scope(peer: str, proto: str | None, origin: str = "https://testserver") -> dict:
    headers = [(b"host", b"testserver"), (b"origin", origin.encode())]
    if proto:
        headers.append((b"x-forwarded-proto", proto.encode()))
    return {"type": "websocket", "scheme": "ws", "client": (peer, 50000), "headers": headers}


@pytest.fixture
def proxy_at_loopback(settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    settings.CSRF_TRUSTED_ORIGINS = []


def test_an_https_page_behind_the_trusted_proxy_may_open_its_socket(proxy_at_loopback):
    assert origin_allowed(scope("127.0.0.1", "https"))


def test_the_same_header_from_anyone_else_is_ignored(proxy_at_loopback):
    assert not origin_allowed(scope("127.0.0.2", "https"))


def test_a_plain_http_page_cannot_claim_the_https_origin(proxy_at_loopback):
    assert not origin_allowed(scope("127.0.0.1", "http"))
    assert not origin_allowed(scope("127.0.0.1", None))


def test_without_trusted_proxies_the_header_counts_for_nothing(settings):
    settings.TRUSTED_PROXIES = []
    assert not origin_allowed(scope("127.0.0.1", "https"))
    assert origin_allowed(scope("127.0.0.1", None, origin="http://testserver"))
