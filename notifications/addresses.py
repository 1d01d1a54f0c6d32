"""Which addresses a webhook may be sent to.

By default only global (public) unicast addresses: loopback, private (RFC 1918, fc00::/7), link-local
(which includes cloud metadata services), shared (100.64/10), unspecified, reserved, documentation and
multicast addresses are refused, so a webhook cannot be aimed at an internal service by accident.
KVMCLUSTER_WEBHOOK_ALLOW lists networks that are allowed anyway (e.g. "10.20.0.0/16,127.0.0.1/32").

The check runs when a target is saved (the typed URL, its name resolved) and again at every delivery
on the addresses the name resolves to then; the request is sent to the address that was checked, so a
DNS answer that changes between the check and the connection cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """The URL cannot be used; the message says why, for a form error or the delivery log."""


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets = []
    for text in getattr(settings, "KVMCLUSTER_WEBHOOK_ALLOW", []):
        try:
            nets.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            continue  # a typo in the setting allows nothing rather than failing every delivery
    return nets


def refusal(address: IPAddress) -> str:
    """Why `address` may not be called ("" when it may)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    if any(address.version == net.version and address in net for net in allowed_networks()):
        return ""
    if address.is_global and not address.is_multicast:
        return ""
    kind = next(
        (
            word
            for word, flag in (
                ("loopback", address.is_loopback),
                ("link-local", address.is_link_local),
                ("multicast", address.is_multicast),
                ("unspecified", address.is_unspecified),
                ("private", address.is_private),
            )
            if flag
        ),
        "non-public",
    )
    return f"{address} is a {kind} address; add its network to KVMCLUSTER_WEBHOOK_ALLOW to allow it"


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal is itself). Raises AddressRefused if none."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        raise AddressRefused(f"cannot resolve {host}: {err}") from err
    found = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise AddressRefused(f"{host} resolves to no address")
    return found


def split_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a webhook URL; AddressRefused for anything but plain http(s) URLs."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise AddressRefused(f"not a valid URL: {err}") from err
    if parts.scheme not in ("http", "https"):
        raise AddressRefused("the URL must start with http:// or https://")
    if not parts.hostname:
        raise AddressRefused("the URL has no host")
    if parts.username or parts.password:
        raise AddressRefused("put credentials in the shared secret, not in the URL")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def checked_address(url: str) -> IPAddress:
    """Resolve the URL's host and return the address to connect to; every address it resolves to must
    be allowed (a name with one internal address among public ones is refused)."""
    _, host, port = split_url(url)
    addresses = resolve(host, port)
    for address in addresses:
        reason = refusal(address)
        if reason:
            raise AddressRefused(f"{host}: {reason}" if host != str(address) else reason)
    return addresses[0]
