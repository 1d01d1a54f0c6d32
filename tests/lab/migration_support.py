"""Helpers for the guest-migration lab tests: the lab registered in the test DB, an operator, and a
task runner that runs the real django-q2 task body in a thread (the broker is the only part replaced;
test_migration_worker_crash.py runs it in a real separate process)."""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.contrib.auth.models import Group, User
from django.db import connections

from hosts.drivers import libvirt as driver
from hosts.drivers.types import MigrationOptions
from hosts.models import Guest, Hypervisor
from lab import registry
from migrations_app import services
from migrations_app.models import MigrationJob


@dataclass
class Runner:
    autostart: bool = True
    enqueued: list[int] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def enqueue(self, job_id: int) -> None:
        self.enqueued.append(job_id)
        if self.autostart:
            self.start(job_id)

    def start(self, job_id: int) -> threading.Thread:
        from migrations_app.tasks import run_migration

        def body():
            try:
                run_migration(job_id)
            finally:
                connections.close_all()

        t = threading.Thread(target=body, name=f"test-migration-{job_id}", daemon=True)
        t.start()
        self.threads.append(t)
        return t

    def join(self, timeout: float = 120) -> None:
        for t in self.threads:
            t.join(timeout)


class MigrationLab:
    def __init__(self, lab, runner: Runner):
        self.lab, self.runner = lab, runner
        registry.register()
        registry.refresh_inventory()
        self.operator = self.user("op-mig", "operator")
        self.viewer = self.user("view-mig", "viewer")

    @staticmethod
    def user(name: str, role: str) -> User:
        u, _ = User.objects.get_or_create(username=name)
        u.set_password("a-long-enough-password-42")
        u.save()
        u.groups.set([Group.objects.get(name=role)])
        return User.objects.get(pk=u.pk)  # fresh permission cache

    def hv(self, name: str) -> Hypervisor:
        return Hypervisor.objects.get(name=name)

    def guest(self, name: str) -> Guest:
        return Guest.objects.select_related("hypervisor").get(name=name)

    def refresh(self) -> None:
        registry.refresh_inventory()

    def ensure_on(self, name: str, host: str, running: bool = True) -> Guest:
        """Put lab guest `name` on `host` (running) with plain libvirt, then refresh the inventory."""
        uuid = self.lab.guest_uuids[name]
        cur = self.lab.current_host(name)
        if cur and cur != host:
            dom = driver.get_domain(self.lab.uri(cur), uuid)
            driver.migrate(self.lab.uri(cur), self.lab.uri(host), uuid, MigrationOptions(live=dom.state == "running"))
            # a running guest is the inventory's evidence of its new host; refresh before shutting it off
            self.refresh()
        dom = driver.get_domain(self.lab.uri(host), uuid)
        if running and dom.state != "running":
            mark = self.lab.console_offset(name)
            driver.start(self.lab.uri(host), uuid)
            # a heartbeat of this boot (not one already in the log): its init, acpid included, is up
            self.lab.wait_heartbeat(name, timeout=60, after_offset=mark)
        if not running and dom.state != "shutoff":
            driver.destroy(self.lab.uri(host), uuid)
        self.refresh()
        return self.guest(name)

    def request(self, name: str, target: str, kind: str = "live", **options) -> MigrationJob:
        return services.migration_request(
            guest=self.guest(name),
            target=self.hv(target),
            kind=kind,
            options=options,
            actor=self.operator,
            source_ip="127.0.0.1",
        )

    @staticmethod
    def wait(job_id: int, pred, timeout: float = 90) -> MigrationJob:
        deadline = time.monotonic() + timeout
        while True:
            job = MigrationJob.objects.select_related("source", "target", "guest").get(pk=job_id)
            if pred(job):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"guest migration #{job_id} stuck in {job.state}/{job.phase}: {job.error}")
            time.sleep(0.2)

    def wait_done(self, job_id: int, timeout: float = 120) -> MigrationJob:
        return self.wait(job_id, lambda j: j.is_terminal, timeout)

    def wait_progress(self, job_id: int, timeout: float = 60) -> MigrationJob:
        return self.wait(job_id, lambda j: j.is_terminal or (j.state == "running" and j.data_processed > 0), timeout)


def worker_command(job_id: int) -> list[str]:
    """argv of a separate process that runs the real task body for `job_id` against the test databases."""
    import json
    import sys

    names = {alias: str(connections[alias].settings_dict["NAME"]) for alias in connections}
    return [sys.executable, "-m", "tests.lab.migration_worker", str(job_id), json.dumps(names)]


@contextmanager
def extra_guest(mlab: MigrationLab, name: str, host: str, **spec):
    """A throwaway lab guest on `host` (lab_guest below, which names the `spec` keywords), recorded in the
    inventory; yields its Guest row."""
    try:
        with lab_guest(mlab.lab, name, host, **spec):
            mlab.refresh()
            yield mlab.guest(name)
    finally:
        mlab.refresh()


@contextmanager
def lab_guest(
    lab,
    name: str,
    host: str,
    *,
    cpu: str = "",
    kernel_args: str = "",
    start: bool = False,
    fill: int = 16,
    dirty: int = 0,
    burn: int = 0,
    disk: bool = True,
    mac_suffix: int = 9,
):
    """A throwaway lab guest on `host`, for behaviour the lab's own guests must not have: a CPU model
    (`cpu`, a <cpu> element), kernel arguments (`kernel_args`, e.g. acpi=off) or a workload (`fill` MiB
    written once, `dirty` MiB rewritten every second, `burn` busy loops). `disk=False` leaves out its NFS
    disk: under TCG a slow move of a guest writing to its disk can corrupt it (docs/lab.md), a diskless one
    was fine. Two at once need two `mac_suffix` values (the lab's own guests use 1 to 4).
    Gone (undefined on every host) afterwards."""
    from lab import config, guests, sanlock

    spec = config.GuestSpec(name=name, host=host, start=start, mac_suffix=mac_suffix, fill=fill, dirty=dirty,
                            burn=burn)  # fmt: skip
    p = config.paths()
    xml = guests.domain_xml(p, spec).replace("<vcpu>1</vcpu>", f"<vcpu>1</vcpu>\n  {cpu}")
    xml = xml.replace(guests.KERNEL_ARGS, f"{guests.KERNEL_ARGS} {kernel_args}".strip())
    if not disk:
        xml = re.sub(r"<disk\b.*?</disk>", "", xml, flags=re.S)
    guests.ensure_disk(p, name)
    if guests.lock_manager(p) == "sanlock":  # its definition carries a <lease>: the lease file must exist
        sanlock.init_lease(p, name)
    try:
        uri = lab.uri(host)
        guests.define(p, uri, xml, name)
        if start:
            mark = guests.console_size(p, name)
            guests.start_guest(uri, name)
            guests.wait_heartbeat(name, after_offset=mark, timeout=60, p=p)
        yield
    finally:
        guests.undefine_everywhere(name)
        p.disk(name).unlink(missing_ok=True)
        p.domain_xml(name).unlink(missing_ok=True)
        p.lease(name).unlink(missing_ok=True)
