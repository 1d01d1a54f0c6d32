"""Two web and two worker nodes on one database and one Redis, as an installation that outgrew one machine
runs them (docs/deploy.md, "Adding a worker node"): two daphne processes on different ports and two
django-q2 clusters with their own KVMCLUSTER_WORKER_NAME, started like tests/e2e's servers
(tests/servers.py), against the real lab. Stand-ins for separate machines: they share this machine's
host name, so a dead holder's lease is also seen dead by its PID here; a lease of another machine would
be waited out to its expiry.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import httpx

from tests.e2e.lab_support import seed_lab
from tests.servers import ServerEnv, free_port, start_web, start_worker, stop_group

NAMES = ("node-1", "node-2")
PASSWORD = "scale-password-42"
USERS = {"olga": ("operator", PASSWORD)}
LEASE_LINE = re.compile(r"lease (\S+) held by (\S+) from ([\d.]+) to ([\d.]+)")


@dataclass
class TwoWorkers:
    server: ServerEnv
    ids: dict
    webs: list[str] = field(default_factory=list)
    web_procs: list[subprocess.Popen] = field(default_factory=list)
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)
    killed_at: dict[str, float] = field(default_factory=dict)

    def log(self, name: str) -> Path:
        return self.server.data_dir / f"{name}.log"

    def start(self, web_count: int = 2) -> None:
        for i in range(web_count):
            port = free_port()
            self.web_procs.append(start_web(self.server.env, port, self.log(f"web-{i + 1}")))
            self.webs.append(f"http://127.0.0.1:{port}")
        for name in NAMES:
            self.start_worker(name)

    def start_worker(self, name: str) -> None:
        env = {**self.server.env, "KVMCLUSTER_WORKER_NAME": name, "KVMCLUSTER_LOG_LEVEL": "INFO"}
        self.workers[name] = start_worker(env, self.log(name))

    def kill_worker(self, name: str) -> None:
        """SIGKILL to the worker's whole process group: the cluster and every forked worker, no cleanup."""
        proc = self.workers.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        self.killed_at[name] = time.time()

    def stop(self) -> None:
        for proc in [*self.workers.values(), *self.web_procs]:
            stop_group(proc, timeout=20)
        self.workers.clear()
        self.web_procs.clear()

    def sql(self, query: str, *params) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.server.env["DATABASE_URL"], autocommit=True, connect_timeout=5) as conn:
            return conn.execute(query, params).fetchall()

    def lease_holders(self) -> dict[str, str]:
        """Leases held now: name -> holder label."""
        rows = self.sql("SELECT name, holder FROM hosts_workerlease WHERE holder <> '' AND expires_at > now()")
        return dict(rows)

    def job(self, job_id: int) -> dict:
        """The job row as the dashboard's database has it, with its audit actions and reconciler lines."""
        state, owner, where, source, target = self.sql(
            "SELECT j.state, j.owner, j.where_guest_is, s.name, t.name FROM migrations_app_migrationjob j "
            "JOIN hosts_hypervisor s ON s.id = j.source_id JOIN hosts_hypervisor t ON t.id = j.target_id "
            "WHERE j.id = %s",
            job_id,
        )[0]
        audit = [a for (a,) in self.sql("SELECT action FROM accounts_auditevent WHERE migration_id = %s", job_id)]
        notes = [
            m
            for (m,) in self.sql(
                "SELECT message FROM migrations_app_migrationevent WHERE job_id = %s AND kind = 'reconciler'", job_id
            )
        ]
        return {
            "state": state,
            "owner": owner,
            "where": where,
            "source": source,
            "target": target,
            "audit": audit,
            "reconciler": notes,
        }

    def lease_holds(self) -> list[tuple[str, str, float, float]]:
        """Every lease hold the workers logged: (lease, holder, from, to)."""
        holds = []
        for name in NAMES:
            for m in LEASE_LINE.finditer(self.log(name).read_text()):
                holds.append((m[1], m[2], float(m[3]), float(m[4])))
        return holds

    def wait(self, what: str, check, timeout: float, every: float = 1.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            time.sleep(every)
        tails = "\n".join(f"--- {n}\n{self.log(n).read_text()[-3000:]}" for n in NAMES)
        raise AssertionError(f"{what}: not within {timeout} s\n{tails}")


def overlapping(holds: list[tuple[str, str, float, float]]) -> list[tuple]:
    """Pairs of holds of the same lease by different holders whose times overlap."""
    found = []
    ordered = sorted(holds, key=lambda h: (h[0], h[2]))
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a[0] == b[0] and a[1] != b[1] and b[2] < a[3]:
            found.append((a, b))
    return found


def deploy(server: ServerEnv) -> TwoWorkers:
    ids = seed_lab(server, USERS)
    return TwoWorkers(server=server, ids=ids)


def sign_in(base_url: str) -> httpx.Client:
    """An operator's session on one web node (the Django login form, as a browser posts it)."""
    client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=60)
    client.get("/login/")
    resp = client.post(
        "/login/",
        data={"username": "olga", "password": PASSWORD, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
    )
    assert resp.status_code == 302 and "/login/" not in resp.headers["location"], resp.text[:500]
    return client


class _FormDefaults(HTMLParser):
    """What a browser would submit from a page's forms untouched: checked boxes and radios, filled
    inputs, selected options."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.values[name] = a.get("value") or "on"
            elif kind not in ("submit", "button"):
                self.values.setdefault(name, a.get("value") or "")
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and ("selected" in a or self._select not in self.values):
            self.values[self._select] = a.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def request_move(client: httpx.Client, guest_pk: int, target_pk: int, bandwidth_mibps: int | None = None) -> int:
    """POST the Migrate form as a browser would (its defaults, live, this target) on this web node; the
    job's id from the redirect."""
    page = client.get(f"/guests/{guest_pk}/migrate/")
    defaults = _FormDefaults()
    defaults.feed(page.text)
    form = {**defaults.values, "target": str(target_pk), "kind": "live"}
    if bandwidth_mibps:
        form["bandwidth_mibps"] = str(bandwidth_mibps)
    resp = client.post(f"/guests/{guest_pk}/migrate/", data=form)
    errors = re.findall(r'class="[^"]*(?:error|refused)[^"]*"[^>]*>([^<]+)', resp.text)
    summary = re.findall(r'<pre class="exception_value">([^<]*)</pre>|<title>([^<]*)</title>', resp.text)
    assert resp.status_code == 302, (resp.status_code, errors, summary[:3])
    return int(re.search(r"/migrations/(\d+)/", resp.headers["location"]).group(1))
