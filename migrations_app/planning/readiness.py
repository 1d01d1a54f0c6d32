"""The cluster's host-pair readiness matrix: for every source × target, could guests move between them?

Pure: it takes each host's snapshot (orchestrator.preflight.HostSnap, gathered once per host), what the
source's guests need (their disks, bridges and largest memory, from the inventory) and libvirt's verdict
on the source's CPU at the target, and answers with the pre-flight's own checks, so a cell says exactly
what a move's checklist would. Nothing here touches libvirt or the database (docs/planning.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from migrations_app.orchestrator import preflight as pf

ANSWER = {pf.PASS: "yes", pf.WARN: "unsure", pf.FAIL: "no"}
# TLS is shown, not required: without it a move goes unencrypted (docs/migrations.md).
NOT_REQUIRED = {"tls"}
COLUMNS = (
    ("storage", "Shared storage"),
    ("bridges", "Bridges"),
    ("cpu", "CPU"),
    ("memory", "Memory headroom"),
    ("address", "Reachable migration address"),
    ("tls", "TLS"),
)


@dataclass(frozen=True)
class Workload:
    """What the guests of one source need of a target: every disk and NIC, the largest memory."""

    host_name: str
    guests: int = 0
    disks: tuple[pf.DiskSnap, ...] = ()  # targets named "<guest>:<dev>" so the evidence says whose
    nics: tuple[pf.NicSnap, ...] = ()
    largest_mib: int = 0
    largest_name: str = ""
    total_mib: int = 0


@dataclass(frozen=True)
class Cell:
    key: str
    label: str
    status: str  # pass / warn / fail, as the pre-flight's
    evidence: str
    hint: str = ""

    @property
    def answer(self) -> str:
        return ANSWER[self.status]


@dataclass(frozen=True)
class Pair:
    source_id: int
    source: str
    target_id: int
    target: str
    cells: tuple[Cell, ...]

    @property
    def status(self) -> str:
        statuses = {c.status for c in self.cells if c.key not in NOT_REQUIRED}
        return pf.FAIL if pf.FAIL in statuses else pf.WARN if pf.WARN in statuses else pf.PASS

    @property
    def verdict(self) -> str:
        return {pf.PASS: "ready", pf.WARN: "ready, see the notes", pf.FAIL: "not ready"}[self.status]

    @property
    def failing(self) -> list[Cell]:
        return [c for c in self.cells if c.status == pf.FAIL]


def pair_readiness(
    source: pf.HostSnap,
    target: pf.HostSnap,
    work: Workload,
    cpu: tuple[str, str],
    migration_address: str,
    uri_host: str,
) -> Pair:
    """One cell of the matrix: `cpu` is libvirt's (result, message) for the source's host CPU at the target,
    `migration_address` the target's configured stream address ("" = libvirt's default, `uri_host`)."""
    guest = pf.GuestSnap(work.largest_name or "-", "", "running", work.largest_mib, work.disks, work.nics)
    facts = pf.Facts(
        guest=guest,
        source=source,
        target=target,
        kind="live",
        options={"tls": True},
        cpu_result=cpu[0] if source.reachable and target.reachable else "",
        cpu_message=cpu[1] if source.reachable and target.reachable else "a host is down",
    )
    cells = (
        _storage(facts, work),
        _bridges(facts, work),
        _cell(pf.check_cpu(facts), "CPU"),
        _memory(facts, work),
        _address(target, migration_address, uri_host),
        _cell(pf.check_tls(facts), "TLS"),
    )
    return Pair(source.pk, source.name, target.pk, target.name, cells)


def _cell(item: pf.CheckItem | None, label: str) -> Cell:
    if item is None:  # check_tls answers only when TLS is asked for, as it is here
        raise ValueError(f"{label}: the pre-flight did not answer")
    return Cell(item.key, label, item.status, item.evidence, item.hint)


def _bridges(f: pf.Facts, work: Workload) -> Cell:
    if not any(n.kind == "bridge" and n.bridge for n in work.nics):  # the check would speak of "the guest"
        return Cell("bridges", "Bridges", pf.PASS, f"no guest on {work.host_name} uses a bridge")
    return _cell(pf.check_bridges(f), "Bridges")


def _storage(f: pf.Facts, work: Workload) -> Cell:
    label = "Shared storage"
    both = sorted({s.name for s in f.source.storage if s.shared} & {s.name for s in f.target.storage if s.shared})
    common = f"they share {', '.join(both)}" if both else "they share no storage server"
    if work.disks:
        item = pf.check_shared_storage(f)
        return Cell("storage", label, item.status, f"{common}; {item.evidence}", item.hint)
    if both:
        return Cell("storage", label, pf.PASS, f"{common}; no guest on {work.host_name} has a disk yet")
    return Cell(
        "storage",
        label,
        pf.FAIL,
        f"{common} (a guest's disks must be on storage both hosts mount to move live)",
        "Attach a shared storage server to both hypervisors.",
    )


def _memory(f: pf.Facts, work: Workload) -> Cell:
    if not work.guests:
        return Cell("memory", "Memory headroom", pf.PASS, f"{work.host_name} has no guest")
    item = pf.check_memory(f)
    evidence = f"largest guest {work.largest_name} {item.evidence}; all {work.guests} guest(s): {work.total_mib} MiB"
    return Cell("memory", "Memory headroom", item.status, evidence, item.hint)


def _address(target: pf.HostSnap, migration_address: str, uri_host: str) -> Cell:
    label = "Reachable migration address"
    where = (
        f"the stream goes to {migration_address} (set on {target.name})"
        if migration_address
        else f"the stream goes to {uri_host or 'the host of its URI'} (libvirt's default)"
    )
    if not target.reachable:
        return Cell(
            "address",
            label,
            pf.FAIL,
            f"{target.name} does not answer: {target.error or 'no answer'}; {where}",
            "Start libvirtd on that host or fix its URI.",
        )
    return Cell("address", label, pf.PASS, f"{target.name} answered libvirt; {where}")


def with_inventory_memory(snap: pf.HostSnap, memory_free_mib: int) -> pf.HostSnap:
    """The free memory the drain planner books (the inventory's), for a host that answered."""
    return replace(snap, memory_free_mib=memory_free_mib if snap.reachable else 0)
