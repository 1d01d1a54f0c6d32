"""Benchmark the live pages with many viewers: N browsers on the topology and on a job page during a move.

    .venv/bin/python bench/fanout.py [--viewers 1,200] [--guest lab-g1] [--bandwidth 10] [--timeout 90]
                                     [--web 1]

Needs the lab (`python manage.py lab up`) and holds nothing else: run it under the lab lock. Uses a
throwaway embedded-profile database, or the production one from DATABASE_URL/REDIS_URL (give it a
database and a Redis number of its own). It starts the dashboard (daphne, loopback; --web K processes on
K ports, viewer i on process i mod K, as behind a proxy) and, for each N, a
worker (`manage.py qcluster`), all stopped by process group at the end (bench/processes.py).

For each N of --viewers, in turn:
  1. the move of --guest to the other host is requested (migrations_app.services.migration_request, a
     --bandwidth cap in MiB/s so that it lasts a few seconds) while no worker runs: the job waits;
  2. N viewers connect, each with two websockets as a browser would (the `websockets` library, one
     asyncio loop for all of them; one sign-in through the login form, its session cookie reused):
     /ws/topology/ and /ws/migrations/<job>/;
  3. the worker starts and carries the move out (~6.7 progress cards a second on the job page, the
     guest's move badge 4 times a second on the topology), and every viewer keeps what it receives
     until the job has ended and its last pushes are out (at most --timeout s in all).
Per message, the delay from libvirt's sample (data-sampled-at on the card and the badge, stamped by the
worker when jobStats returned) to its arrival here; delivered: what each viewer received against what any
viewer of the same socket received (bench/fanout_stats.py: a message nobody received is not counted);
final state: the viewer's last job card is the job's terminal state and its last topology row shows the
guest on the target, no longer moving. The guest ends where it started (N=1 then N=200 move it there and
back; an odd count moves it back by virsh).

Last line, exactly (for the largest N; p95_ms_1 from N=1):
    fanout viewers=<N> delivered_pct=<x> p95_ms_1=<x> p95_ms_<N>=<x> final_state_ok=<k>/<N>
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import fanout_stats as stats  # noqa: E402
from bench.lab_guests import virsh_move, where  # noqa: E402
from bench.processes import free_port, start_web, start_worker, stop_group  # noqa: E402

PASSWORD = "fanout-bench-viewer-Pw1"
CONNECT_AT_ONCE = 25  # sockets opening at the same time (a page load's worth each)


def setup(data_dir: str) -> None:
    os.environ["KVMCLUSTER_DATA_DIR"] = data_dir
    os.environ.setdefault("KVMCLUSTER_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvmcluster.settings")
    # plain http on loopback: the production profile's cookies would be https-only
    os.environ["KVMCLUSTER_INSECURE_COOKIES"] = "1"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if "channels" in settings.DATABASES:
        call_command("migrate", database="channels", verbosity=0)


def sign_in(base: str) -> str:
    """One sign-in through the login form; returns the session cookie every viewer sends."""
    import httpx

    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as client:
        page = client.get("/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, "no CSRF token on the login page"
        answer = client.post(
            "/login/",
            data={"username": "fanout-viewer", "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)},
            headers={"Referer": f"{base}/login/"},
        )
        session = answer.cookies.get("sessionid") or client.cookies.get("sessionid")
        assert answer.status_code == 302 and session, f"sign-in refused ({answer.status_code})"
        return f"sessionid={session}"


@dataclass
class Viewer:
    topology: list[tuple[float, str]] = field(default_factory=list)
    job: list[tuple[float, str]] = field(default_factory=list)
    failed: str = ""


async def watch(url: str, origin: str, cookie: str, into: list, gate: asyncio.Semaphore, ready, done) -> None:
    from websockets.asyncio.client import connect

    try:
        async with gate:
            ws = await connect(
                url, origin=origin, additional_headers={"Cookie": cookie}, ping_interval=None, max_size=None
            )
    finally:
        ready()  # connected or refused: the round starts once every socket has had its try
    # Stamp on arrival and nothing else: a task and a timer per message (asyncio.wait_for around recv,
    # as before) made the client's own loop, shared by 400 sockets, part of the delay it measures.
    closer = asyncio.get_running_loop().create_task(_close_when(done, ws))
    try:
        async for text in ws:  # ends when `done` closes the socket
            into.append((time.time() * 1000, text))
    finally:
        closer.cancel()
        await ws.close()


async def _close_when(done: asyncio.Event, ws) -> None:
    await done.wait()
    await ws.close()


async def run_viewers(n: int, ports: list[int], cookie: str, job_id: int, until) -> list[Viewer]:
    """Connect n viewers (2 sockets each, viewer i to web process i mod len(ports)), call
    until(all_connected) and keep receiving until it returns."""
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)
    connected = asyncio.Event()
    done = asyncio.Event()
    count = 0

    def ready() -> None:
        nonlocal count
        count += 1
        if count == 2 * n:
            connected.set()

    viewers = [Viewer() for _ in range(n)]
    tasks = []
    for i, v in enumerate(viewers):
        port = ports[i % len(ports)]
        base, origin = f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}"
        tasks.append(watch(f"{base}/ws/topology/", origin, cookie, v.topology, gate, ready, done))
        tasks.append(watch(f"{base}/ws/migrations/{job_id}/", origin, cookie, v.job, gate, ready, done))
    running = asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.wait_for(connected.wait(), timeout=120)
    await asyncio.to_thread(until)
    done.set()
    for i, result in enumerate(await running):
        if isinstance(result, BaseException):
            viewers[i // 2].failed = repr(result)
    return viewers


@dataclass
class Round:
    """The worker's part of one round: started once every viewer is connected, the move carried out."""

    job_id: int
    timeout: int
    log: Path | None
    worker: object = None
    t0: float = 0.0

    def run_move(self) -> None:
        from migrations_app.models import MigrationJob

        self.t0 = time.monotonic()
        self.worker = start_worker(warm_s=0, log=self.log)
        deadline = self.t0 + self.timeout
        while time.monotonic() < deadline:
            if MigrationJob.objects.get(pk=self.job_id).is_terminal:
                break
            time.sleep(0.2)
        time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))  # the ending's pushes


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--viewers", default="1,200", help="N of each round, in order")
    ap.add_argument("--guest", default="lab-g1")
    ap.add_argument("--bandwidth", type=int, default=10, help="MiB/s cap of each move (its length)")
    ap.add_argument("--timeout", type=int, default=90, help="s a round may take from the worker's start")
    ap.add_argument("--web", type=int, default=1, help="web processes (daphne) sharing the viewers")
    ap.add_argument("--log-dir", default="", help="keep the web and worker logs here")
    args = ap.parse_args()
    counts = [int(x) for x in args.viewers.split(",")]
    production = bool(os.environ.get("DATABASE_URL"))
    print(f"profile: {'production (DATABASE_URL/REDIS_URL)' if production else 'embedded'}", flush=True)
    setup(tempfile.mkdtemp(prefix="kvmcluster-bench-fanout-"))

    from django.contrib.auth.models import Group, User

    from hosts.models import Guest, Hypervisor
    from lab import registry
    from lab.handle import LabHandle
    from migrations_app import services

    LabHandle()  # the lab's SASL login for this process
    registry.register()
    registry.refresh_inventory()
    actor, _ = User.objects.get_or_create(username="fanout-operator", defaults={"is_superuser": True})
    viewer = User.objects.filter(username="fanout-viewer").first() or User.objects.create_user(
        "fanout-viewer", password=PASSWORD
    )
    viewer.groups.add(Group.objects.get(name="viewer"))
    logs = Path(args.log_dir) if args.log_dir else None
    if logs:
        logs.mkdir(parents=True, exist_ok=True)
    home = where(args.guest)
    ports = [free_port() for _ in range(args.web)]
    webs = [start_web(port, log=logs / f"web-{port}.log" if logs else None) for port in ports]
    figures: dict[int, dict] = {}
    try:
        cookie = sign_in(f"http://127.0.0.1:{ports[0]}")  # the session is in the database: good on every port
        for n in counts:
            registry.refresh_inventory()
            guest = Guest.objects.get(name=args.guest)
            target = Hypervisor.objects.exclude(pk=guest.hypervisor_id).get(name__in=["hv-a", "hv-b"])
            job = services.migration_request(
                guest=guest,
                target=target,
                kind="live",
                options={"bandwidth_mibps": args.bandwidth},
                actor=actor,
                source_ip="127.0.0.1",
            )
            round_ = Round(job.pk, args.timeout, logs / f"worker-{n}.log" if logs else None)
            load = os.getloadavg()[0]
            try:
                viewers = asyncio.run(run_viewers(n, ports, cookie, job.pk, round_.run_move))
            finally:
                if round_.worker is not None:
                    stop_group(round_.worker)
            job.refresh_from_db()
            figures[n] = summarize(n, viewers, job, guest.pk, target.name, load, time.monotonic() - round_.t0)
    finally:
        for web in webs:
            stop_group(web)
        now = where(args.guest)
        if home and now and now != home:
            virsh_move(args.guest, now, home)  # the lab as it was
    largest, smallest = max(counts), min(counts)
    big = figures[largest]
    print(
        stats.result_line(
            viewers=largest,
            delivered_pct=big["delivered_pct"],
            p95_ms_1=figures[smallest]["p95_ms"],
            p95_ms_n=big["p95_ms"],
            ok=big["ok"],
        )
    )
    return 0


