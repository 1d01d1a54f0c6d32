"""What the balancer's lab tests share: hv-a made hot by two burning guests, real load rounds on the lab
hosts, the policy set for the lab (host load from the guests, a short hold) and the figures a proposal
must state, computed here from the guest rows independently of the selector.

Why "guests": both lab hosts are libvirtd daemons on one kernel, so libvirt's node counters read the same
machine on both (docs/balancing.md). Why a mark set from what the burners measured: a spinning TCG vCPU gets
what the machine's two shared cores spare (docs/lab.md), so the test puts the CPU mark between "hv-a with
both burners" and "either host with one burner": hot before the move, neither host hot after it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta

from django.utils import timezone

from hosts.drivers import libvirt as driver
from hosts.models import Guest, GuestLoadSample, HostLoadSample, Hypervisor
from hosts.services import load_history
from migrations_app.models import BalancerPolicy, BalancerRound
from migrations_app.planning.balance import imbalance
from migrations_app.services.balancer import balancer_round
from tests.lab.migration_support import MigrationLab, extra_guest

BURNERS = {"lab-burn1": 7, "lab-burn2": 8}  # name -> MAC suffix (the lab's own guests use 1 to 4, extra_guest 9)
HOLD_S = 20
SAMPLE_EVERY_S = 5
WINDOW = timedelta(seconds=60)  # the selector's CPU window (balancer_selectors.CPU_WINDOW)


@contextmanager
def hot_hv_a(mlab: MigrationLab) -> Iterator[list[Guest]]:
    """hv-a running two diskless guests with one busy loop each (burn=1, 4 MiB filled); gone afterwards."""
    for host in ("hv-a", "hv-b"):
        Hypervisor.objects.filter(name=host).update(state="online")
    with ExitStack() as stack:
        for name, mac in BURNERS.items():
            stack.enter_context(extra_guest(mlab, name, "hv-a", start=True, fill=4, burn=1, disk=False, mac_suffix=mac))
        load_history.forget_baselines(Hypervisor.objects.values_list("pk", flat=True))
        yield [mlab.guest(n) for n in BURNERS]


def running_on(lab, name: str) -> list[str]:
    """The hosts on which libvirt runs `name` (lab.running_on knows the lab's own guests only)."""
    return [h for h in ("hv-a", "hv-b") if any(d.name == name and d.state == "running" for d in
                                               driver.list_domains(lab.uri(h)))]  # fmt: skip


def sample() -> datetime:
    """One real load round on the lab hosts (what the watcher does every 10 s); returns its time."""
    now = timezone.now()
    load_history.record_round(now)
    return now


def host_pct(now: datetime) -> dict[str, float]:
    """Each host's CPU % of the last minute from its guests' rows: 100 × their cores in each round / its CPUs,
    averaged over the host's rows with a figure (the guests each host runs now)."""
    hosts = {h.pk: h for h in Hypervisor.objects.filter(state="online")}
    where = {g: h for g, h in Guest.objects.values_list("pk", "hypervisor_id")}
    sums: dict[tuple[int, datetime], float] = defaultdict(float)
    for guest_id, at, cores in GuestLoadSample.objects.filter(
        resolution_s=10, at__gte=now - WINDOW, at__lte=now
    ).values_list("guest_id", "at", "cpu_cores"):
        if guest_id in where:
            sums[(where[guest_id], at)] += cores or 0.0
    out = {}
    for pk, h in hosts.items():
        ats = HostLoadSample.objects.filter(
            hypervisor_id=pk, resolution_s=10, at__gte=now - WINDOW, at__lte=now, cpu_pct__isnull=False
        ).values_list("at", flat=True)
        figures = [100.0 * sums[(pk, at)] / h.cpus for at in ats]
        out[h.name] = sum(figures) / len(figures) if figures else 0.0
    return out


def guest_pct(name: str, now: datetime) -> float:
    """The guest's cores over the last minute as a share of its host's CPUs (%)."""
    g = Guest.objects.select_related("hypervisor").get(name=name)
    rows = [
        c
        for c in GuestLoadSample.objects.filter(
            guest=g, resolution_s=10, at__gte=now - WINDOW, at__lte=now, cpu_cores__isnull=False
        ).values_list("cpu_cores", flat=True)
    ]
    return 100.0 * (sum(rows) / len(rows) if rows else 0.0) / g.hypervisor.cpus


def expected_imbalance(now: datetime, guest: str, target: str) -> tuple[float, float]:
    """The imbalance before and after moving `guest` to `target`, from the rows (two hosts: half their gap)."""
    loads = host_pct(now)
    g = Guest.objects.select_related("hypervisor").get(name=guest)
    share = guest_pct(guest, now)
    after = dict(loads)
    after[g.hypervisor.name] -= share
    after[target] += share * g.hypervisor.cpus / Hypervisor.objects.get(name=target).cpus
    return imbalance(loads.values()), imbalance(after.values())


def set_policy(mode: str, now: datetime) -> float:
    """The lab's policy: host load from the guests, a 20 s hold, one move a round; the CPU mark halfway
    between hv-a with both burners and the busiest host either move could leave. Returns the mark."""
    loads = host_pct(now)
    burners = [guest_pct(n, now) for n in BURNERS]
    one_burner = max(loads["hv-b"] + max(burners), loads["hv-a"] - min(burners))
    assert loads["hv-a"] > one_burner + 10, (
        f"two burning guests should make hv-a clearly hotter than one does: hosts {loads}, burners {burners}"
    )
    mark = round((loads["hv-a"] + one_burner) / 2, 1)
    BalancerPolicy.objects.update_or_create(
        pk=1,
        defaults=dict(
            mode=mode, host_load_from="guests", cpu_high_pct=mark, hold_s=HOLD_S, margin_pct=5.0,
            max_moves_per_round=1, max_moves_per_hour=6, cooldown_s=1800,
        ),
    )  # fmt: skip
    return mark


def warm_up(seconds: float = 30) -> datetime:
    """Real load rounds every SAMPLE_EVERY_S for `seconds` (the first has no CPU figure: no earlier counters)."""
    deadline = time.monotonic() + seconds
    now = sample()
    while time.monotonic() < deadline:
        time.sleep(SAMPLE_EVERY_S)
        now = sample()
    return now


def rounds_until(pred, timeout: float = 180) -> tuple[BalancerRound, float]:
    """Sample and run the real round every SAMPLE_EVERY_S until `pred(round)`; returns it and the seconds taken."""
    started = time.monotonic()
    while True:
        now = sample()
        rnd = balancer_round(now=now)
        assert rnd is not None  # nobody else holds the round's lease in a test
        if pred(rnd):
            return rnd, time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"no such round in {timeout:.0f} s; last: hot {rnd.hot}, notes {rnd.notes}")
        time.sleep(SAMPLE_EVERY_S)
