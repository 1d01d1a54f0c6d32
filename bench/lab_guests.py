"""Throwaway lab guests and plain-libvirt moves for the benchmarks that need more guests than the lab has.

A throwaway guest is the lab's own definition (lab.guests.domain_xml) under another name and MAC, with the
fill/dirty workload asked for; `disk=False` leaves out its NFS disk (under TCG a slow move of a busy guest
that writes to its disk can corrupt it, docs/lab.md). Each is undefined everywhere afterwards, whatever
happened. Moves by hand go through `virsh migrate --live --p2p`, as an operator without the dashboard
would do them (encrypted, as the dashboard encrypts between hosts set up for it).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from lab import config, guests, security


@contextmanager
def throwaway_guests(
    names: list[str], host: str, *, fill: int, dirty: int = 0, disk: bool = True, mac_base: int = 20
) -> Iterator[list[str]]:
    """Define and start `names` on `host` (in parallel), wait for each one's first heartbeat; gone after."""
    p = config.paths()
    uri = config.host(host).uri
    try:
        for i, name in enumerate(names):
            spec = config.GuestSpec(name=name, host=host, fill=fill, dirty=dirty, mac_suffix=mac_base + i)
            xml = guests.domain_xml(p, spec)
            if disk:
                guests.ensure_disk(p, name)
            else:
                xml = re.sub(r"<disk\b.*?</disk>", "", xml, flags=re.S)
            guests.define(p, uri, xml, name)
        marks = {name: guests.console_size(p, name) for name in names}
        for name in names:  # one at a time: both daemons number their taps in one namespace (docs/lab.md)
            guests.start_guest(uri, name)
        for name in names:
            guests.wait_heartbeat(name, after_offset=marks[name], timeout=90 + fill / 2, p=p)
        yield names
    finally:
        for name in names:
            guests.undefine_everywhere(name)
            p.disk(name).unlink(missing_ok=True)
            p.domain_xml(name).unlink(missing_ok=True)


def virsh_move(name: str, src: str, dst: str, *, bandwidth: int = 0, timeout: float = 600) -> float:
    """`virsh migrate --live --p2p` of `name` from host `src` to `dst`; returns its wall time in seconds."""
    cmd = ["virsh", "-q", "-c", config.host(src).uri, "migrate", "--live", "--p2p", "--persistent"]
    cmd += ["--undefinesource", "--tls"]
    if bandwidth:
        cmd += ["--bandwidth", str(bandwidth)]
    env = {**os.environ, **security.client_env(config.paths())}  # the lab's libvirtd want its SASL login
    t0 = time.monotonic()
    subprocess.run([*cmd, name, config.host(dst).uri], check=True, timeout=timeout, env=env, capture_output=True)
    return time.monotonic() - t0


def where(name: str) -> str | None:
    """The host libvirt runs `name` on (the lab's own placement helpers know only the lab's guests)."""
    for h in config.HOSTS:
        if guests.domains(h.uri).get(name) == "running":
            return h.name
    return None


def move_all(names: list[str], dst: str, parallel: int = 2) -> None:
    """Put every guest of `names` on `dst` (untimed set-up between measured runs), `parallel` at a time."""

    def one(name: str) -> None:
        src = where(name)
        if src and src != dst:
            virsh_move(name, src, dst)

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(one, names))
