"""Guests and hypervisors named on the command line: an id, or a name looked up through the API."""

from __future__ import annotations

from kvmctl.client import ApiError, Client


def guest_id(api: Client, ref: str) -> int:
    if ref.isdigit():
        return int(ref)
    matches = [g for g in api.all("guests/", q=ref) if g["name"] == ref]
    if len(matches) != 1:
        raise ApiError(404, {"title": "Not Found", "detail": f"no single guest named {ref!r}"})
    return matches[0]["id"]


def host_id(api: Client, ref: str) -> int:
    if ref.isdigit():
        return int(ref)
    matches = [h for h in api.all("hypervisors/") if h["name"] == ref]
    if not matches:
        raise ApiError(404, {"title": "Not Found", "detail": f"no hypervisor named {ref!r}"})
    return matches[0]["id"]
