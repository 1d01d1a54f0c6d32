"""`manage.py lab up|status|down|reset`: the local two-hypervisor lab (the `lab` package does the work)."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

import lab
from lab import registry


class Command(BaseCommand):
    help = "Bring the local two-hypervisor lab up, show it, take it down, or reset guest placement."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["up", "status", "down", "reset", "build", "env"])
        parser.add_argument("--no-wait", action="store_true", help="up/reset: don't wait for guest heartbeats")
        parser.add_argument("--no-register", action="store_true", help="up/reset: don't write the lab into the DB")
        parser.add_argument("--json", action="store_true", help="status: machine-readable output")
        parser.add_argument("--exit-code", action="store_true", help="status: print nothing, exit 0 if up else 1")

    def handle(self, *args, action, no_wait=False, no_register=False, json=False, **options):
        try:
            if action == "status" and options.get("exit_code"):
                raise SystemExit(0 if lab.is_up() else 1)
            getattr(self, f"do_{action}")(wait=not no_wait, register=not no_register, as_json=json)
        except lab.LabError as exc:
            raise CommandError(str(exc)) from exc

    def do_up(self, wait, register, **_):
        self._report(lab.up(wait=wait), "lab up", register)

    def do_reset(self, wait, register, **_):
        self._report(lab.reset(), "lab reset", register)

    def _report(self, res, what, register):
        for note in res.notes:
            self.stdout.write(note)
        if res.phases:
            self.stdout.write("  " + ", ".join(f"{k} {v:.1f}" for k, v in res.phases.items()) + " (s since start)")
        started = ", ".join(res.started) if res.started else "nothing (already running)"
        self.stdout.write(self.style.SUCCESS(f"{what} in {res.seconds:.1f} s; started: {started}"))
        if register:
            try:
                reg = registry.register()
            except DatabaseError as exc:
                self.stderr.write(
                    f"lab is up but not registered in the dashboard ({exc}); run `manage.py migrate` first"
                )
                return
            names = ", ".join(f"{hv.name} ({hv.uri})" for hv in reg["hypervisors"])
            self.stdout.write(f"registered storage server {reg['storage'].name} and hypervisors {names}")
            self.stdout.write(registry.refresh_inventory())

    def do_env(self, **_):
        """`export $(manage.py lab env)`: what a process needs to log in to the lab's libvirtd."""
        for key, value in lab.client_env().items():
            self.stdout.write(f"{key}={value}")

    def do_build(self, **_):
        """Only the guests' kernel + initramfs (no root needed): lets `make install` pay for the download."""
        res = lab.build_image()
        self.stdout.write(self.style.SUCCESS(res))

    def do_down(self, **_):
        leftovers = lab.down()
        if leftovers:
            raise CommandError("lab down, but lab ports are still listening:\n" + "\n".join(leftovers))
        self.stdout.write(self.style.SUCCESS("lab down; nothing of it is listening"))

    def do_status(self, as_json, **_):
        st = lab.status()
        if as_json:
            self.stdout.write(json.dumps(st, indent=2))
            return
        self.stdout.write(f"lab {'UP' if st['up'] else 'DOWN'}  (state in {st['state_dir']})")
        if st["lock_manager"]:
            self.stdout.write(f"  lock manager: {st['lock_manager']} (KVMLAB_LOCK_MANAGER=sanlock opts in)")
        for name, proc in st["processes"].items():
            self.stdout.write(
                f"  {name:<8} pid {proc['pid'] or '-':<8} {'running' if proc['running'] else 'stopped':<8}"
                f" {proc['listen']}"
            )
        for h in st["hosts"]:
            self.stdout.write(
                f"  {h['name']:<8} pid {h['pid'] or '-':<8} {'running' if h['running'] else 'stopped':<8}"
                f" {h['uri']}  uuid {h['host_uuid']}  migration ports {h['migration_ports']}"
                f"  bridges {','.join(h['bridges'])}"
            )
        for g in st["guests"]:
            where = ", ".join(f"{host}: {state}" for host, state in g["hosts"].items()) or "not defined"
            self.stdout.write(f"  {g['name']:<11} {where:<24} heartbeat {g['heartbeat'] or '-':<6} cache {g['cache']}")
