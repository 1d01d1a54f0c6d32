"""Bridges for the lab's guests, and a private view of them per host.

Both libvirtd processes stay in the root network namespace (loopback must reach them), so QEMU's taps
plug into real bridges there; those bridges never get an address. What each host *shows* (libvirt's
interface list, /sys/class/net) comes from its own network namespace `kvmlab-<host>`: each host mounts a
sysfs taken from that namespace in its private mount namespace. A bridge can so exist on hv-a and be
missing on hv-b, which makes the "bridge missing on the target" pre-flight refusal real.
"""

from __future__ import annotations

from pathlib import Path

from .config import HOSTS, ROOT_BRIDGES
from .procs import run


def _link_exists(name: str, netns: str | None = None) -> bool:
    argv = ["ip", *(["-n", netns] if netns else []), "link", "show", "dev", name]
    return run(argv, check=False).returncode == 0


def _add_bridge(name: str, netns: str | None = None) -> None:
    ns = ["-n", netns] if netns else []
    run(["ip", *ns, "link", "add", "name", name, "type", "bridge"])
    # No address at all outside the lab's own namespaces: not even an IPv6 link-local one.
    run(["ip", *ns, "link", "set", "dev", name, "addrgenmode", "none"], check=False)
    run(["ip", *ns, "link", "set", "dev", name, "up"])


def netns_exists(name: str) -> bool:
    return Path(f"/run/netns/{name}").exists()


def up(state: dict) -> None:
    """Create what is missing and record it, so `down` deletes only what the lab created."""
    net = state.setdefault("network", {"bridges": [], "netns": []})
    for br in ROOT_BRIDGES:
        if not _link_exists(br):
            _add_bridge(br)
            if br not in net["bridges"]:
                net["bridges"].append(br)
    for h in HOSTS:
        if not netns_exists(h.netns):
            run(["ip", "netns", "add", h.netns])
            if h.netns not in net["netns"]:
                net["netns"].append(h.netns)
        for br in h.bridges:
            if not _link_exists(br, h.netns):
                _add_bridge(br, h.netns)


def down(state: dict) -> None:
    net = state.get("network", {})
    for ns in net.get("netns", []):
        if netns_exists(ns):
            run(["ip", "netns", "delete", ns], check=False)
    for br in net.get("bridges", []):
        if _link_exists(br):
            run(["ip", "link", "delete", "dev", br, "type", "bridge"], check=False)
    state["network"] = {"bridges": [], "netns": []}


def bridges_in_view(netns: str) -> list[str]:
    """Bridges a host shows (what its private sysfs lists)."""
    out = run(["ip", "-n", netns, "-o", "link", "show", "type", "bridge"], check=False).stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line)
