"""The client's address, honouring X-Forwarded-For only from configured trusted proxies.

KVMCLUSTER_TRUSTED_PROXIES (settings.TRUSTED_PROXIES): addresses or networks of reverse proxies in front
of us. When REMOTE_ADDR is one of them, the client is the right-most X-Forwarded-For entry that is not
itself a trusted proxy (entries to its left are whatever the client sent). From anyone else the header
is ignored: it is client-controlled text.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings


def _networks():
    out = []
    for item in getattr(settings, "TRUSTED_PROXIES", []) or []:
        try:
            out.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            continue
    return out


def _parse(raw: str):
    try:
        return ipaddress.ip_address((raw or "").strip())
    except ValueError:
        return None


def from_trusted_proxy(address: str) -> bool:
    """Is `address` (the peer that connected to us) one of the configured reverse proxies?"""
    peer = _parse(address)
    return peer is not None and any(peer in net for net in _networks())


def client_ip(request) -> str:
    """Normalized client address; "" if absent or malformed."""
    meta = getattr(request, "META", {}) or {}
    remote = _parse(meta.get("REMOTE_ADDR", ""))
    if remote is None:
        return ""
    trusted = _networks()
    if not trusted or not any(remote in net for net in trusted):
        return str(remote)
    hops = [h.strip() for h in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            return str(remote)  # a garbled chain: trust only what we saw
        if not any(address in net for net in trusted):
            return str(address)
    return str(remote)
