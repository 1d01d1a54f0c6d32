"""Live topology and load updates: the only place that names their groups and sends to them.

What is sent is HTML: the same partials the topology page renders (hosts/topology.html#graph,
#host-card, #summary, hosts/guest_list.html#guest-row and hosts/components/guest_move.html#badge),
marked hx-swap-oob so the htmx ws extension swaps each element by its DOM id. Call these after
commit (transaction.on_commit).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.template.loader import render_to_string

from hosts import load_selectors, selectors
from kvmcluster import layer

log = logging.getLogger(__name__)

TOPOLOGY_GROUP = "cluster.topology"
TOPOLOGY_UPDATE = "topology.update"  # consumer handler: topology_update
LOAD_ROUND = "load.round"  # consumer handler: load_round (hosts.consumers, the load sockets)
LOAD_TIMELINE = "load.timeline"  # consumer handler: load_timeline (the guest page's load socket)
GUEST_MOVE_PLACES = ("row", "chip")  # where a migrating guest shows its move: guest-<pk>-move-<place>


def render_topology_push(*, hypervisor_ids: Iterable[int] | None = None, guest_ids: Iterable[int] | None = None) -> str:
    """The HTML pushed to browsers: the whole picture, or only the named host cards and guest rows.

    Both variants carry the cluster summary (its totals change with any host).
    """
    ctx = {"oob": True}
    if hypervisor_ids is None and guest_ids is None:
        ctx["topology"] = selectors.topology()
        return render_to_string("hosts/topology.html#summary", ctx) + render_to_string("hosts/topology.html#graph", ctx)

    guests = selectors.guests_by_ids(guest_ids) if guest_ids else []
    host_ids = set(hypervisor_ids or ()) | {g.hypervisor_id for g in guests}
    topology = selectors.topology(hypervisor_ids=sorted(host_ids))
    ctx["topology"] = topology
    # Rows first: htmx parses a message inside a <template>, whose first tag sets the parsing mode. After
    # a <ul> a <tr> is dropped (its cells become loose text), so the browser never swapped the rows when
    # they followed the summary; led by a <tr>, the <ul> and <li> that follow are kept (checked in Chromium).
    parts = [render_to_string("hosts/guest_list.html#guest-row", {**ctx, "guest": g}) for g in guests]
    parts.append(render_to_string("hosts/topology.html#summary", ctx))
    parts += [render_to_string("hosts/topology.html#host-card", {**ctx, "card": card}) for card in topology.cards]
    return "".join(parts)


def _send(html: str) -> None:
    try:
        layer.group_send(TOPOLOGY_GROUP, {"type": TOPOLOGY_UPDATE, "html": html})
    except Exception:  # a broken channel layer must not fail the refresh that called us
        log.exception("could not push the topology update")


def topology_changed(*, hypervisor_ids: Iterable[int] | None = None, guest_ids: Iterable[int] | None = None) -> None:
    """Push the topology to every open page: everything (no arguments) or just these hosts/guests."""
    _send(render_topology_push(hypervisor_ids=hypervisor_ids, guest_ids=guest_ids))


def hypervisors_changed(ids: Iterable[int]) -> None:
    topology_changed(hypervisor_ids=list(ids))


def guests_changed(ids: Iterable[int]) -> None:
    topology_changed(guest_ids=list(ids))


def render_guest_move(
    guest_id: int,
    *,
    guest_name: str,
    percent: int | None,
    target_name: str,
    job_url: str,
    oob: bool = True,
    sampled_at_ms: int | None = None,
) -> str:
    """The move indicator of one guest for every place it appears (row and chip), as pushed."""
    ctx = {
        "guest_id": guest_id,
        "guest_name": guest_name,
        "percent": percent,
        "target_name": target_name,
        "job_url": job_url,
        "oob": oob,
        "sampled_at_ms": sampled_at_ms,
    }
    return "".join(
        render_to_string("hosts/components/guest_move.html#badge", {**ctx, "place": place}).strip()
        for place in GUEST_MOVE_PLACES
    )


def guest_move_progress(
    guest_id: int,
    *,
    guest_name: str,
    percent: int | None,
    target_name: str,
    job_url: str,
    sampled_at_ms: int | None = None,
) -> None:
    """One progress sample of a guest's move, into its row and chip. `percent` None: no figure yet;
    `sampled_at_ms`: when libvirt gave it (carried as data-sampled-at, as on the job page's card).

    Only the two small indicators travel, not the row: samples come several times a second. Best
    effort like every send here: it never raises into the guest migration that reports progress.
    """
    try:
        html = render_guest_move(
            guest_id,
            guest_name=guest_name,
            percent=percent,
            target_name=target_name,
            job_url=job_url,
            sampled_at_ms=sampled_at_ms,
        )
    except Exception:
        log.exception("could not render the move of guest %s", guest_id)
        return
    _send(html)


# ------------------------------------------------------------------------------ measured load


def load_group(hypervisor_id: int) -> str:
    """Viewers of this host's page, and of the pages of the guests running on it (docs/load.md, "Live")."""
    return f"load.hypervisor.{hypervisor_id}"


def load_recorded(hosts: dict[int, dict], guests: dict[int, dict[int, dict]]) -> None:
    """One load round's new points: one message per host, to its group (call after commit).

    `hosts`: hypervisor id -> its point {"at": unix s, "cpu_pct", "memory_used_mib", "memory_total_mib"};
    `guests`: hypervisor id -> {guest id -> point {"at", "cpu_pct_of_vcpus", "cpu_cores", "memory_mib"}}.
    Data only, a few hundred bytes per host: the consumers render the caption for their own page, so a
    round with nobody watching renders nothing.
    """
    for pk, point in hosts.items():
        message = {"type": LOAD_ROUND, "hypervisor_id": pk, "host": point,
                   "guests": {str(g): p for g, p in guests.get(pk, {}).items()}}  # fmt: skip
        try:
            layer.group_send(load_group(pk), message)
        except Exception:  # the rows are written; a lost push is one point the open charts miss
            log.exception("could not push the load round of hypervisor %s", pk)


def render_load_push(message: dict, *, guest_id: int | None = None) -> str:
    """The caption of a host's panel (or of `guest_id`'s panel) for one pushed round, hx-swap-oob: the
    partial the page renders (hosts/components/load_panel.html#latest), carrying the chart's new point."""
    if guest_id is None:
        latest = load_selectors.host_latest(message["hypervisor_id"], message["host"])
    else:
        latest = load_selectors.guest_latest(guest_id, message["guests"][str(guest_id)])
    return render_to_string("hosts/components/load_panel.html#latest", {"latest": latest, "oob": True})


def guest_load_group(guest_id: int) -> str:
    """Viewers of this guest's page, for what concerns the guest alone (its moves on the chart)."""
    return f"load.guest.{guest_id}"


def guest_timeline_changed(guest_id: int, html: str) -> None:
    """Send ready HTML (hx-swap-oob) to the guest page's load socket: migrations_app pushes the list of the
    guest's moves here when one ends, and the chart redraws its markers from it."""
    try:
        layer.group_send(guest_load_group(guest_id), {"type": LOAD_TIMELINE, "html": html})
    except Exception:  # best effort, like every push here
        log.exception("could not push the timeline of guest %s", guest_id)