def summarize(n: int, viewers: list[Viewer], job, guest_id: int, target: str, load: float, took_s: float) -> dict:
    """Print one round's figures and return them."""
    got_t, sent_t = stats.delivered(v.topology for v in viewers)
    got_j, sent_j = stats.delivered(v.job for v in viewers)
    delays = [d for v in viewers for d in stats.latencies_ms(v.job) + stats.latencies_ms(v.topology)]
    job_delays = [d for v in viewers for d in stats.latencies_ms(v.job)]
    spreads = stats.spreads_ms(v.job for v in viewers) + stats.spreads_ms(v.topology for v in viewers)
    ok = sum(
        1
        for v in viewers
        if not v.failed
        and stats.job_ends_in(v.job, job.pk, job.state)
        and stats.topology_ends_with(v.topology, guest_id, target)
    )
    cards = stats.latencies_ms(viewers[0].job)
    rate = len(cards) / ((job.total_ms or 1) / 1000)
    failed = [v.failed for v in viewers if v.failed]
    print(
        f"N={n}: job #{job.pk} {job.state} in {(job.total_ms or 0) / 1000:.1f} s (libvirt), {len(cards)} progress "
        f"cards ({rate:.1f}/s) per job socket; delivered topology {got_t}/{sent_t}, job {got_j}/{sent_j} "
        f"({stats.pct(got_t + got_j, sent_t + sent_j):.2f} %); delay median {median(delays):.1f} ms "
        f"p95 {stats.p95(delays):.1f} ms (job page {stats.p95(job_delays):.1f} ms), "
        f"max {max(delays, default=float('nan')):.1f} ms, first to last viewer p95 {stats.p95(spreads):.1f} ms; "
        f"final state {ok}/{n}; {len(failed)} sockets failed{': ' + failed[0] if failed else ''}; "
        f"load {load:.2f} at the start, round {took_s:.1f} s",
        flush=True,
    )
    return {"delivered_pct": stats.pct(got_t + got_j, sent_t + sent_j), "p95_ms": stats.p95(delays), "ok": ok}


def median(values: list[float]) -> float:
    import statistics

    return statistics.median(values) if values else float("nan")


if __name__ == "__main__":
    raise SystemExit(main())
